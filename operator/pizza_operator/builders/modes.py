"""How many pods each component runs in each serving mode.

With `autoscaling` the count is the autoscaler's last decision (`status.autoscaling`), kept
within its bounds and the mode's floor; with `managedBy: External` it is nobody's business of
ours (None: the Deployment is applied without `replicas`, which stays the user's autoscaler's).
"""

from __future__ import annotations

from pizza_operator.api.v1alpha1 import (
    Autoscaling,
    Mode,
    PizzaModelDeployment,
    ScalingStatus,
)
from pizza_operator.builders.naming import Component


def desired_replicas(pmd: PizzaModelDeployment, mode: Mode, component: Component) -> int | None:
    """primary and previous: as specified (or scaled); stable: CNN only (one primary pod kept for
    debugging with keepPrimaryPods), the fallback at least fallbackReplicas; emergency: the
    emergency server, no primary."""
    spec, decided = pmd.spec, pmd.status.autoscaling
    if component == "router":
        return spec.router.replicas
    if component == "primary":
        if mode in ("primary", "previous"):
            scaled = decided.primary if decided else None
            return _scaled(spec.primary.replicas, spec.primary.autoscaling, scaled, floor=0)
        keep = mode == "stable" and spec.rollback.stable.keep_primary_pods
        return min(1, spec.primary.replicas) if keep else 0
    if mode == "emergency":
        return spec.rollback.emergency.replicas
    scaled = decided.fallback if decided else None
    if mode == "stable":
        floor = spec.rollback.stable.fallback_replicas or spec.fallback.replicas
        if spec.fallback.autoscaling is None:
            return floor
        return _scaled(floor, spec.fallback.autoscaling, scaled, floor=floor)
    return _scaled(spec.fallback.replicas, spec.fallback.autoscaling, scaled, floor=0)


def scaling_bounds(autoscaling: Autoscaling, floor: int) -> tuple[int, int]:
    """(fewest, most) pods: the autoscaling bounds, raised to a mode's floor."""
    return max(autoscaling.min_replicas, floor), max(autoscaling.max_replicas, floor)


def may_run_several(pmd: PizzaModelDeployment, mode: Mode, component: Component) -> bool:
    """Whether the component may have more than one pod in this mode (it then gets a PDB): an
    autoscaled one by its bounds, so that its PDB does not come and go with the load."""
    autoscaling = None
    if component != "router" and (mode in ("primary", "previous") or component == "fallback"):
        autoscaling = getattr(pmd.spec, component).autoscaling
    if mode == "emergency" and component == "fallback":
        autoscaling = None
    count = desired_replicas(pmd, mode, component)
    if autoscaling is None:
        return count is not None and count > 1
    return autoscaling.managed_by == "External" or autoscaling.max_replicas > 1 or (count or 0) > 1


def _scaled(
    start: int, autoscaling: Autoscaling | None, decided: ScalingStatus | None, *, floor: int
) -> int | None:
    if autoscaling is None:
        return start
    if autoscaling.managed_by == "External":
        return None
    low, high = scaling_bounds(autoscaling, floor)
    wanted = decided.wanted if decided is not None else start
    return min(high, max(low, wanted))
