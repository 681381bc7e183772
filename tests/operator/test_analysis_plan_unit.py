"""One analysis tick's pure half: the record, the plan, the status patches, and the orderings a
crash or a second writer can produce (the e2e failpoints kill the operator between them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pizza_operator.analysis.record import Observation, next_record, thresholds
from pizza_operator.analysis.window import RouterWindow
from pizza_operator.api.v1alpha1 import AnalysisStatus, PizzaModelDeployment
from pizza_operator.conditions import find_condition
from pizza_operator.contract import (
    REASONS,
    RETRY_ANNOTATION,
    ROLLBACK_ANNOTATION,
    RevisionRef,
    RollbackRequest,
    format_time,
)
from pizza_operator.rollback import Check, MetricSignals, parse_duration
from pizza_operator.rollback.patches import (
    is_news,
    record_change,
    refusal_change,
    return_change,
    step_change,
    suppressed_condition,
)
from pizza_operator.rollback.plan import (
    Record,
    Refuse,
    Return,
    Step,
    becomes_known_good,
    needs_revisions,
    plan,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)
STAMP = format_time(NOW)
CURRENT = "pizza-classifier-c3"
GOOD = RevisionRef("pizza-classifier-b2", 2, "Good")
OLDER_GOOD = RevisionRef("pizza-classifier-a1", 1, "Good")
REVISIONS = [OLDER_GOOD, GOOD, RevisionRef(CURRENT, 3)]
WINDOW = RouterWindow(
    primary=MetricSignals(100, 0.4, 0.2),
    fallback=MetricSignals(40, 0.0, 0.01),
    client=MetricSignals(140, 0.0),
    fallback_reasons={"timeout": 40.0},
)


def _seen(primary: str = "Failed", fallback: str = "Healthy") -> Observation:
    reasons = {"Failed": ("FailureRate",), "Healthy": (), "Inconclusive": ("TooFewRequests",)}
    return Observation(
        checks={
            "primary": Check(
                "primary", primary, reasons[primary], {"failureRate": 0.4, "requests": 100}
            ),  # type: ignore[arg-type]
            "fallback": Check("fallback", fallback, reasons[fallback], {"requests": 40}),  # type: ignore[arg-type]
        },
        window=WINDOW,
        source="scrape",
        restarts={},
    )


def _resource(body: dict[str, Any], **status: Any) -> PizzaModelDeployment:
    body = {**body, "status": {"currentRevision": CURRENT, "mode": "primary", **status}}
    return PizzaModelDeployment.from_body(body)


def _record(pmd: PizzaModelDeployment, ticks: int, seen: Observation) -> AnalysisStatus:
    """The record after `ticks` ticks that each saw `seen`."""
    record = pmd.status.analysis or AnalysisStatus()
    for _ in range(ticks):
        record = next_record(record, seen, thresholds(pmd.spec.analysis), STAMP)
    return record


def _merged(pmd: PizzaModelDeployment, patch: dict[str, Any] | None) -> PizzaModelDeployment:
    """The resource after a JSON merge patch of its status (as the API server applies it)."""

    def merge(target: Any, change: Any) -> Any:
        if not isinstance(change, dict):
            return change
        out = dict(target) if isinstance(target, dict) else {}
        for key, value in change.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = merge(out.get(key), value)
        return out

    wire = {"metadata": pmd.metadata.to_wire(), "spec": pmd.spec.to_wire()}
    wire["status"] = merge(pmd.status.to_wire(), patch or {})
    return PizzaModelDeployment.from_body(wire)


class TestRecord:
    def test_failures_count_up_and_health_resets_them(self, pmd: PizzaModelDeployment) -> None:
        record = _record(pmd, 3, _seen("Failed"))
        assert record.primary is not None and record.primary.consecutive_failures == 3
        assert record.checks == 3 and record.primary.healthy_since is None
        healthy = next_record(record, _seen("Healthy"), {}, "2026-12-04T12:00:10Z")
        assert healthy.primary is not None and healthy.primary.consecutive_failures == 0
        assert healthy.primary.healthy_since == "2026-12-04T12:00:10Z"

    def test_no_verdict_keeps_the_count_and_the_healthy_run(
        self, pmd: PizzaModelDeployment
    ) -> None:
        record = _record(pmd, 2, _seen("Failed"))
        after = next_record(record, _seen("Inconclusive"), {}, STAMP)
        assert after.primary is not None and after.primary.consecutive_failures == 2
        assert after.inconclusive == 1

    def test_a_rollout_not_serving_yet_moves_the_window_start(
        self, pmd: PizzaModelDeployment
    ) -> None:
        seen = _seen("Healthy")
        starting = Observation(
            {**seen.checks, "primary": Check("primary", "Inconclusive", ("NotServingYet",))},
            WINDOW,
            "scrape",
            {},
        )
        before = AnalysisStatus(since="2026-12-04T11:00:00Z")
        assert next_record(before, starting, {}, STAMP).since == STAMP
        assert next_record(before, seen, {}, STAMP).since == "2026-12-04T11:00:00Z"

    def test_values_are_rounded_and_unmeasured_ones_left_out(
        self, pmd: PizzaModelDeployment
    ) -> None:
        seen = Observation(
            {
                "primary": Check("primary", "Healthy", (), {"failureRate": 1 / 3, "p": None}),
                "fallback": Check("fallback", "Healthy", ()),
            },
            WINDOW,
            "scrape",
            {},
        )
        record = next_record(AnalysisStatus(), seen, {}, STAMP)
        assert record.primary is not None and record.primary.values == {"failureRate": 0.333333}


class TestPlan:
    def test_below_the_threshold_only_records(self, pmd: PizzaModelDeployment) -> None:
        record = _record(pmd, 2, _seen("Failed"))
        assert not needs_revisions(pmd, record, NOW)
        assert plan(pmd, record, REVISIONS, NOW) == Record()

    def test_a_new_revision_failing_goes_to_the_newest_known_good(
        self, body: dict[str, Any]
    ) -> None:
        pmd = _resource(body)
        record = _record(pmd, 3, _seen("Failed"))
        assert needs_revisions(pmd, record, NOW)
        action = plan(pmd, record, REVISIONS, NOW)
        assert isinstance(action, Step)
        assert (action.to, action.reason, action.revision) == (
            "previous",
            "PrimaryFailedNewRevision",
            GOOD.name,
        )
        assert action.message == (
            "primary -> previous: the primary failed 3 checks in a row (FailureRate); "
            "failureRate=0.4, requests=100"
        )

    def test_the_fallback_failing_in_stable_goes_to_emergency(self, body: dict[str, Any]) -> None:
        pmd = _resource(body, mode="stable")
        action = plan(pmd, _record(pmd, 3, _seen("Inconclusive", "Failed")), REVISIONS, NOW)
        assert isinstance(action, Step) and (action.to, action.reason) == (
            "emergency",
            "FallbackFailed",
        )
        assert action.message.startswith("stable -> emergency: the fallback failed 3 checks")

    def test_automatic_off_records_the_step_it_holds_back(self, body: dict[str, Any]) -> None:
        body["spec"]["rollback"] = {"automatic": False}
        pmd = _resource(body)
        action = plan(pmd, _record(pmd, 3, _seen("Failed")), [], NOW)
        assert isinstance(action, Record) and action.suppressed is not None
        condition = suppressed_condition(pmd, action.suppressed, STAMP)
        assert condition.reason == "RollbackSuppressed"
        assert condition.message == "rollback.automatic is false: would go primary -> stable"

    def test_a_request_comes_before_the_ladder(self, body: dict[str, Any]) -> None:
        request = RollbackRequest("stable", None, "t1").encode()
        body["metadata"]["annotations"] = {ROLLBACK_ANNOTATION: request}
        pmd = _resource(body)
        action = plan(pmd, _record(pmd, 3, _seen("Failed")), REVISIONS, NOW)
        assert action == Step(
            "stable",
            "Requested",
            f"primary -> stable: asked for by {ROLLBACK_ANNOTATION}=stable@t1",
            None,
            request="stable@t1",
        )

    def test_a_request_is_taken_once(self, body: dict[str, Any]) -> None:
        body["metadata"]["annotations"] = {ROLLBACK_ANNOTATION: "stable@t1"}
        pmd = _resource(body, rollbackRequest="stable@t1")
        assert not needs_revisions(pmd, AnalysisStatus(), NOW)
        assert plan(pmd, AnalysisStatus(), REVISIONS, NOW) == Record()

    @pytest.mark.parametrize(
        ("value", "revisions", "why"),
        [
            ("sideways@t1", REVISIONS, "unknown target 'sideways'"),
            ("previous:nope@t1", REVISIONS, "no revision 'nope'"),
            ("previous@t1", [RevisionRef(CURRENT, 3, "Good")], "no known-good revision"),
        ],
    )
    def test_requests_that_cannot_be_taken_are_refused(
        self, body: dict[str, Any], value: str, revisions: list[RevisionRef], why: str
    ) -> None:
        body["metadata"]["annotations"] = {ROLLBACK_ANNOTATION: value}
        pmd = _resource(body)
        action = plan(pmd, AnalysisStatus(), revisions, NOW)
        assert isinstance(action, Refuse) and why in action.message
        change = refusal_change(pmd, action, STAMP)
        patch = change(pmd)
        assert patch is not None and patch["rollbackRequest"] == value
        handled = _merged(pmd, patch)
        condition = find_condition(handled.status.conditions, "RolledBack")
        assert condition is not None and condition.reason == "RequestRefused"
        assert change(handled) is None  # a second writer of the same refusal writes nothing

    def test_a_request_for_previous_names_a_revision_or_takes_the_known_good(
        self, body: dict[str, Any]
    ) -> None:
        body["metadata"]["annotations"] = {ROLLBACK_ANNOTATION: f"previous:{OLDER_GOOD.name}@t"}
        named = plan(_resource(body), AnalysisStatus(), REVISIONS, NOW)
        body["metadata"]["annotations"] = {ROLLBACK_ANNOTATION: "previous@t"}
        chosen = plan(_resource(body), AnalysisStatus(), REVISIONS, NOW)
        assert isinstance(named, Step) and named.revision == OLDER_GOOD.name
        assert isinstance(chosen, Step) and chosen.revision == GOOD.name

    def test_a_retry_returns_before_the_ladder_steps_again(self, body: dict[str, Any]) -> None:
        body["metadata"]["annotations"] = {RETRY_ANNOTATION: "t2"}
        pmd = _resource(body, mode="stable", lastRollback=_last(retryToken="t1"))
        action = plan(pmd, _record(pmd, 3, _seen("Inconclusive", "Failed")), REVISIONS, NOW)
        assert action == Return("Retry", "stable -> primary (Retry)", "t2")

    def test_auto_recover_waits_for_its_cool_down(self, body: dict[str, Any]) -> None:
        body["spec"]["rollback"] = {"autoRecover": {"enabled": True, "cooldown": "5m"}}
        pmd = _resource(body, mode="stable", lastRollback=_last(time=STAMP))
        assert plan(pmd, AnalysisStatus(), [], NOW + timedelta(minutes=4)) == Record()
        later = plan(pmd, AnalysisStatus(), [], NOW + timedelta(minutes=5))
        assert isinstance(later, Return) and later.reason == "AutoRecover"

    def test_known_good_after_a_whole_healthy_window_in_primary(self, body: dict[str, Any]) -> None:
        pmd = _resource(body)
        check = _record(pmd, 1, _seen("Healthy")).primary
        assert check is not None
        later = NOW + timedelta(seconds=parse_duration(pmd.spec.analysis.window))
        assert not becomes_known_good(pmd, check, NOW)
        assert becomes_known_good(pmd, check, later)
        assert not becomes_known_good(_resource(body, mode="stable"), check, later)


def _promoted(at: datetime = NOW, **fields: Any) -> dict[str, Any]:
    """status.rollout of a canary of CURRENT promoted `at` and handed over to the primary."""
    stamp = format_time(at)
    return {
        "phase": "Promoted",
        "revision": CURRENT,
        "stableRevision": GOOD.name,
        "startedAt": stamp,
        "stepStartedAt": stamp,
        "finishedAt": stamp,
        "handedOver": True,
        **fields,
    }


def _served(at: datetime = NOW + timedelta(seconds=30), verdict: str = "Healthy") -> dict[str, Any]:
    """status.analysis with the primary's last check at `at`."""
    check = {"time": format_time(at), "verdict": verdict, "reasons": [], "values": {}}
    return {"checks": 3, "primary": check}


