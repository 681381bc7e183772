"""Pure builders: the desired children of a PizzaModelDeployment, as plain dicts (no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pizza_operator.api.v1alpha1 import Mode, PizzaModelDeployment
from pizza_operator.builders.canary import Canary, build_canary, canary_url
from pizza_operator.builders.deployments import (
    build_fallback_deployment,
    build_primary_deployment,
    build_router_deployment,
)
from pizza_operator.builders.disruption import build_pdbs
from pizza_operator.builders.images import resolve_images
from pizza_operator.builders.naming import Component
from pizza_operator.builders.network import build_network_policies
from pizza_operator.builders.routing import build_router_rbac, build_routing_configmap
from pizza_operator.builders.services import (
    build_fallback_service,
    build_primary_service,
    build_router_service,
)
from pizza_operator.config import OperatorPods

__all__ = [
    "Canary",
    "build_canary",
    "build_children",
    "build_fallback_deployment",
    "build_fallback_service",
    "build_network_policies",
    "build_pdbs",
    "build_primary_deployment",
    "build_primary_service",
    "build_router_deployment",
    "build_router_service",
    "build_routing",
    "resolve_images",
]


def build_children(
    pmd: PizzaModelDeployment,
    images: Mapping[Component, str],
    mode: Mode,
    operator: OperatorPods | None = None,
    canary: Canary | None = None,
) -> list[dict[str, Any]]:
    """Every child the resource should own right now, in apply order (the router's account
    and routing ConfigMap, the NetworkPolicies before any pod they guard, then Services, then
    Deployments; the canary's before the routing table names it). `operator`: the operator's
    own pods, let in to scrape (None: it runs on a node, outside the cluster's pods); `canary`:
    a new primary revision on trial (`pmd` is then built with the stable primary)."""
    primary = build_primary_deployment(pmd, images["primary"], mode)
    if canary is not None and canary.borrow and primary["spec"].get("replicas"):
        primary["spec"]["replicas"] -= 1  # its GPUs go to the canary
    lent = canary is not None and canary.borrow and primary["spec"].get("replicas") == 0
    return [
        *build_router_rbac(pmd),
        *(build_canary(canary, operator) if canary is not None else []),
        build_routing_configmap(pmd, mode, _route(pmd, canary), lent=lent),
        *build_network_policies(pmd, operator),
        build_primary_service(pmd),
        build_fallback_service(pmd),
        build_router_service(pmd),
        primary,
        build_fallback_deployment(pmd, images["fallback"], mode),
        build_router_deployment(pmd, images["router"], mode),
        *build_pdbs(pmd, mode),
    ]


def _route(pmd: PizzaModelDeployment, canary: Canary | None) -> tuple[str, int, float] | None:
    if canary is None:
        return None
    return canary_url(canary.pmd), canary.weight, canary.sample


def build_routing(pmd: PizzaModelDeployment, mode: Mode) -> list[dict[str, Any]]:
    """The router's ServiceAccount, Role, RoleBinding and the routing ConfigMap (its mode)."""
    return [*build_router_rbac(pmd), build_routing_configmap(pmd, mode)]
