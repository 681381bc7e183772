"""The three Services: NAME (router, the entry point), NAME-primary, NAME-fallback."""

from __future__ import annotations

from typing import Any

from pizza_operator.api.v1alpha1 import PizzaModelDeployment
from pizza_operator.builders.naming import (
    PORT,
    PORT_NAME,
    Component,
    labels,
    selector_labels,
    service_name,
)


def _service(pmd: PizzaModelDeployment, component: Component) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": service_name(pmd, component),
            "namespace": pmd.metadata.namespace,
            "labels": labels(pmd, component),
        },
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(pmd, component),
            "ports": [
                {"name": PORT_NAME, "port": PORT, "targetPort": PORT_NAME, "protocol": "TCP"}
            ],
        },
    }


def build_router_service(pmd: PizzaModelDeployment) -> dict[str, Any]:
    """The resource's entry point, named like the resource itself."""
    return _service(pmd, "router")


def build_primary_service(pmd: PizzaModelDeployment) -> dict[str, Any]:
    return _service(pmd, "primary")


def build_fallback_service(pmd: PizzaModelDeployment) -> dict[str, Any]:
    return _service(pmd, "fallback")
