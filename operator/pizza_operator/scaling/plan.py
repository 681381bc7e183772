"""What the autoscaler looks at and what it records (pure).

`targets` names the components the operator scales in the resource's mode, with their bounds;
`next_status` turns a decision into the `status.autoscaling` entry, and says whether it must be
written (the count or sleep changed, or the primary's last demand moved on by `demand_every`:
few writes while requests flow). The idle count itself runs from `idle_since`: the operator's
own last sight of a demand, never older than the written one (which lags by up to
`demand_every`, and only serves an operator that restarted)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pizza_operator.api.v1alpha1 import Autoscaling, PizzaModelDeployment, ScalingStatus
from pizza_operator.builders.modes import desired_replicas, scaling_bounds
from pizza_operator.contract import CheckReason, format_time, parse_time
from pizza_operator.rollback import parse_duration
from pizza_operator.rollback.plan import mode_of
from pizza_operator.scaling.decide import Bounds, Decision

DEMAND_EVERY = 30.0
"""Seconds between writes of the primary's last demand while requests keep coming (at most half
its `idleAfter`: see `demand_every`)."""
Scaled = str  # "primary" or "fallback"


@dataclass(frozen=True)
class Target:
    component: Scaled
    bounds: Bounds
    current: int
    previous: ScalingStatus | None


def targets(pmd: PizzaModelDeployment) -> list[Target]:
    """The components the operator scales now: autoscaling set, not External, running in this
    mode (the primary only in primary and previous modes; the fallback in every mode but
    emergency, above the stable mode's floor)."""
    mode, found = mode_of(pmd), []
    decided = pmd.status.autoscaling
    for component in ("primary", "fallback"):
        spec = getattr(pmd.spec, component)
        autoscaling: Autoscaling | None = spec.autoscaling
        if autoscaling is None or autoscaling.managed_by == "External":
            continue
        if mode == "emergency" or (component == "primary" and mode == "stable"):
            continue
        floor = 0
        if component == "fallback" and mode == "stable":
            floor = pmd.spec.rollback.stable.fallback_replicas or spec.replicas
        low, high = scaling_bounds(autoscaling, floor)
        idle = getattr(autoscaling, "idle_after", None)
        bounds = Bounds(
            min=low,
            max=high,
            target=autoscaling.target_in_flight,
            window=parse_duration(autoscaling.scale_down_window),
            idle_after=parse_duration(idle) if idle else None,
            floor=floor,
        )
        current = desired_replicas(pmd, mode, component) or 0
        previous = getattr(decided, component) if decided else None
        found.append(Target(component, bounds, current, previous))
    return found


def last_demand(previous: ScalingStatus | None, now: datetime) -> float:
    """The primary's last demand as epoch seconds; a first look starts the idle count now."""
    if previous is not None and previous.last_demand:
        try:
            return parse_time(previous.last_demand).timestamp()
        except ValueError:
            pass
    return now.timestamp()


def idle_since(previous: ScalingStatus | None, seen: float | None, now: datetime) -> float:
    """When the primary's idle count starts (epoch seconds): the later of the demand this
    operator saw itself (`seen`, None before it saw one) and the one written in the status."""
    written = last_demand(previous, now)
    return written if seen is None else max(seen, written)


def demand_every(bounds: Bounds) -> float:
    """Seconds between writes of the last demand: `DEMAND_EVERY`, or half of `idleAfter` when
    shorter (an operator that restarts reads a demand at most that old)."""
    if bounds.idle_after is None:
        return DEMAND_EVERY
    return min(DEMAND_EVERY, bounds.idle_after / 2)


def next_status(
    target: Target, decision: Decision, in_flight: float | None, demanded: bool, now: datetime
) -> tuple[ScalingStatus, bool]:
    """(the new entry, whether to write it)."""
    previous, stamp = target.previous, format_time(now)
    demand_at = stamp if demanded or previous is None else previous.last_demand
    moved = decision.wanted != target.current or previous is None
    changed = moved or (previous is not None and decision.asleep != previous.asleep)
    entry = ScalingStatus(
        wanted=decision.wanted,
        reason=decision.reason,
        time=stamp if changed or previous is None else previous.time,
        in_flight=in_flight,
        last_demand=demand_at if target.component == "primary" else None,
        asleep=decision.asleep,
    )
    stale_demand = False
    if target.component == "primary" and demanded and previous is not None:
        seen = last_demand(previous, now)
        stale_demand = now.timestamp() - seen >= demand_every(target.bounds)
    return entry, changed or stale_demand


def primary_by_design(pmd: PizzaModelDeployment, now: datetime) -> CheckReason | None:
    """Why the primary serves nothing on purpose, for the analysis to judge no failure:
    `PrimaryAsleep` (scaled to zero for idleness), `PrimaryScalingUp` (the autoscaler raised its
    count within its startup timeout: the new pods are still loading). None otherwise."""
    scaled = pmd.status.autoscaling.primary if pmd.status.autoscaling else None
    if scaled is None:
        return None
    if scaled.asleep:
        return "PrimaryAsleep"
    ready = pmd.status.primary.ready_replicas if pmd.status.primary else 0
    try:
        since = now.timestamp() - parse_time(scaled.time).timestamp()
    except ValueError:
        return None
    if ready < scaled.wanted and since < pmd.spec.primary.startup_timeout_seconds:
        return "PrimaryScalingUp"
    return None
