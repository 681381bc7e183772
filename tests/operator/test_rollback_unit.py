"""The pure rollback decision: verdicts, failure counts, the ladder, revisions, durations."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from pizza_operator.api.v1alpha1 import AnalysisSpec, LastRollback
from pizza_operator.contract import RevisionRef, known_good
from pizza_operator.rollback import (
    KubeSignals,
    LadderState,
    MetricSignals,
    Thresholds,
    count_failures,
    decide,
    judge,
    next_outcome,
    parse_duration,
    prune,
    return_reason,
)

pytestmark = pytest.mark.unit
HEALTHY_POD = KubeSignals(desired=1, ready=1, available=True)
LIMITS = Thresholds(failure_rate=0.05, p95_latency_seconds=2.0, min_requests=20)


class TestJudge:
    def test_healthy_with_traffic(self) -> None:
        check = judge("primary", HEALTHY_POD, MetricSignals(100, 0.01, 0.2), LIMITS)
        assert (check.verdict, check.reasons) == ("Healthy", ())
        assert check.values["failureRate"] == 0.01

    def test_failure_rate_above_threshold_fails(self) -> None:
        check = judge("primary", HEALTHY_POD, MetricSignals(100, 0.5, 0.2), LIMITS)
        assert (check.verdict, check.reasons) == ("Failed", ("FailureRate",))

    def test_rate_at_threshold_is_healthy(self) -> None:
        assert judge("primary", HEALTHY_POD, MetricSignals(100, 0.05), LIMITS).verdict == "Healthy"

    def test_latency_above_threshold_fails(self) -> None:
        check = judge("primary", HEALTHY_POD, MetricSignals(100, 0.0, 3.0), LIMITS)
        assert check.reasons == ("LatencyP95",)

    def test_no_traffic_is_no_verdict(self) -> None:
        check = judge("primary", HEALTHY_POD, MetricSignals(3, 1.0, 9.0), LIMITS)
        assert (check.verdict, check.reasons) == ("Inconclusive", ("TooFewRequests",))

    def test_metrics_source_down_is_no_verdict(self) -> None:
        check = judge("fallback", HEALTHY_POD, MetricSignals(None), LIMITS)
        assert (check.verdict, check.reasons) == ("Inconclusive", ("MetricsUnavailable",))

    @pytest.mark.parametrize(
        ("kube", "reason"),
        [
            (KubeSignals(1, 0, False, crash_looping=True, rolling_out=True), "CrashLoopBackOff"),
            (KubeSignals(1, 0, False, unschedulable=True, rolling_out=True), "Unschedulable"),
            (
                KubeSignals(1, 0, False, startup_never_passed=True, rolling_out=True),
                "StartupProbeNeverPassed",
            ),
            (
                KubeSignals(1, 0, False, progress_deadline_exceeded=True, rolling_out=True),
                "ProgressDeadlineExceeded",
            ),
            (KubeSignals(1, 1, True, restarts_in_window=3), "Restarts"),
            (KubeSignals(2, 0, False), "NoReadyPods"),
        ],
    )
    def test_kubernetes_signals_fail_without_traffic(self, kube: KubeSignals, reason: str) -> None:
        check = judge("primary", kube, MetricSignals(0), LIMITS)
        assert check.verdict == "Failed"
        assert reason in check.reasons

    def test_rollout_in_progress_is_not_a_failure(self) -> None:
        kube = KubeSignals(desired=1, ready=0, available=False, rolling_out=True)
        assert judge("primary", kube, MetricSignals(0), LIMITS).verdict == "Inconclusive"

    def test_fallbacks_while_no_new_pod_serves_yet_are_no_verdict(self) -> None:
        kube = KubeSignals(desired=1, ready=0, available=False, rolling_out=True)
        failing = MetricSignals(100, failure_rate=1.0)
        check = judge("primary", kube, failing, LIMITS)
        assert (check.verdict, check.reasons) == ("Inconclusive", ("NotServingYet",))
        serving = KubeSignals(desired=2, ready=1, available=True, rolling_out=True)
        assert judge("primary", serving, failing, LIMITS).verdict == "Failed"

    def test_failures_from_before_the_pods_served_are_no_verdict_until_a_whole_window(
        self,
    ) -> None:
        failing = MetricSignals(100, failure_rate=1.0)
        warming = KubeSignals(desired=1, ready=1, available=True, served_window=False)
        check = judge("primary", warming, failing, LIMITS)
        assert (check.verdict, check.reasons) == ("Inconclusive", ("WarmingUp", "FailureRate"))
        served = KubeSignals(desired=1, ready=1, available=True, served_window=True)
        assert judge("primary", served, failing, LIMITS).verdict == "Failed"
        healthy = MetricSignals(100, failure_rate=0.0)
        assert judge("primary", warming, healthy, LIMITS).verdict == "Healthy"

    def test_restarts_up_to_limit_are_tolerated(self) -> None:
        kube = KubeSignals(1, 1, True, restarts_in_window=2)
        assert judge("primary", kube, MetricSignals(50, 0.0), LIMITS).verdict == "Healthy"

    def test_scaled_down_component_is_not_judged(self) -> None:
        kube = KubeSignals(desired=0, ready=0, available=True)
        check = judge("primary", kube, MetricSignals(0), LIMITS)
        assert (check.verdict, check.reasons) == ("Inconclusive", ("ScaledDown",))

    def test_thresholds_from_spec(self) -> None:
        spec = AnalysisSpec.model_validate({"errorRateThreshold": 0.1, "minRequests": 5})
        limits = Thresholds.from_spec(spec)
        assert (limits.failure_rate, limits.min_requests) == (0.1, 5)
        assert limits.p95_latency_seconds == spec.latency_p95_threshold_seconds


class TestCountFailures:
    def test_failures_accumulate_health_resets_no_verdict_keeps(self) -> None:
        count = 0
        for verdict, expected in [
            ("Failed", 1),
            ("Inconclusive", 1),
            ("Failed", 2),
            ("Healthy", 0),
            ("Inconclusive", 0),
        ]:
            count = count_failures(count, verdict)  # type: ignore[arg-type]
            assert count == expected


NEW = RevisionRef("c3", 3)
GOOD = RevisionRef("b2", 2, "Good")
OLD_GOOD = RevisionRef("a1", 1, "Good")


BASE = LadderState(
    mode="primary",
    primary_failures=3,
    fallback_failures=0,
    failure_threshold=3,
    current=NEW,
    history=(OLD_GOOD, GOOD, NEW),
)


def _state(**overrides: Any) -> LadderState:
    return replace(BASE, **overrides)


class TestLadder:
    def test_below_threshold_does_nothing(self) -> None:
        assert decide(_state(primary_failures=2)).step == "none"

    def test_new_failing_revision_goes_to_newest_known_good(self) -> None:
        decision = decide(_state())
        assert (decision.step, decision.to_revision) == ("previous", GOOD)
        assert not decision.suppressed

    def test_without_known_good_goes_to_stable(self) -> None:
        decision = decide(_state(history=(NEW,)))
        assert (decision.step, decision.reason) == ("stable", "PrimaryFailed")

    def test_known_good_revision_failing_goes_to_stable(self) -> None:
        assert decide(_state(current=GOOD)).step == "stable"

    def test_previous_revision_failing_goes_to_stable(self) -> None:
        decision = decide(_state(mode="previous"))
        assert (decision.step, decision.reason) == ("stable", "KnownGoodRevisionFailed")

    def test_fallback_failing_in_primary_mode_does_not_step(self) -> None:
        assert decide(_state(primary_failures=0, fallback_failures=5)).step == "none"

    def test_fallback_failing_in_stable_goes_to_emergency(self) -> None:
        decision = decide(_state(mode="stable", primary_failures=0, fallback_failures=3))
        assert (decision.step, decision.reason) == ("emergency", "FallbackFailed")

    def test_emergency_is_the_bottom(self) -> None:
        assert decide(_state(mode="emergency", fallback_failures=9)).step == "none"

    def test_automatic_off_reports_what_would_happen(self) -> None:
        decision = decide(_state(automatic=False, history=(NEW,)))
        assert (decision.step, decision.reason, decision.suppressed) == (
            "stable",
            "RollbackSuppressed",
            True,
        )


def _rolled_back(generation: int = 4, token: str | None = None) -> LastRollback:
    return LastRollback.model_validate(
        {
            "number": 1,
            "from": "primary",
            "to": "stable",
            "reason": "PrimaryFailed",
            "time": "2026-12-04T10:00:00Z",
            "generation": generation,
            "retryToken": token,
        }
    )


class TestReturnToPrimary:
    def test_stays_rolled_back_without_new_generation_or_retry(self) -> None:
        assert return_reason("stable", 4, _rolled_back(4), None) is None
        assert return_reason("emergency", 4, _rolled_back(4, "t1"), "t1") is None

    def test_never_rolled_back_or_primary_already_has_nothing_to_return_from(self) -> None:
        assert return_reason("stable", 4, None, "t2") is None
        assert return_reason("primary", 5, _rolled_back(4), "t2", cooled_down=True) is None

    def test_new_generation_returns(self) -> None:
        assert return_reason("stable", 5, _rolled_back(4), None) == "NewGeneration"

    def test_new_retry_token_returns(self) -> None:
        assert return_reason("emergency", 4, _rolled_back(4, "t1"), "t2") == "Retry"

    def test_cool_down_returns_last(self) -> None:
        assert return_reason("stable", 4, _rolled_back(4), None, cooled_down=True) == (
            "AutoRecover"
        )
        assert return_reason("stable", 5, _rolled_back(4), "t9", cooled_down=True) == (
            "NewGeneration"
        )


class TestRevisions:
    def test_known_good_skips_current_and_failed(self) -> None:
        history = [OLD_GOOD, RevisionRef("b2", 2, "Failed"), NEW]
        assert known_good(history, "c3") == OLD_GOOD
        assert known_good([GOOD], "b2") is None
        assert known_good([OLD_GOOD, GOOD], None) == GOOD

    def test_a_proven_revision_is_never_demoted(self) -> None:
        assert next_outcome("Good", "Failed") is None
        assert next_outcome("Pending", "Good") == "Good"
        assert next_outcome(None, "Failed") == "Failed"
        assert next_outcome("Failed", "Failed") is None
        assert next_outcome("Failed", "Good") == "Good"

    def test_prune_keeps_current_and_good_first(self) -> None:
        history = [OLD_GOOD, RevisionRef("b2", 2, "Failed"), RevisionRef("d4", 4)]
        kept = prune(history, "d4", limit=1)
        assert [r.name for r in kept] == ["a1", "d4"]
        assert [r.name for r in prune(history, "d4", limit=0)] == ["d4"]


class TestDurations:
    @pytest.mark.parametrize(
        ("text", "seconds"), [("10s", 10), ("1m30s", 90), ("250ms", 0.25), ("1h", 3600)]
    )
    def test_parses(self, text: str, seconds: float) -> None:
        assert parse_duration(text) == pytest.approx(seconds)

    @pytest.mark.parametrize("text", ["", "10", "ten s", "1m 30s", "5d"])
    def test_refuses(self, text: str) -> None:
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(text)
