"""Names and labels of the children."""

from __future__ import annotations

from typing import Literal

from pizza_operator.api.v1alpha1 import PizzaModelDeployment

Component = Literal["primary", "fallback", "router"]
COMPONENTS: tuple[Component, ...] = ("primary", "fallback", "router")

APP_NAME = "pizza-serve"
MANAGER = "pizza-operator"
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
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/instance": pmd.metadata.name,
        "app.kubernetes.io/component": component,
    }


def labels(pmd: PizzaModelDeployment, component: Component) -> dict[str, str]:
    """The recommended app.kubernetes.io labels on every child and pod."""
    return {
        **selector_labels(pmd, component),
        "app.kubernetes.io/managed-by": MANAGER,
        "app.kubernetes.io/part-of": "pizza-operator",
    }