class TestBake:
    def test_one_failed_check_within_the_bake_time_goes_back_to_the_replaced_revision(
        self, body: dict[str, Any]
    ) -> None:
        pmd = _resource(body, rollout=_promoted(), analysis=_served())
        record = _record(pmd, 1, _seen("Failed"))
        soon = NOW + timedelta(minutes=4)
        assert needs_revisions(pmd, record, soon)
        action = plan(pmd, record, REVISIONS, soon)
        assert isinstance(action, Step)
        assert (action.to, action.reason, action.revision) == (
            "previous",
            "PrimaryFailedNewRevision",
            GOOD.name,
        )
        assert action.message.startswith(
            "primary -> previous: the primary failed a check within the 5m bake time after its "
            "promotion (FailureRate)"
        )

    def test_after_the_bake_time_the_spec_threshold_again(self, body: dict[str, Any]) -> None:
        pmd = _resource(body, rollout=_promoted(), analysis=_served())
        later = NOW + timedelta(minutes=5)
        assert plan(pmd, _record(pmd, 1, _seen("Failed")), REVISIONS, later) == Record()
        action = plan(pmd, _record(pmd, 3, _seen("Failed")), REVISIONS, later)
        assert isinstance(action, Step) and action.message.startswith(
            "primary -> previous: the primary failed 3 checks in a row (FailureRate)"
        )

    def test_back_to_the_replaced_revision_even_before_it_was_proven_good(
        self, body: dict[str, Any]
    ) -> None:
        """The canary was judged against it and it served until the promotion: it is where a
        baking revision goes back to, though no whole healthy window made it known-good."""
        replaced = RevisionRef(GOOD.name, 2)  # Pending
        revisions = [replaced, RevisionRef(CURRENT, 3)]
        pmd = _resource(body, rollout=_promoted(), analysis=_served())
        action = plan(pmd, _record(pmd, 1, _seen("Failed")), revisions, NOW + timedelta(minutes=1))
        assert isinstance(action, Step) and (action.to, action.revision) == ("previous", GOOD.name)
        failed = [RevisionRef(GOOD.name, 2, "Failed"), RevisionRef(CURRENT, 3)]
        action = plan(pmd, _record(pmd, 1, _seen("Failed")), failed, NOW + timedelta(minutes=1))
        assert isinstance(action, Step) and action.to == "stable"  # nothing to go back to
        later = NOW + timedelta(minutes=6)  # baked: the ladder's rule, no known-good revision
        action = plan(pmd, _record(pmd, 3, _seen("Failed")), revisions, later)
        assert isinstance(action, Step) and action.to == "stable"

    @pytest.mark.parametrize(
        ("rollout", "bake", "mode"),
        [
            (_promoted(handedOver=False), "5m", "primary"),  # the canary still serves
            (_promoted(phase="Aborted"), "5m", "primary"),
            (_promoted(revision="pizza-classifier-d4"), "5m", "primary"),  # not current
            (_promoted(), "0s", "primary"),  # off
            (_promoted(), "5m", "previous"),  # already stepped back
        ],
    )
    def test_no_bake_without_a_handed_over_promotion_of_the_current_revision(
        self, body: dict[str, Any], rollout: dict[str, Any], bake: str, mode: str
    ) -> None:
        body["spec"]["rollout"] = {"bakeTime": bake}
        pmd = _resource(body, rollout=rollout, mode=mode, analysis=_served())
        record = _record(pmd, 1, _seen("Failed"))
        assert not needs_revisions(pmd, record, NOW + timedelta(minutes=1))
        assert plan(pmd, record, REVISIONS, NOW + timedelta(minutes=1)) == Record()

    @pytest.mark.parametrize(
        "analysis",
        [
            None,  # no check yet
            _served(verdict="Inconclusive"),  # its pods still starting (NotServingYet)
            _served(NOW - timedelta(seconds=5)),  # healthy, but before the promotion
        ],
    )
    def test_until_the_promoted_revision_has_served_the_spec_threshold_judges_it(
        self, body: dict[str, Any], analysis: dict[str, Any] | None
    ) -> None:
        pmd = _resource(body, rollout=_promoted(), analysis=analysis)
        soon = NOW + timedelta(minutes=1)
        assert plan(pmd, _record(pmd, 1, _seen("Failed")), REVISIONS, soon) == Record()
        action = plan(pmd, _record(pmd, 3, _seen("Failed")), REVISIONS, soon)
        assert isinstance(action, Step) and action.to == "previous"

    def test_a_baking_revision_is_not_known_good_until_the_bake_time_ends(
        self, body: dict[str, Any]
    ) -> None:
        pmd = _resource(body, rollout=_promoted())
        check = _record(pmd, 1, _seen("Healthy")).primary
        assert check is not None
        assert not becomes_known_good(pmd, check, NOW + timedelta(minutes=4))
        assert becomes_known_good(pmd, check, NOW + timedelta(minutes=5))


