"""Prometheus metrics of the inference plane (module level, the prior system's names and labels).

`pizza_api_requests_total{method,endpoint,status}` counts every HTTP request except the metric
scrapes themselves; `endpoint` is the route template (`/v2/models/{name}/infer`), so the label set
stays small. The error rate of a component is
`sum(rate(pizza_api_requests_total{status=~"5.."}[1m])) / sum(rate(pizza_api_requests_total[1m]))`.
"""

from __future__ import annotations

import os
import resource
import sys
from collections.abc import Callable

import prometheus_client
from prometheus_client import Counter, Gauge, Histogram

from pizza_inference.memory import MemoryPool

prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Histogram buckets from 1 ms to 10 s."""

REQUESTS = Counter(
    "pizza_api_requests_total",
    "HTTP requests by method, route template and status code",
    ["method", "endpoint", "status"],
)
REQUEST_DURATION = Histogram(
    "pizza_api_request_duration_seconds",
    "HTTP request duration (whole request, server side)",
    ["method", "endpoint"],
    buckets=BUCKETS,
)
INFERENCES = Counter(
    "pizza_api_inference_total", "Images classified, by the model that answered", ["model"]
)
INFERENCE_DURATION = Histogram(
    "pizza_api_inference_duration_seconds",
    "Time per image from queueing to result (batching wait included), by model",
    ["model"],
    buckets=BUCKETS,
)
MODEL_ERRORS = Counter(
    "pizza_api_model_errors_total",
    "Model failures by model and kind (load, warmup, inference; the router: error, timeout...)",
    ["model", "error_type"],
)
ACTIVE_CONNECTIONS = Gauge(
    "pizza_api_active_connections", "HTTP requests in flight in this process"
)
MEMORY_USAGE = Gauge("pizza_api_memory_usage_bytes", "Resident memory of this process")
GPU_MEMORY_USAGE = Gauge(
    "pizza_api_gpu_memory_usage_bytes", "CUDA memory allocated by this process (0 without CUDA)"
)
FALLBACKS = Counter(
    "pizza_api_fallback_total",
    "Requests the router answered from the fallback, by reason",
    ["reason"],
)
FALLBACK_REASONS = (
    "error",
    "timeout",
    "unavailable",
    "circuit_open",
    "requested",
    "ab_test",
    "mode_stable",
    "mode_emergency",
    "primary_idle",
    "primary_lent",
    "client_share",
)
"""Every reason the router labels a fallback with (`client_share`: the client held its whole
share of the primary, `router.shares`; not a failure of the primary)."""


def expose_fallback_reasons() -> None:
    """Every reason's series from 0, before the first fallback: Prometheus takes a new series'
    first sample as its baseline, so a series born with the first failures would hide them from
    `increase()` exactly when a fault starts."""
    for reason in FALLBACK_REASONS:
        FALLBACKS.labels(reason)


UPSTREAM_IN_FLIGHT = Gauge(
    "pizza_router_upstream_in_flight",
    "Requests this router has in flight to each upstream (primary, canary, fallback): the "
    "autoscaler's load signal (the stable primary's is `primary`)",
    ["upstream"],
)
PRIMARY_DEMAND = Counter(
    "pizza_router_primary_demand_total",
    "Requests meant for the primary, whoever answered them (a sleeping primary is woken by them)",
)
ROUTER_MODE = Gauge(
    "pizza_router_mode",
    "The router's serving mode: 1 for the current mode, 0 for the others",
    ["mode"],
)
ROUTER_MODE_CHANGES = Counter(
    "pizza_router_mode_changes_total",
    "Times the router's mode changed while it ran (from its mode ConfigMap)",
)

PRIMARY_CLIENT_REQUESTS = Counter(
    "pizza_router_primary_client_requests_total",
    "Requests meant for the primary (answered by it, failed by it, or skipped by the open "
    "circuit breaker), by client group: the client's address hashed into 16 groups",
    ["client_group"],
)
PRIMARY_CLIENT_FAILURES = Counter(
    "pizza_router_primary_client_failures_total",
    "Requests meant for the primary that it failed (error, timeout, unavailable) or that the "
    "open circuit breaker skipped, by client group (the operator judges the primary across "
    "groups: docs/rollback.md)",
    ["client_group"],
)
PRIMARY_IN_FLIGHT = Gauge(
    "pizza_router_primary_in_flight",
    "Requests the router has at the primary now (each client within its share)",
)


def expose_client_groups(groups: int) -> None:
    """Every client group's series from 0 (see `expose_fallback_reasons`)."""
    for group in range(groups):
        PRIMARY_CLIENT_REQUESTS.labels(str(group))
        PRIMARY_CLIENT_FAILURES.labels(str(group))


