"""How many pods each component runs in each serving mode."""

from __future__ import annotations

from pizza_operator.api.v1alpha1 import Mode, PizzaModelDeployment
from pizza_operator.builders.naming import Component


def desired_replicas(pmd: PizzaModelDeployment, mode: Mode, component: Component) -> int:
    """primary: as specified; stable: CNN only; emergency: a minimal fallback, no primary."""
    spec = pmd.spec
    if component == "router":
        return spec.router.replicas
    if component == "primary":
        return spec.primary.replicas if mode == "primary" else 0
    if mode == "stable":
        return spec.rollback.stable.fallback_replicas or spec.fallback.replicas
    if mode == "emergency":
        return spec.rollback.emergency.replicas
    return spec.fallback.replicas
