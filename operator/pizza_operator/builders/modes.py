"""How many pods each component runs in each serving mode."""

from __future__ import annotations

from pizza_operator.api.v1alpha1 import Mode, PizzaModelDeployment
from pizza_operator.builders.naming import Component


def desired_replicas(pmd: PizzaModelDeployment, mode: Mode, component: Component) -> int:
    """primary and previous: as specified; stable: CNN only (one primary pod kept for
    debugging with keepPrimaryPods); emergency: the emergency server, no primary."""
    spec = pmd.spec
    if component == "router":
        return spec.router.replicas
    if component == "primary":
        if mode in ("primary", "previous"):
            return spec.primary.replicas
        keep = mode == "stable" and spec.rollback.stable.keep_primary_pods
        return min(1, spec.primary.replicas) if keep else 0
    if mode == "stable":
        return spec.rollback.stable.fallback_replicas or spec.fallback.replicas
    if mode == "emergency":
        return spec.rollback.emergency.replicas
    return spec.fallback.replicas
