"""The canary of a new primary revision: its Deployment, Service and NetworkPolicy (pure).

NAME-primary-canary runs the spec's primary (the revision on trial) beside NAME-primary (the
stable revision). Its pods carry the component label `canary`, so neither the primary's Service,
its Deployment, its PDB nor the analysis of the primary ever counts them; the router reaches them
through their own Service, named in the routing table (`routing.build_routing_configmap`)."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from pizza_operator.api.v1alpha1 import PizzaModelDeployment
from pizza_operator.builders.deployments import build_primary_deployment
from pizza_operator.builders.naming import PORT
from pizza_operator.builders.network import build_network_policy
from pizza_operator.builders.services import build_primary_service
from pizza_operator.config import OperatorPods
from pizza_operator.contract import COMPONENT_LABEL

CANARY = "canary"
"""The canary pods' component label."""


@dataclasses.dataclass(frozen=True)
class Canary:
    """A running canary as the reconcile builds it."""

    pmd: PizzaModelDeployment  # the resource as the canary's revision shapes it (the spec)
    image: str  # the canary's image
    weight: int  # percent of primary-bound requests it gets
    sample: float  # share of its answers compared with the stable primary's
    borrow: bool  # no GPU free: the stable primary runs one pod fewer


def canary_name(pmd: PizzaModelDeployment) -> str:
    """NAME-primary-canary: the canary's Deployment, Service and NetworkPolicy."""
    return f"{pmd.metadata.name}-primary-canary"


def canary_url(pmd: PizzaModelDeployment) -> str:
    """The canary's Service as the router (in the same namespace) reaches it."""
    return f"http://{canary_name(pmd)}:{PORT}"


def _as_canary(child: dict[str, Any], name: str) -> dict[str, Any]:
    """The primary's child renamed, every label and selector of it moved to the canary."""
    out = copy.deepcopy(child)
    out["metadata"]["name"] = name
    holders = [out["metadata"]["labels"]]
    spec = out["spec"]
    if out["kind"] == "Deployment":
        holders += [spec["selector"]["matchLabels"], spec["template"]["metadata"]["labels"]]
    elif out["kind"] == "Service":
        holders.append(spec["selector"])
    elif out["kind"] == "NetworkPolicy":
        holders.append(spec["podSelector"]["matchLabels"])
    for labels in holders:
        labels[COMPONENT_LABEL] = CANARY
    return out


def build_canary(canary: Canary, operator: OperatorPods | None) -> list[dict[str, Any]]:
    """The canary's NetworkPolicy (when the resource has them), Service and Deployment (one
    pod)."""
    pmd = canary.pmd
    name = canary_name(pmd)
    deployment = build_primary_deployment(pmd, canary.image, "primary")
    deployment["spec"]["replicas"] = 1
    children = []
    if pmd.spec.network_policy.enabled:
        children.append(_as_canary(build_network_policy(pmd, "primary", operator), name))
    children.append(_as_canary(build_primary_service(pmd), name))
    children.append(_as_canary(deployment, name))
    return children
