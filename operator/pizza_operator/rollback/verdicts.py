"""One analysis check of one component: Kubernetes and metric signals against thresholds.

No data is no verdict: a window with too few requests, or a metrics source that did not
answer, makes the metric half `Inconclusive`; only Kubernetes signals can fail a component
that gets no traffic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pizza_operator.api.v1alpha1 import AnalysisSpec
from pizza_operator.rollback.clients import ClientGroups, across_clients

Verdict = Literal["Healthy", "Failed", "Inconclusive"]
# The components the analysis judges (the router is judged through them, not on its own).
AnalysedComponent = Literal["primary", "fallback"]


@dataclass(frozen=True)
class KubeSignals:
    """What the API says of a component's Deployment and pods over the window."""

    desired: int
    ready: int
    available: bool
    rolling_out: bool = False
    progress_deadline_exceeded: bool = False
    restarts_in_window: int = 0
    crash_looping: bool = False
    unschedulable: bool = False
    startup_never_passed: bool = False
    served_window: bool = True
    """A pod has been Ready for the whole window (or none is): the window's requests are the
    ready pods' to answer for."""


@dataclass(frozen=True)
class MetricSignals:
    """Rates over the window; `requests is None` means the metrics source did not answer.
    `clients`: the primary's requests and failures per client group, where the router counts
    them (`rollback.clients`: the failure rate is judged across clients)."""

    requests: float | None
    failure_rate: float | None = None
    p95_latency_seconds: float | None = None
    clients: ClientGroups | None = None


@dataclass(frozen=True)
class Thresholds:
    """The limits a check compares against (from `spec.analysis`)."""

    failure_rate: float = 0.05
    p95_latency_seconds: float = 5.0
    min_requests: int = 20
    max_restarts: int = 2

    @classmethod
    def from_spec(cls, analysis: AnalysisSpec) -> Thresholds:
        return cls(
            failure_rate=analysis.error_rate_threshold,
            p95_latency_seconds=analysis.latency_p95_threshold_seconds,
            min_requests=analysis.min_requests,
        )


@dataclass(frozen=True)
class Check:
    """The outcome of one check: the verdict, why, and the values it saw."""

    component: AnalysedComponent
    verdict: Verdict
    reasons: tuple[str, ...]
    values: dict[str, float | None] = field(default_factory=dict)


def _kube_failures(kube: KubeSignals, limits: Thresholds) -> list[str]:
    reasons = []
    if kube.unschedulable:
        reasons.append("Unschedulable")
    if kube.crash_looping:
        reasons.append("CrashLoopBackOff")
    if kube.startup_never_passed:
        reasons.append("StartupProbeNeverPassed")
    if kube.progress_deadline_exceeded:
        reasons.append("ProgressDeadlineExceeded")
    if kube.restarts_in_window > limits.max_restarts:
        reasons.append("Restarts")
    if kube.ready == 0 and not kube.rolling_out:
        reasons.append("NoReadyPods")
    return reasons


def _metric_outcome(
    metrics: MetricSignals, failure_rate: float | None, limits: Thresholds
) -> tuple[Verdict, list[str]]:
    if metrics.requests is None:
        return "Inconclusive", ["MetricsUnavailable"]
    if metrics.requests < limits.min_requests:
        return "Inconclusive", ["TooFewRequests"]
    reasons = []
    if failure_rate is not None and failure_rate > limits.failure_rate:
        reasons.append("FailureRate")
    latency = metrics.p95_latency_seconds
    if latency is not None and latency > limits.p95_latency_seconds:
        reasons.append("LatencyP95")
    return ("Failed", reasons) if reasons else ("Healthy", [])


def judge(
    component: AnalysedComponent, kube: KubeSignals, metrics: MetricSignals, limits: Thresholds
) -> Check:
    """Failed if any signal fails; Inconclusive if nothing failed but metrics gave no verdict.

    `failureRate` is the rate judged: across clients where the router counts client groups
    (`rollback.clients`), shown beside the rate of all requests (`failureRateAllClients`) and
    the number of client groups that saw failures (`failingClientGroups`)."""
    judged = across_clients(metrics.failure_rate, metrics.clients, limits.min_requests)
    values: dict[str, float | None] = {
        "ready": float(kube.ready),
        "desired": float(kube.desired),
        "restarts": float(kube.restarts_in_window),
        "requests": metrics.requests,
        "failureRate": judged.failure_rate,
        "latencyP95Seconds": metrics.p95_latency_seconds,
    }
    if metrics.clients is not None:
        values["failureRateAllClients"] = metrics.failure_rate
        values["failingClientGroups"] = float(metrics.clients.failing)
    if kube.desired == 0:
        return Check(component, "Inconclusive", ("ScaledDown",), values)
    kube_reasons = _kube_failures(kube, limits)
    metric_verdict: Verdict
    if kube.rolling_out and kube.ready == 0:
        # no pod of the new rollout serves yet: the router's fallbacks are expected, not a
        # verdict (a rollout that never comes up fails on its Kubernetes signals instead)
        metric_verdict, metric_reasons = "Inconclusive", ["NotServingYet"]
    else:
        metric_verdict, metric_reasons = _metric_outcome(metrics, judged.failure_rate, limits)
        if metric_verdict == "Failed" and not kube.served_window:
            # the window began before any pod served: what the router met then (a cold start,
            # the breaker still open from it) is no verdict on the pods now ready; the next
            # window that they serve whole is
            metric_verdict, metric_reasons = "Inconclusive", ["WarmingUp", *metric_reasons]
    if kube_reasons or metric_verdict == "Failed":
        return Check(component, "Failed", tuple(kube_reasons + metric_reasons), values)
    return Check(component, metric_verdict, tuple(metric_reasons), values)


def count_failures(previous: int, verdict: Verdict) -> int:
    """Consecutive failed checks: a failure adds one, health resets, no verdict keeps the count."""
    if verdict == "Failed":
        return previous + 1
    if verdict == "Healthy":
        return 0
    return previous
