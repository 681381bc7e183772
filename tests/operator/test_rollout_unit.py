"""The canary state machine and the no-spare-GPU placement (pure)."""

from __future__ import annotations

import dataclasses

import pytest
from pizza_operator.api.v1alpha1 import RolloutStatus
from pizza_operator.rollout.capacity import place
from pizza_operator.rollout.record import patch
from pizza_operator.rollout.steps import Gates, Observed, State, Step, advance, judge, start

pytestmark = pytest.mark.unit
STEPS = (Step(10, 30.0), Step(50, 30.0))
GATES = Gates()
GOOD = Observed(
    canary_requests=50, canary_failures=0, canary_p95=0.2, stable_p95=0.2, pairs=20,
    agreed=20, canary_ready=True,
)  # fmt: skip


def look(state: State, now: float, observed: Observed = GOOD, **kw: object) -> State:
    return advance(state, STEPS, observed, GATES, now, ready_within=120.0, **kw)  # type: ignore[arg-type]


def ready(at: float = 0.0, steps: tuple[Step, ...] = STEPS) -> State:
    """A rollout started at `at` whose canary was found ready at once: its first step begins."""
    return advance(start(steps, at), steps, GOOD, GATES, at, ready_within=120.0)


class TestJudge:
    def test_healthy(self) -> None:
        assert judge(GOOD, GATES) == ("Healthy", [])

    @pytest.mark.parametrize(
        ("change", "reason"),
        [
            ({"canary_failures": 5}, "failure rate 10.0% > 5.0%"),
            ({"canary_p95": 0.5}, "p95 0.500 s > 1.5 x stable 0.200 s"),
            ({"agreed": 10}, "agreement 50.0% < 90%"),
        ],
    )
    def test_each_gate_fails(self, change: dict[str, float], reason: str) -> None:
        verdict, reasons = judge(dataclasses.replace(GOOD, **change), GATES)
        assert verdict == "Failed"
        assert reasons == [reason]

    def test_a_wrong_but_fast_model_fails_on_agreement_alone(self) -> None:
        wrong = dataclasses.replace(GOOD, agreed=0, canary_p95=0.05)
        assert judge(wrong, GATES) == ("Failed", ["agreement 0.0% < 90%"])

    def test_p95_over_the_ratio_but_within_the_slack_passes(self) -> None:
        noisy = dataclasses.replace(GOOD, canary_p95=0.072, stable_p95=0.036)  # bench/rollout
        assert judge(noisy, GATES) == ("Healthy", [])
        slow = dataclasses.replace(GOOD, canary_p95=0.5, stable_p95=0.3)
        assert judge(slow, GATES)[0] == "Failed"  # over 1.5 x and over stable + 0.1 s
        fast = dataclasses.replace(GOOD, canary_p95=0.13, stable_p95=0.05)
        assert judge(fast, GATES)[0] == "Healthy"
        assert judge(fast, Gates(p95_slack=0.0))[0] == "Failed"

    def test_no_stable_answer_no_p95_gate(self) -> None:
        lent = dataclasses.replace(GOOD, stable_p95=None, canary_p95=9.0)
        assert judge(lent, GATES) == ("Healthy", [])
        assert judge(dataclasses.replace(lent, agreed=0), GATES)[0] == "Failed"

    def test_one_stable_pod_is_lent_whole(self) -> None:
        placed = place(stable_replicas=1, gpus_per_pod=2, gpus_free=1)
        assert (placed.plan, placed.stable_replicas, placed.canary_replicas) == ("Borrow", 0, 1)

    def test_no_data_no_verdict(self) -> None:
        verdict, reasons = judge(dataclasses.replace(GOOD, canary_requests=3, pairs=2), GATES)
        assert verdict == "Inconclusive"
        assert len(reasons) == 2


class TestAdvance:
    def test_no_traffic_until_the_canary_is_ready(self) -> None:
        state = start(STEPS, 0.0)
        assert (state.phase, state.weight) == ("Progressing", 0)
        unready = dataclasses.replace(GOOD, canary_ready=False, canary_failures=50)
        assert look(state, 50.0, unready).weight == 0  # not judged: it got no traffic
        first = look(state, 70.0)
        assert (first.phase, first.step, first.weight, first.step_started) == (
            "Progressing", 0, 10, 70.0,
        )  # fmt: skip

    def test_a_healthy_revision_walks_every_step_and_is_promoted(self) -> None:
        state = ready()
        assert (state.phase, state.weight) == ("Progressing", 10)
        assert look(state, 10.0).step == 0  # healthy, pause not over
        state = look(state, 30.0)
        assert (state.phase, state.step, state.weight, state.step_started) == (
            "Progressing", 1, 50, 30.0,
        )  # fmt: skip
        state = look(state, 60.0)
        assert (state.phase, state.weight) == ("Promoted", 0)
        assert look(state, 999.0, dataclasses.replace(GOOD, agreed=0)) == state  # final

    def test_a_failed_gate_aborts(self) -> None:
        state = look(ready(), 5.0, dataclasses.replace(GOOD, canary_failures=40))
        assert (state.phase, state.weight) == ("Aborted", 0)
        assert "failure rate" in state.reason

    def test_inconclusive_pauses_then_goes_on(self) -> None:
        paused = look(ready(), 5.0, dataclasses.replace(GOOD, canary_requests=0))
        assert paused.phase == "Paused"
        assert paused.reason.startswith("no verdict")
        assert look(paused, 40.0).phase == "Progressing"

    def test_a_canary_never_ready_is_aborted_after_its_startup_timeout(self) -> None:
        unready = dataclasses.replace(GOOD, canary_ready=False)
        state = start(STEPS, 0.0)
        assert look(state, 60.0, unready).phase == "Progressing"
        aborted = look(state, 120.0, unready)
        assert (aborted.phase, aborted.reason) == ("Aborted", "canary not ready within 120 s")

    def test_requests_win(self) -> None:
        state = ready()
        assert look(state, 1.0, request="promote").phase == "Promoted"
        assert look(state, 1.0, request="abort").phase == "Aborted"

    def test_a_step_without_pause_waits_for_promote(self) -> None:
        steps = (Step(20, None),)
        state = ready(0.0, steps)
        later = advance(state, steps, GOOD, GATES, 1e6, ready_within=60.0)
        assert later.phase == "Progressing"


class TestPlace:
    def test_surge_when_a_gpu_is_free(self) -> None:
        placed = place(stable_replicas=1, gpus_per_pod=1, gpus_free=1)
        assert (placed.plan, placed.stable_replicas, placed.canary_replicas) == ("Surge", 1, 1)

    def test_borrow_when_none_is(self) -> None:
        placed = place(stable_replicas=2, gpus_per_pod=2, gpus_free=0)
        assert (placed.plan, placed.stable_replicas, placed.canary_replicas) == ("Borrow", 1, 1)
        assert "fallback" in placed.why


class TestRecord:
    def test_the_status_patch_clears_what_an_earlier_rollout_left(self) -> None:
        rollout = RolloutStatus(
            phase="Progressing", revision="r-2", stable_revision="r-1", started_at="t",
            step_started_at="t",
        )  # fmt: skip
        wire = patch(rollout)["rollout"]
        assert isinstance(wire, dict)
        assert wire["finishedAt"] is None and wire["signals"] is None
        assert wire["handedOver"] is False and wire["phase"] == "Progressing"