UPSTREAMS = ("primary", "canary", "fallback")
UPSTREAM_OUTCOMES = ("ok", "error", "timeout", "unavailable")
UPSTREAM_REQUESTS = Counter(
    "pizza_router_upstream_requests_total",
    "Requests the router sent (or meant) to each upstream (primary: the stable primary; canary; "
    "fallback), by outcome: ok (answered, or a bad input refused with 4xx), error, timeout, "
    "unavailable (unreachable, not ready, shedding load, or skipped by its open circuit breaker)",
    ["upstream", "outcome"],
)
UPSTREAM_DURATION = Histogram(
    "pizza_router_upstream_duration_seconds",
    "Time from sending to each upstream to its answer, answered requests only (the operator "
    "compares the canary's p95 with the stable primary's)",
    ["upstream"],
    buckets=BUCKETS,
)
CANARY_AGREEMENT = Counter(
    "pizza_router_canary_agreement_total",
    "Canary answers also asked of the stable primary (agreementSample): agree and disagree "
    "compare predicted_class; error when the stable primary gave no answer",
    ["result"],
)
CANARY_AGREEMENT_RESULTS = ("agree", "disagree", "error")
CANARY_AGREEMENT_DROPPED = Counter(
    "pizza_router_canary_agreement_dropped_total",
    "Agreement comparisons not made because the most allowed were in flight already",
)


def expose_upstreams() -> None:
    """Every upstream and outcome's series, and every agreement result's, from 0 (see
    `expose_fallback_reasons`)."""
    for upstream in UPSTREAMS:
        UPSTREAM_DURATION.labels(upstream)
        UPSTREAM_IN_FLIGHT.labels(upstream)
        for outcome in UPSTREAM_OUTCOMES:
            UPSTREAM_REQUESTS.labels(upstream, outcome)
    for result in CANARY_AGREEMENT_RESULTS:
        CANARY_AGREEMENT.labels(result)


RATE_LIMITED = Counter(
    "pizza_router_rate_limited_total",
    "Requests the router refused with 429 because their client exceeded its rate limit "
    "(a series from 0, so a dashboard and an alert see the first one)",
)

MEMORY_BUDGET = Gauge(
    "pizza_api_memory_budget_bytes",
    "The memory budget of each pool (bodies, images), from --memory-budget-bytes",
    ["pool"],
)
MEMORY_IN_FLIGHT = Gauge(
    "pizza_api_memory_in_flight_bytes",
    "Memory the requests in flight hold against each pool's budget",
    ["pool"],
)
MEMORY_SHED = Counter(
    "pizza_api_memory_shed_total",
    "Requests refused with 503 because a pool of the memory budget was in use",
    ["pool"],
)

SLOW_SENDERS = Counter(
    "pizza_api_slow_senders_total",
    "Requests answered 408 (and closed) because their head or body did not arrive in time",
    ["part"],
)
for _part in ("head", "body"):
    SLOW_SENDERS.labels(_part)
OVERLOAD_REFUSED = Counter(
    "pizza_api_overload_refused_total",
    "Requests answered 503 because too many were in flight (limit=requests), or connections "
    "closed at once because too many were open (limit=connections)",
    ["limit"],
)
for _limit in ("requests", "connections"):
    OVERLOAD_REFUSED.labels(_limit)


def memory_pool_observer(pool: str, capacity: int) -> Callable[[MemoryPool], None]:
    """What a pool calls on every change: its gauges, the label lookups done once (the router
    calls it twice a request). Its shed count starts at 0."""
    MEMORY_BUDGET.labels(pool).set(capacity)
    MEMORY_SHED.labels(pool)
    in_flight = MEMORY_IN_FLIGHT.labels(pool)

    def observe(changed: MemoryPool) -> None:
        in_flight.set(changed.in_use)

    return observe


METRICS_PATHS = frozenset({"/metrics", "/prometheus-metrics"})


def resident_memory_bytes() -> float:
    """Current resident set size (from /proc; peak RSS where /proc is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
        return float(pages * os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, IndexError):
        return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def gpu_memory_bytes() -> float:
    """CUDA memory allocated by this process; 0 when torch is not loaded or CUDA is not in use."""
    torch = sys.modules.get("torch")
    if torch is None:
        return 0.0
    try:
        if not torch.cuda.is_initialized():
            return 0.0
        return float(sum(torch.cuda.memory_allocated(d) for d in range(torch.cuda.device_count())))
    except Exception:
        return 0.0


MEMORY_USAGE.set_function(resident_memory_bytes)
GPU_MEMORY_USAGE.set_function(gpu_memory_bytes)


def render_prometheus() -> tuple[bytes, str]:
    """The text exposition of the default registry and its content type."""
    return prometheus_client.generate_latest(), prometheus_client.CONTENT_TYPE_LATEST
