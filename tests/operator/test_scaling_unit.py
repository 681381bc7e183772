"""The autoscaler's decision and the replica count each mode gives (pure)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pizza_operator.api.v1alpha1 import PizzaModelDeployment, ScalingStatus
from pizza_operator.builders.deployments import build_primary_deployment
from pizza_operator.builders.modes import desired_replicas, may_run_several
from pizza_operator.contract import format_time
from pizza_operator.scaling.decide import Bounds, Load, decide
from pizza_operator.scaling.plan import DEMAND_EVERY, demand_every, idle_since
from pizza_operator.scaling.signals import ready_for, unschedulable

pytestmark = pytest.mark.unit
B = Bounds(min=1, max=5, target=2.0, window=120.0)
SLEEPY = Bounds(min=0, max=2, target=2.0, window=120.0, idle_after=600.0)


class TestDecide:
    def test_up_at_once(self) -> None:
        d, recent = decide(100.0, 1, Load(in_flight=7), B, (), last_demand=100.0)
        assert d.wanted == 4
        assert "up to 4" in d.reason
        assert recent == ((100.0, 4),)

    def test_capped_by_max(self) -> None:
        assert decide(0.0, 1, Load(in_flight=100), B, (), last_demand=0.0)[0].wanted == 5

    def test_down_only_to_the_highest_within_the_window(self) -> None:
        recent = ((10.0, 4), (60.0, 2))
        d, kept = decide(100.0, 4, Load(in_flight=1), B, recent, last_demand=100.0)
        assert d.wanted == 4  # 4 was wanted 90 s ago, within the 120 s window
        d, kept = decide(131.0, 4, Load(in_flight=1), B, recent, last_demand=131.0)
        assert d.wanted == 2  # the 4 left the window
        assert "down to 2" in d.reason
        assert kept == ((60.0, 2), (131.0, 1))

    def test_no_signal_keeps_the_count(self) -> None:
        d, recent = decide(0.0, 3, Load(in_flight=None), B, ((0.0, 3),), last_demand=None)
        assert d.wanted == 3
        assert "no signal" in d.reason
        assert recent == ((0.0, 3),)

    def test_unschedulable_pods_ask_for_no_more(self) -> None:
        d, _ = decide(0.0, 2, Load(in_flight=9, unschedulable=1), B, (), last_demand=0.0)
        assert d.wanted == 2
        assert "unschedulable" in d.reason

    def test_sleeps_after_idle_after_and_wakes_on_demand(self) -> None:
        busy, _ = decide(500.0, 1, Load(in_flight=0), SLEEPY, (), last_demand=0.0)
        assert (busy.wanted, busy.asleep) == (1, False)  # 500 s idle: not yet
        d, _ = decide(600.0, 1, Load(in_flight=0), SLEEPY, (), last_demand=0.0)
        assert (d.wanted, d.asleep) == (0, True)
        again, _ = decide(700.0, 0, Load(in_flight=0), SLEEPY, (), last_demand=0.0, asleep=True)
        assert (again.wanted, again.asleep) == (0, True)
        woken, _ = decide(
            701.0, 0, Load(in_flight=0, demand=3), SLEEPY, (), last_demand=701.0, asleep=True
        )
        assert (woken.wanted, woken.asleep) == (1, True)  # waking: the routers wait
        assert "woken" in woken.reason
        waking, _ = decide(
            705.0, 1, Load(in_flight=0, ready_for=1.0), SLEEPY, (), last_demand=701.0, asleep=True
        )
        assert (waking.wanted, waking.asleep) == (1, True)
        awake, _ = decide(
            706.0, 1, Load(in_flight=0, ready_for=2.0), SLEEPY, (), last_demand=701.0, asleep=True
        )
        assert (awake.wanted, awake.asleep) == (1, False)
        unused, _ = decide(1400.0, 1, Load(in_flight=0), SLEEPY, (), last_demand=701.0, asleep=True)
        assert (unused.wanted, unused.asleep) == (0, True)  # woke, never used: asleep again

    def test_never_sleeps_without_idle_after_or_above_a_floor(self) -> None:
        no_idle = Bounds(min=0, max=2, target=2.0, window=120.0)
        assert decide(9e9, 1, Load(in_flight=0), no_idle, (), last_demand=0.0)[0].wanted >= 0
        assert not decide(9e9, 1, Load(in_flight=0), no_idle, (), last_demand=0.0)[0].asleep
        floored = Bounds(min=0, max=2, target=2.0, window=1.0, idle_after=1.0, floor=2)
        d, _ = decide(9e9, 2, Load(in_flight=0), floored, (), last_demand=0.0)
        assert (d.wanted, d.asleep) == (2, False)


class TestIdleSince:
    """The idle count runs from the operator's own last sight of a demand: the written one lags
    by up to `demand_every` (a primary once slept 10.6 s after its last request, idleAfter 15 s)."""

    NOW = datetime(2026, 12, 5, 7, 0, 0, tzinfo=UTC)

    def _written(self, seconds_ago: float) -> ScalingStatus:
        stamp = format_time(self.NOW - timedelta(seconds=seconds_ago))
        return ScalingStatus(wanted=1, reason="", time=stamp, last_demand=stamp)

    def test_the_demand_seen_beats_a_stale_written_one(self) -> None:
        seen = self.NOW.timestamp() - 2.0
        assert idle_since(self._written(29.0), seen, self.NOW) == seen
        d, _ = decide(self.NOW.timestamp(), 1, Load(in_flight=0), Bounds(
            min=0, max=1, target=1.0, window=10.0, idle_after=15.0
        ), (), last_demand=idle_since(self._written(29.0), seen, self.NOW))  # fmt: skip
        assert not d.asleep  # 2 s idle, not 29

    def test_the_written_one_after_a_restart(self) -> None:
        assert idle_since(self._written(5.0), None, self.NOW) == self.NOW.timestamp() - 5.0
        assert idle_since(None, None, self.NOW) == self.NOW.timestamp()  # a first look

    def test_written_at_least_twice_per_idle_after(self) -> None:
        assert demand_every(B) == DEMAND_EVERY
        assert demand_every(SLEEPY) == DEMAND_EVERY
        assert demand_every(Bounds(min=0, max=1, target=1.0, window=1.0, idle_after=20.0)) == 10.0


def _pmd(body: dict[str, Any], **autoscaling: Any) -> PizzaModelDeployment:
    b = copy.deepcopy(body)
    for component, value in autoscaling.items():
        b["spec"][component]["autoscaling"] = value
    return PizzaModelDeployment.from_body(b)


class TestReplicas:
    def test_without_autoscaling_as_specified(self, body: dict[str, Any]) -> None:
        pmd = _pmd(body)
        assert desired_replicas(pmd, "primary", "primary") == pmd.spec.primary.replicas

    def test_the_decision_within_bounds(self, body: dict[str, Any]) -> None:
        b = copy.deepcopy(body)
        b["status"] = {"autoscaling": {"primary": {"wanted": 9, "reason": "x", "time": "t"}}}
        pmd = _pmd(b, primary={"minReplicas": 0, "maxReplicas": 3})
        assert desired_replicas(pmd, "primary", "primary") == 3
        assert desired_replicas(pmd, "stable", "primary") == 0  # the mode comes first

    def test_stable_mode_floor(self, body: dict[str, Any]) -> None:
        b = copy.deepcopy(body)
        b["spec"].setdefault("rollback", {}).setdefault("stable", {})["fallbackReplicas"] = 3
        b["status"] = {"autoscaling": {"fallback": {"wanted": 1, "reason": "x", "time": "t"}}}
        pmd = _pmd(b, fallback={"minReplicas": 1, "maxReplicas": 6})
        assert desired_replicas(pmd, "primary", "fallback") == 1
        assert desired_replicas(pmd, "stable", "fallback") == 3

    def test_external_leaves_replicas_out(self, body: dict[str, Any]) -> None:
        pmd = _pmd(body, primary={"managedBy": "External"})
        assert desired_replicas(pmd, "primary", "primary") is None
        deployment = build_primary_deployment(pmd, "img", "primary")
        assert "replicas" not in deployment["spec"]
        assert may_run_several(pmd, "primary", "primary")


class TestSignals:
    def test_ready_for_the_longest_ready_pod(self) -> None:
        def pod(ready: str | None, scheduled: bool = True) -> dict[str, object]:
            conditions: list[dict[str, str]] = []
            if ready is not None:
                conditions.append({"type": "Ready", "status": "True", "lastTransitionTime": ready})
            if not scheduled:
                conditions.append(
                    {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}
                )
            return {"status": {"conditions": conditions}}

        now = 1_800_000_010.0  # 2027-01-15T08:00:10Z
        pods = [pod("2027-01-15T08:00:00Z"), pod("2027-01-15T08:00:08Z"), pod(None, False)]
        assert ready_for(pods, now) == 10.0
        assert ready_for([pod(None)], now) is None
        assert unschedulable(pods) == 1
