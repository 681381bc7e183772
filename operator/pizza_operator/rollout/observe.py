"""A canary step as the routers saw it (pure): canary against stable from two sets of scrapes.

Every router pod's counters at the step's start (the baseline) and now: requests the routers
sent to the canary and how they ended (`pizza_router_upstream_requests_total{upstream=canary}`:
anything but `ok` is a failure, its breaker's skips included), both p95s from
`pizza_router_upstream_duration_seconds` (answered requests), and the agreement counts
(`pizza_router_canary_agreement_total`: `error`, a stable primary that did not answer, is no
pair). A pod missing from the baseline started since: it counts whole; a pod that restarted
counts from zero (`pod_delta`).
"""

from __future__ import annotations

from collections.abc import Mapping

from pizza_operator.analysis.window import (
    CANARY_AGREEMENT,
    UPSTREAM_DURATION_BUCKETS,
    UPSTREAM_REQUESTS,
    Scrape,
    SeriesKey,
    histogram_quantile,
    pod_delta,
)
from pizza_operator.rollout.steps import Observed

Scrapes = Mapping[str, Scrape | None]


def step_deltas(baseline: Scrapes, now: Scrapes) -> list[dict[SeriesKey, float]]:
    """Each answering pod's increase since the baseline."""
    deltas = []
    for pod, scrape in now.items():
        if scrape is None:
            continue
        before = baseline.get(pod)
        deltas.append(pod_delta(before, scrape) if before is not None else dict(scrape.samples))
    return deltas


def _labelled(deltas: list[dict[SeriesKey, float]], name: str, label: str) -> dict[str, float]:
    """Sum of series `name` by the value of `label`, over the pods (upstream=canary only for
    the requests and durations)."""
    totals: dict[str, float] = {}
    for delta in deltas:
        for (series, labels), value in delta.items():
            found = dict(labels)
            if series != name or (name != CANARY_AGREEMENT and found.get("upstream") != "canary"):
                continue
            key = found.get(label, "")
            totals[key] = totals.get(key, 0.0) + value
    return totals


def _p95(deltas: list[dict[SeriesKey, float]], upstream: str) -> float | None:
    buckets: dict[float, float] = {}
    for delta in deltas:
        for (series, labels), value in delta.items():
            found = dict(labels)
            if series == UPSTREAM_DURATION_BUCKETS and found.get("upstream") == upstream:
                bound = float(found["le"])
                buckets[bound] = buckets.get(bound, 0.0) + value
    return histogram_quantile(0.95, buckets)


def observe(baseline: Scrapes, now: Scrapes, *, canary_ready: bool) -> Observed:
    """The step so far; no router answering is no data (zero requests: no verdict)."""
    deltas = step_deltas(baseline, now)
    outcomes = _labelled(deltas, UPSTREAM_REQUESTS, "outcome")
    results = _labelled(deltas, CANARY_AGREEMENT, "result")
    requests = sum(outcomes.values())
    agreed = results.get("agree", 0.0)
    return Observed(
        canary_requests=requests,
        canary_failures=requests - outcomes.get("ok", 0.0),
        canary_p95=_p95(deltas, "canary"),
        stable_p95=_p95(deltas, "primary"),
        pairs=agreed + results.get("disagree", 0.0),
        agreed=agreed,
        canary_ready=canary_ready,
    )
