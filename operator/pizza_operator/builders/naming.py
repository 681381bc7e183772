"""Names and labels of the children, the selector of the children a resource owns, and the
owner body its Events and ownerReferences name. The label names themselves are `contract`'s."""

from __future__ import annotations

from typing import Any, Literal

from pizza_operator.api.v1alpha1 import KIND, PizzaModelDeployment
from pizza_operator.contract import (
    API_VERSION,
    APP_NAME,
    COMPONENT_LABEL,
    INSTANCE_LABEL,
    MANAGED_BY_LABEL,
    MANAGER,
    NAME_LABEL,
    PART_OF,
    PART_OF_LABEL,
)

__all__ = [
    "APP_NAME",
    "COMPONENTS",
    "MANAGER",
    "PORT",
    "PORT_NAME",
    "Component",
    "child_name",
    "labels",
    "owned_selector",
    "owner_of",
    "selector_labels",
    "service_name",
]

Component = Literal["primary", "fallback", "router"]
COMPONENTS: tuple[Component, ...] = ("primary", "fallback", "router")

PORT = 8001
PORT_NAME = "http"


def child_name(pmd: PizzaModelDeployment, component: Component) -> str:
    """NAME-primary, NAME-fallback, NAME-router (the router's Service is NAME itself)."""
    return f"{pmd.metadata.name}-{component}"


def service_name(pmd: PizzaModelDeployment, component: Component) -> str:
    """The router is the entry point, so its Service carries the resource's own name."""
    return pmd.metadata.name if component == "router" else child_name(pmd, component)


def selector_labels(pmd: PizzaModelDeployment, component: Component) -> dict[str, str]:
    """The immutable labels Deployments and Services select pods by."""
    return {
        NAME_LABEL: APP_NAME,
        INSTANCE_LABEL: pmd.metadata.name,
        COMPONENT_LABEL: component,
    }


def labels(pmd: PizzaModelDeployment, component: Component) -> dict[str, str]:
    """The recommended app.kubernetes.io labels on every child and pod."""
    return {
        **selector_labels(pmd, component),
        MANAGED_BY_LABEL: MANAGER,
        PART_OF_LABEL: PART_OF,
    }


def owned_selector(name: str) -> dict[str, str]:
    """The label selector of everything the operator made for resource `name` (its children and
    ControllerRevisions); ownership itself is the ownerReference's uid, checked by the reader."""
    return {INSTANCE_LABEL: name, MANAGED_BY_LABEL: MANAGER}


def owner_of(pmd: PizzaModelDeployment) -> dict[str, Any]:
    """The resource as kopf and `Kube.post_event` take an owner: the object Events are about,
    and the body `kopf.append_owner_reference` makes the children's ownerReference from."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": pmd.metadata.name,
            "namespace": pmd.metadata.namespace,
            "uid": pmd.metadata.uid,
        },
    }
