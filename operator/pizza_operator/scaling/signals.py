"""The load of each component, from two looks at every router pod (pure).

`in_flight` sums the routers' `pizza_router_upstream_in_flight{upstream}` gauges now (None when
no router answered: no signal); `demand` is the increase of `pizza_router_primary_demand_total`
since the previous look (a router that restarted counts from zero)."""

from __future__ import annotations

from collections.abc import Mapping

from pizza_operator.analysis.kube_signals import ready_for
from pizza_operator.analysis.window import PRIMARY_DEMAND, UPSTREAM_IN_FLIGHT, Scrape, pod_delta

Scrapes = Mapping[str, Scrape | None]
__all__ = ["demand", "in_flight", "ready_for", "unschedulable"]


def in_flight(now: Scrapes, upstream: str) -> float | None:
    answered = [s for s in now.values() if s is not None]
    if not answered:
        return None
    return sum(
        value
        for scrape in answered
        for (name, labels), value in scrape.samples.items()
        if name == UPSTREAM_IN_FLIGHT and dict(labels).get("upstream") == upstream
    )


def demand(before: Scrapes, now: Scrapes) -> float:
    """Requests meant for the primary between the two looks, over the pods seen both times (a
    pod first seen now counts whole: it started since). No previous look at all (the operator
    just started): no baseline, nothing counted."""
    if not before:
        return 0.0
    total = 0.0
    for pod, scrape in now.items():
        if scrape is None:
            continue
        previous = before.get(pod)
        deltas = pod_delta(previous, scrape) if previous is not None else dict(scrape.samples)
        total += sum(v for (name, _), v in deltas.items() if name == PRIMARY_DEMAND)
    return total


def unschedulable(pods: list[dict[str, object]]) -> int:
    """Pods the scheduler could not place (no GPU free): not capacity."""
    count = 0
    for pod in pods:
        status = pod.get("status")
        conditions = status.get("conditions") if isinstance(status, dict) else None
        for condition in conditions if isinstance(conditions, list) else []:
            if (
                isinstance(condition, dict)
                and condition.get("type") == "PodScheduled"
                and condition.get("status") == "False"
                and condition.get("reason") == "Unschedulable"
            ):
                count += 1
    return count
