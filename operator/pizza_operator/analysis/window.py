"""The router's window from two scrapes of its pods' `/metrics` (pure; `scrape` fetches them).

Used when `spec.analysis.prometheus.address` is not set. The analysis scrapes every router
pod (pod IPs from the API) at each check, keeps the scrape of about one window ago, and calls
`router_window(before, after, ...)`. The counters read (all from `pizza_inference.metrics`):

- `pizza_api_fallback_total{reason}`: requests the router answered from the fallback. The reasons
  in `PRIMARY_FAILURE_REASONS` mean the request was meant for the primary and the primary failed
  (`error`, `timeout`, `unavailable`) or was skipped by the open circuit breaker (`circuit_open`).
  The others (`requested`, `ab_test`, `mode_stable`, `mode_emergency`) were never meant for it.
- `pizza_api_inference_total{model}`: images a model server answered, by `model_used`.
- `pizza_api_model_errors_total{model,error_type}`: failed forwards; `model` is the server's
  model name, or its role (`primary`, `fallback`) before it ever answered.
- `pizza_api_inference_duration_seconds_bucket{model,le}`: time per successful forward.
- `pizza_api_requests_total{endpoint,status}`: every HTTP request the router served.
- `pizza_router_primary_client_requests_total{client_group}` and
  `pizza_router_primary_client_failures_total{client_group}`: the requests meant for the primary
  and its failures (breaker skips included) per client group, summed over pods by group (a
  client falls in the same group on every pod); the failure rate is judged across them
  (`rollback.clients`). A router without them gives no groups: judged as before.
  (`client_share` fallbacks, a client over its share of the primary, were never sent to it:
  they are in neither, nor in the primary's failures.)

Requests meant for the primary = answered by the primary + fallbacks for a primary failure;
the primary's failure rate is the second over the first. Client-visible errors are the router's
5xx over all its requests (health probes left out: kubelet traffic is not client traffic).
Counters are summed over the pods scraped both times; a pod whose counters went down or
vanished restarted, and its whole current value is its delta (as Prometheus' `rate` does), so a
restart never gives a negative rate. A pod seen only once has no baseline and adds nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from pizza_operator.rollback.clients import ClientGroups
from pizza_operator.rollback.verdicts import MetricSignals

PRIMARY_FAILURE_REASONS = frozenset({"error", "timeout", "unavailable", "circuit_open"})
"""`pizza_api_fallback_total` reasons that count against the primary."""
BREAKER_SKIP = "circuit_open"


def primary_failures(reasons: Mapping[str, float]) -> float:
    """Fallbacks that count against the primary in a window. Requests the open breaker skipped
    (`circuit_open`) count only in a window where the primary also really failed: the breaker
    lags (it stays open up to its reset time after the primary recovered, e.g. after a rollback
    to a good revision), and on its own it says nothing of the primary now. In a real outage the
    breaker's trial requests keep failing, so its skips keep counting."""
    real = sum(v for r, v in reasons.items() if r in PRIMARY_FAILURE_REASONS and r != BREAKER_SKIP)
    return real + reasons.get(BREAKER_SKIP, 0.0) if real > 0 else 0.0


FALLBACK = "pizza_api_fallback_total"
INFERENCES = "pizza_api_inference_total"
MODEL_ERRORS = "pizza_api_model_errors_total"
REQUESTS = "pizza_api_requests_total"
DURATION_BUCKETS = "pizza_api_inference_duration_seconds_bucket"
UPSTREAM_IN_FLIGHT = "pizza_router_upstream_in_flight"
"""Gauge: requests in flight from this router to each upstream (primary, fallback)."""
PRIMARY_DEMAND = "pizza_router_primary_demand_total"
"""Counter: requests meant for the primary (answered by it or not: asleep, failed...)."""
CLIENT_REQUESTS = "pizza_router_primary_client_requests_total"
CLIENT_FAILURES = "pizza_router_primary_client_failures_total"
UPSTREAM_REQUESTS = "pizza_router_upstream_requests_total"
"""Counter: requests sent (or meant) to each upstream (primary, canary, fallback) by outcome."""
UPSTREAM_DURATION_BUCKETS = "pizza_router_upstream_duration_seconds_bucket"
CANARY_AGREEMENT = "pizza_router_canary_agreement_total"
"""Counter: the canary's sampled answers compared with the stable primary's, by result."""
_KEPT = frozenset(
    {
        FALLBACK,
        INFERENCES,
        MODEL_ERRORS,
        REQUESTS,
        DURATION_BUCKETS,
        UPSTREAM_IN_FLIGHT,
        PRIMARY_DEMAND,
        CLIENT_REQUESTS,
        CLIENT_FAILURES,
        UPSTREAM_REQUESTS,
        UPSTREAM_DURATION_BUCKETS,
        CANARY_AGREEMENT,
    }
)

Labels = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, Labels]


@dataclass(frozen=True)
class Scrape:
    """One router pod's counters at one moment (only the series the analysis reads)."""

    samples: Mapping[SeriesKey, float]


