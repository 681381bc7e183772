"""The analysis record: from the last one and this tick's checks to the next one (pure).

`status.analysis` is the analysis' whole memory: per component the last check, its consecutive
failures and since when it has been healthy, the restart ledger, and `since` (the metric window
never reaches back before it). A new leader carries on from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pizza_operator.analysis.kube_signals import RestartLedger
from pizza_operator.analysis.window import RouterWindow
from pizza_operator.api.v1alpha1 import AnalysisSpec, AnalysisStatus, ComponentCheck
from pizza_operator.contract import SIGNAL_LIMITS
from pizza_operator.rollback import Check, Thresholds, count_failures
from pizza_operator.rollback.verdicts import AnalysedComponent

ANALYSED: tuple[AnalysedComponent, ...] = ("primary", "fallback")


@dataclass(frozen=True)
class Observation:
    """One tick's checks and what they were judged on."""

    checks: Mapping[AnalysedComponent, Check]
    window: RouterWindow
    source: str
    restarts: RestartLedger


def thresholds(analysis: AnalysisSpec) -> dict[str, float]:
    """The limits every check is compared against, as status and the metrics show them."""
    limits = Thresholds.from_spec(analysis)
    by_signal = {
        "failureRate": limits.failure_rate,
        "latencyP95Seconds": limits.p95_latency_seconds,
        "requests": float(limits.min_requests),
        "restarts": float(limits.max_restarts),
    }
    return {key: by_signal[signal] for signal, (key, _) in SIGNAL_LIMITS.items()}


def finite(values: Mapping[str, float | None]) -> dict[str, float]:
    """The measured values, rounded (absent: not measured)."""
    return {k: round(float(v), 6) for k, v in values.items() if v is not None}


def next_check(
    last: ComponentCheck | None, check: Check, limits: Mapping[str, float], stamp: str
) -> ComponentCheck:
    """One component's check after `last`: failures counted, the healthy run carried on."""
    failures = count_failures(last.consecutive_failures if last else 0, check.verdict)
    healthy_since = None
    if check.verdict != "Failed":
        healthy_since = last.healthy_since if last and last.healthy_since else None
        if healthy_since is None and check.verdict == "Healthy":
            healthy_since = stamp
    return ComponentCheck(
        time=stamp,
        verdict=check.verdict,
        reasons=list(check.reasons),
        values=finite(check.values),
        thresholds=dict(limits),
        consecutive_failures=failures,
        healthy_since=healthy_since,
    )


def next_record(
    before: AnalysisStatus, seen: Observation, limits: Mapping[str, float], stamp: str
) -> AnalysisStatus:
    """The record after this tick's checks."""
    checks = {c: next_check(getattr(before, c), seen.checks[c], limits, stamp) for c in ANALYSED}
    inconclusive = sum(1 for c in seen.checks.values() if c.verdict == "Inconclusive")
    since = before.since
    if any("NotServingYet" in c.reasons for c in seen.checks.values()):
        since = stamp  # judge a new rollout's requests from when it serves, not its start
    return AnalysisStatus.model_validate(
        {
            "source": seen.source,
            "checks": before.checks + 1,
            "inconclusive": before.inconclusive + inconclusive,
            "primary": checks["primary"],
            "fallback": checks["fallback"],
            "clientErrorRate": seen.window.client.failure_rate,
            "clientRequests": seen.window.client.requests,
            "fallbackReasons": seen.window.fallback_reasons,
            "restarts": seen.restarts,
            "since": since,
            "metricsError": seen.window.error,
        }
    )
