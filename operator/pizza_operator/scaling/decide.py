"""The autoscaler's decision for one component (pure: no clock, no I/O).

Up at once, down slowly: the count follows `ceil(in flight / target per pod)` upwards on the
first look, and downwards only to the highest count wanted within the scale-down window (as the
HPA's stabilisation window does). A primary with `idleAfter` sleeps at zero once no request was
meant for it for that long, and wakes (one pod, or minReplicas) on the first one; while pods
cannot be scheduled (no GPU free) it asks for no more, and the fallback carries the rest.
No signal (no router answered) keeps the count: no data is no decision.
"""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class Bounds:
    min: int
    max: int
    target: float  # requests in flight per pod
    window: float  # seconds of the scale-down stabilisation window
    idle_after: float | None = None  # primary: seconds without demand before sleeping
    floor: int = 0  # a mode's floor (stable: fallbackReplicas), above min


@dataclasses.dataclass(frozen=True)
class Load:
    in_flight: float | None  # requests in flight to the component, all routers; None: unknown
    demand: float = 0.0  # requests meant for it since the last look (the primary's wake-up)
    unschedulable: int = 0  # its pods that cannot be placed (not capacity)


@dataclasses.dataclass(frozen=True)
class Decision:
    wanted: int
    reason: str
    asleep: bool = False


Recent = tuple[tuple[float, int], ...]
"""(time, count wanted by the load) of the looks within the window, oldest first."""


def decide(
    now: float,
    current: int,
    load: Load,
    bounds: Bounds,
    recent: Recent,
    *,
    last_demand: float | None,
    asleep: bool = False,
) -> tuple[Decision, Recent]:
    """The count wanted now and the window's record to keep for the next look."""
    low = max(bounds.min, bounds.floor, 1)  # zero only by idleness, never by the load
    high = max(bounds.max, bounds.floor)
    if load.demand > 0 and asleep:
        return Decision(low, f"woken: {load.demand:g} request(s) meant for it"), ()
    if asleep:
        return Decision(0, "asleep: no request meant for it since", True), ()
    if load.in_flight is None:
        return Decision(current, "no signal from the routers: count kept", asleep), recent
    idle = _idle_for(now, last_demand, bounds)
    if idle is not None and load.in_flight == 0 and bounds.floor == 0:
        return Decision(0, f"idle for {idle:.0f} s: asleep, the fallback answers", True), ()
    by_load = min(high, max(low, math.ceil(load.in_flight / bounds.target)))
    kept = (*((t, n) for t, n in recent if now - t < bounds.window), (now, by_load))
    per_pod = f"{load.in_flight:g} in flight, {bounds.target:g} per pod"
    if by_load > current:
        if load.unschedulable > 0:
            return Decision(
                current,
                f"{per_pod}: {load.unschedulable} pod(s) unschedulable, "
                "no more asked for (the fallback carries the rest)",
            ), kept
        return Decision(by_load, f"{per_pod}: up to {by_load}"), kept
    stable = max(n for _, n in kept)
    if stable < current:
        return Decision(stable, f"{per_pod}: down to {stable}, the highest within the window"), kept
    if current < low:
        return Decision(low, f"raised to the floor {low}"), kept
    return Decision(min(current, high), f"{per_pod}: {min(current, high)} kept"), kept


def _idle_for(now: float, last_demand: float | None, bounds: Bounds) -> float | None:
    """Seconds idle when past idleAfter, else None (never idle without idleAfter)."""
    if bounds.idle_after is None or last_demand is None:
        return None
    idle = now - last_demand
    return idle if idle >= bounds.idle_after else None