def parse_router_metrics(text: str) -> Scrape:
    """Parses Prometheus text exposition; raises ValueError on text that is not one."""
    samples: dict[SeriesKey, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in _KEPT:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                samples[key] = float(sample.value)
    return Scrape(samples)


def pod_delta(before: Scrape, after: Scrape) -> dict[SeriesKey, float]:
    """Increase of every series; the whole current value when the pod restarted in between."""
    restarted = any(after.samples.get(key, -1.0) < value for key, value in before.samples.items())
    if restarted:
        return dict(after.samples)
    return {key: value - before.samples.get(key, 0.0) for key, value in after.samples.items()}


def _sum(deltas: Mapping[SeriesKey, float], name: str, **match: Iterable[str]) -> float:
    """Sum of the series named `name` whose labels take one of the given values."""
    allowed = {label: set(values) for label, values in match.items()}
    total = 0.0
    for (series, labels), value in deltas.items():
        if series != name:
            continue
        found = dict(labels)
        if all(found.get(label) in values for label, values in allowed.items()):
            total += value
    return total


def histogram_quantile(quantile: float, buckets: Mapping[float, float]) -> float | None:
    """Prometheus' `histogram_quantile` over cumulative bucket counts (`le` -> count).

    Linear interpolation inside the bucket that holds the rank; None without observations.
    A rank in the `+Inf` bucket returns the highest finite bound, as Prometheus does.
    """
    bounds = sorted(buckets)
    if not bounds or not math.isinf(bounds[-1]):
        return None
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = quantile * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return bounds[-2] if len(bounds) > 1 else None
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return None


def _p95(deltas: Mapping[SeriesKey, float], model: str) -> float | None:
    buckets: dict[float, float] = {}
    for (series, labels), value in deltas.items():
        found = dict(labels)
        if series == DURATION_BUCKETS and found.get("model") == model:
            bound = float(found["le"])
            buckets[bound] = buckets.get(bound, 0.0) + value
    return histogram_quantile(0.95, buckets)


def _ratio(part: float, whole: float) -> float | None:
    return min(1.0, part / whole) if whole > 0 else None


@dataclass(frozen=True)
class RouterWindow:
    """What the router pods saw between two scrapes, as the analysis judges it."""

    primary: MetricSignals
    fallback: MetricSignals
    client: MetricSignals
    fallback_reasons: dict[str, float] = field(default_factory=dict)
    pods_compared: int = 0
    pods_missing: int = 0
    error: str | None = None  # why the metrics source gave no data, when it gave none


def _by_group(deltas: Mapping[SeriesKey, float], name: str) -> dict[str, float]:
    groups: dict[str, float] = {}
    for (series, labels), value in deltas.items():
        if series == name:
            group = dict(labels).get("client_group", "")
            groups[group] = groups.get(group, 0.0) + value
    return groups


def client_groups(deltas: Mapping[SeriesKey, float]) -> ClientGroups | None:
    """The primary's requests and failures per client group; None when no pod counts them."""
    requests = _by_group(deltas, CLIENT_REQUESTS)
    if not requests:
        return None
    return ClientGroups(requests, _by_group(deltas, CLIENT_FAILURES))


def _fallback_reasons(deltas: Mapping[SeriesKey, float]) -> dict[str, float]:
    reasons: dict[str, float] = {}
    for (series, labels), value in deltas.items():
        if series == FALLBACK:
            reason = dict(labels).get("reason", "")
            reasons[reason] = reasons.get(reason, 0.0) + value
    return reasons


def router_window(
    before: Mapping[str, Scrape | None],
    after: Mapping[str, Scrape | None],
    *,
    primary_model: str,
    fallback_model: str,
) -> RouterWindow:
    """Signals from two scrapes of the router pods (keyed by pod, None where a scrape failed).

    `primary_model` / `fallback_model` are the model servers' names (`PIZZA_MODEL_NAME`), the
    `model` label the router puts on what each answered. When no pod answered both scrapes,
    every `requests` is None: the metrics source did not answer, no verdict.
    """
    compared = [p for p in after if after[p] is not None and before.get(p) is not None]
    missing = len(set(before) | set(after)) - len(compared)
    if not compared:
        unknown = MetricSignals(None)
        why = "no router pod answered two scrapes yet" if after else "no router pod to scrape"
        return RouterWindow(unknown, unknown, unknown, pods_missing=missing, error=why)
    deltas: dict[SeriesKey, float] = {}
    for pod in compared:
        old, new = before[pod], after[pod]
        assert old is not None and new is not None
        for key, value in pod_delta(old, new).items():
            deltas[key] = deltas.get(key, 0.0) + value

    reasons = _fallback_reasons(deltas)
    primary_failed = primary_failures(reasons)
    primary_meant = _sum(deltas, INFERENCES, model=[primary_model]) + primary_failed
    primary = MetricSignals(
        primary_meant,
        _ratio(primary_failed, primary_meant),
        _p95(deltas, primary_model),
        client_groups(deltas),
    )

    fallback_names = [fallback_model, "fallback"]
    fallback_failed = _sum(deltas, MODEL_ERRORS, model=fallback_names)
    fallback_sent = _sum(deltas, INFERENCES, model=[fallback_model]) + fallback_failed
    fallback = MetricSignals(
        fallback_sent, _ratio(fallback_failed, fallback_sent), _p95(deltas, fallback_model)
    )

    client_total = client_5xx = 0.0
    for (series, labels), value in deltas.items():
        found = dict(labels)
        if series != REQUESTS or "health" in found.get("endpoint", ""):
            continue
        client_total += value
        if found.get("status", "").startswith("5"):
            client_5xx += value
    client = MetricSignals(client_total, _ratio(client_5xx, client_total))
    return RouterWindow(
        primary,
        fallback,
        client,
        {r: v for r, v in sorted(reasons.items()) if v > 0},
        len(compared),
        missing,
    )
