"""The operator's own Prometheus metrics (served on --metrics-port)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from prometheus_client import Counter, Gauge, Histogram

from pizza_operator.api.v1alpha1 import Mode

MODES: tuple[Mode, ...] = ("primary", "previous", "stable", "emergency")

RECONCILES = Counter(
    "pizza_operator_reconciles_total",
    "Reconciles of PizzaModelDeployments, by kind (full or status) and result.",
    ["kind", "result"],
)
RECONCILE_DURATION = Histogram(
    "pizza_operator_reconcile_duration_seconds",
    "Time one reconcile took, by kind (full or status).",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ERRORS = Counter(
    "pizza_operator_reconcile_errors_total",
    "Reconciles that failed, by reason (InvalidSpec, ApiError, ...).",
    ["reason"],
)
MODE = Gauge(
    "pizza_operator_mode",
    "1 for the serving mode each PizzaModelDeployment is in, 0 for the others.",
    ["namespace", "name", "mode"],
)

ANALYSIS_CHECKS = Counter(
    "pizza_operator_analysis_checks_total",
    "Analysis checks, by component (primary, fallback) and verdict (Healthy, Failed, "
    "Inconclusive).",
    ["component", "verdict"],
)
METRICS_UNAVAILABLE = Counter(
    "pizza_operator_analysis_metrics_unavailable_total",
    "Analysis checks whose metrics source gave no data (no answer, a failed query, a malformed "
    "or oversized answer), by source (prometheus, scrape).",
    ["source"],
)
ANALYSIS_VALUE = Gauge(
    "pizza_operator_analysis_value",
    "The last value of each analysis signal (failureRate, latencyP95Seconds, requests, ready, "
    "restarts, consecutiveFailures), by resource and component; absent when not measured.",
    ["namespace", "name", "component", "signal"],
)
ANALYSIS_THRESHOLD = Gauge(
    "pizza_operator_analysis_threshold",
    "The limit each analysis signal is compared against (failureRate, latencyP95Seconds, "
    "minRequests, maxRestarts), by resource and component: a dashboard draws it beside the value.",
    ["namespace", "name", "component", "signal"],
)
ROLLBACKS = Counter(
    "pizza_operator_rollbacks_total",
    "Steps of the rollback ladder taken, by resource, target mode and reason.",
    ["namespace", "name", "to", "reason"],
)
REPLICAS_WANTED = Gauge(
    "pizza_operator_replicas_wanted",
    "Pods each component is given now (the mode's count, or the autoscaler's; 0 for a sleeping "
    "primary), by resource and component; absent for a component left to an external autoscaler.",
    ["namespace", "name", "component"],
)
ANALYSIS_TICK_LAG = Histogram(
    "pizza_operator_analysis_tick_lag_seconds",
    "How late each analysis tick started: the time it began running (a slot free) minus the "
    "time it was due (the end of the last tick plus the interval).",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
LEADING = Gauge(
    "pizza_operator_leading",
    "1 while this replica holds the leader Lease and acts (always 1 when standalone), else 0.",
)


def set_values(namespace: str, name: str, component: str, values: dict[str, float | None]) -> None:
    for signal, value in values.items():
        labels = {"namespace": namespace, "name": name, "component": component, "signal": signal}
        if value is None:
            with contextlib.suppress(KeyError):
                ANALYSIS_VALUE.remove(*labels.values())
        else:
            ANALYSIS_VALUE.labels(**labels).set(value)


def set_thresholds(namespace: str, name: str, component: str, limits: dict[str, float]) -> None:
    for signal, limit in limits.items():
        ANALYSIS_THRESHOLD.labels(
            namespace=namespace, name=name, component=component, signal=signal
        ).set(limit)


ROLLOUT_PHASES = ("Progressing", "Paused", "Promoted", "Aborted")
ROLLOUT_PHASE = Gauge(
    "pizza_operator_rollout_phase",
    "1 for the phase of each resource's last rollout of a new primary revision (Progressing, "
    "Paused, Promoted, Aborted), 0 for the others.",
    ["namespace", "name", "phase"],
)
CANARY_WEIGHT = Gauge(
    "pizza_operator_rollout_canary_weight",
    "Percent of the requests meant for the primary that the canary of a new revision gets now.",
    ["namespace", "name"],
)
ROLLOUT_ABORTS = Counter(
    "pizza_operator_rollout_aborts_total",
    "Canaries of new primary revisions aborted (a failed gate, never ready, or asked).",
    ["namespace", "name"],
)


def set_rollout(namespace: str, name: str, phase: str, weight: int, *, aborted: bool) -> None:
    for candidate in ROLLOUT_PHASES:
        ROLLOUT_PHASE.labels(namespace=namespace, name=name, phase=candidate).set(
            1 if candidate == phase else 0
        )
    CANARY_WEIGHT.labels(namespace=namespace, name=name).set(weight)
    if aborted:
        ROLLOUT_ABORTS.labels(namespace=namespace, name=name).inc()


def set_mode(namespace: str, name: str, mode: Mode) -> None:
    for candidate in MODES:
        MODE.labels(namespace=namespace, name=name, mode=candidate).set(
            1 if candidate == mode else 0
        )


def set_wanted(namespace: str, name: str, wanted: Mapping[str, int | None]) -> None:
    for component, count in wanted.items():
        if count is None:
            with contextlib.suppress(KeyError):
                REPLICAS_WANTED.remove(namespace, name, component)
        else:
            REPLICAS_WANTED.labels(namespace=namespace, name=name, component=component).set(count)


def forget(namespace: str, name: str) -> None:
    """Drop the series of a deleted resource."""
    with contextlib.suppress(KeyError):
        CANARY_WEIGHT.remove(namespace, name)
    for candidate in MODES:
        with contextlib.suppress(KeyError):
            MODE.remove(namespace, name, candidate)
    for gauge in (ANALYSIS_VALUE, ANALYSIS_THRESHOLD, REPLICAS_WANTED, ROLLOUT_PHASE):
        for labels in list(gauge._metrics):
            if labels[:2] == (namespace, name):
                with contextlib.suppress(KeyError):
                    gauge.remove(*labels)