def _last(**fields: Any) -> dict[str, Any]:
    return {
        "number": 1,
        "from": "primary",
        "to": "stable",
        "reason": "PrimaryFailed",
        "time": STAMP,
        "generation": 1,
        **fields,
    }


class TestStepOrderings:
    """What the failpoints exercise end to end, here as orderings of pure calls."""

    def _step(self, pmd: PizzaModelDeployment) -> tuple[Step, AnalysisStatus]:
        record = _record(pmd, 3, _seen("Failed"))
        action = plan(pmd, record, [RevisionRef(CURRENT, 1)], NOW)
        assert isinstance(action, Step) and action.to == "stable"
        return action, record

    def test_the_step_writes_mode_rollback_and_a_reset_record(self, body: dict[str, Any]) -> None:
        pmd = _resource(body)
        step, record = self._step(pmd)
        after = _merged(pmd, step_change(pmd, step, record, 0.4)(pmd))
        assert after.status.mode == "stable" and after.status.serving_revision == CURRENT
        last = after.status.last_rollback
        assert last is not None and (last.number, last.to, last.reason) == (
            1,
            "stable",
            "PrimaryFailed",
        )
        assert last.values == {"failureRate": 0.4, "requests": 100.0}
        analysis = after.status.analysis
        assert analysis is not None and analysis.since == STAMP
        assert analysis.primary is not None and analysis.primary.consecutive_failures == 0
        rolled = find_condition(after.status.conditions, "RolledBack")
        assert rolled is not None and (rolled.status, rolled.reason) == ("True", "PrimaryFailed")
        assert rolled.reason in REASONS["RolledBack"]

    def test_a_crash_before_the_status_is_written_redoes_the_same_step(
        self, body: dict[str, Any]
    ) -> None:
        """Killed after the Event (rollback-announced): the status still shows the old mode and
        the failures, so the next leader plans the same step with the same number (its Event
        name is taken: no second Event)."""
        pmd = _resource(body)
        first, record = self._step(pmd)
        again, _ = self._step(pmd)
        assert again == first
        assert step_change(pmd, again, record, 0.4)(pmd) is not None

    def test_after_the_status_is_written_nothing_steps_again(self, body: dict[str, Any]) -> None:
        """Killed after the status write (rollback-recorded): the next tick starts from the reset
        record in the new mode and takes no second step."""
        pmd = _resource(body)
        step, record = self._step(pmd)
        after = _merged(pmd, step_change(pmd, step, record, 0.4)(pmd))
        next_tick = _record(after, 1, _seen("Inconclusive", "Healthy"))
        assert plan(after, next_tick, [RevisionRef(CURRENT, 1)], NOW) == Record()

    def test_a_second_writer_of_the_same_step_writes_nothing(self, body: dict[str, Any]) -> None:
        pmd = _resource(body)
        step, record = self._step(pmd)
        change = step_change(pmd, step, record, 0.4)
        written = _merged(pmd, change(pmd))
        assert change(written) is None  # the 409 retry sees the step recorded

    def test_a_return_already_made_writes_nothing(self, body: dict[str, Any]) -> None:
        body["metadata"]["annotations"] = {RETRY_ANNOTATION: "t2"}
        pmd = _resource(body, mode="stable", lastRollback=_last(retryToken="t1"))
        back = plan(pmd, AnalysisStatus(), [], NOW)
        assert isinstance(back, Return)
        change = return_change(pmd, back, _record(pmd, 1, _seen("Healthy")))
        after = _merged(pmd, change(pmd))
        assert after.status.mode == "primary" and after.status.serving_revision == CURRENT
        assert after.status.last_rollback is not None
        assert after.status.last_rollback.retry_token == "t2"
        assert change(after) is None

    def test_a_metrics_error_goes_once_metrics_come_back(self, pmd: PizzaModelDeployment) -> None:
        failed = AnalysisStatus(checks=1, metrics_error="no router pod answered two scrapes yet")
        after = _merged(pmd, record_change(failed, None, None)(pmd))
        assert after.status.analysis is not None
        assert after.status.analysis.metrics_error == failed.metrics_error
        fine = AnalysisStatus(checks=2, client_requests=0)
        after = _merged(after, record_change(fine, None, None)(after))
        assert after.status.analysis is not None
        assert after.status.analysis.metrics_error is None  # not left from the earlier check
        assert after.status.analysis.checks == 2

    def test_a_suppressed_step_is_news_once(self, body: dict[str, Any]) -> None:
        body["spec"]["rollback"] = {"automatic": False}
        pmd = _resource(body)
        record = _record(pmd, 3, _seen("Failed"))
        action = plan(pmd, record, [], NOW)
        assert isinstance(action, Record) and action.suppressed is not None
        condition = suppressed_condition(pmd, action.suppressed, STAMP)
        assert is_news(pmd, condition)
        after = _merged(pmd, record_change(record, 0.4, condition)(pmd))
        assert after.status.error_rate == 0.4
        assert not is_news(after, condition)
