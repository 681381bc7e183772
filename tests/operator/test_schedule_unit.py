"""The operator-wide schedule (pure) and the health verdict (pure)."""

from __future__ import annotations

import pytest
from pizza_operator.health import Bounds, verdict
from pizza_operator.schedule import Schedule

pytestmark = pytest.mark.unit
A, B = ("ns", "a"), ("ns", "b")


class TestSchedule:
    def test_a_new_resource_ticks_now_and_resyncs_an_interval_on(self) -> None:
        s = Schedule(resync_every=60)
        assert s.know(A, 100.0)
        assert not s.know(A, 101.0)  # known: nothing moves
        assert s.take_due(100.0) == [("tick", A)]
        assert s.take_due(159.0) == []
        assert s.take_due(160.0) == [("resync", A)]
        assert s.next_at() is None

    def test_due_work_comes_oldest_first_and_leaves_until_planned(self) -> None:
        s = Schedule(resync_every=60)
        s.know(B, 5.0)
        s.know(A, 1.0)
        assert s.take_due(10.0) == [("tick", A), ("tick", B)]
        s.plan("tick", A, 20.0)
        assert s.next_at() == 20.0
        assert s.take_due(19.0) == []
        assert s.take_due(20.0) == [("tick", A)]

    def test_a_forgotten_resource_is_not_planned_again(self) -> None:
        s = Schedule(resync_every=60)
        s.know(A, 0.0)
        s.take_due(0.0)
        s.forget(A)
        s.plan("tick", A, 5.0)  # its running tick ends after the delete
        assert A not in s
        assert s.take_due(1000.0) == []
        assert len(s) == 0


class TestHealthVerdict:
    def test_healthy_when_loops_beat_and_nothing_is_wedged(self) -> None:
        ok, reasons = verdict(100.0, {"lease": 99.0}, ("lease",), [("reconcile", 50.0)], Bounds())
        assert ok, reasons

    def test_a_silent_loop_fails(self) -> None:
        ok, reasons = verdict(100.0, {"lease": 30.0}, ("lease", "rounds"), [], Bounds(beat=60))
        assert not ok
        assert reasons == ["lease last beat 70 s ago", "rounds last beat never"]

    def test_work_past_its_bound_fails(self) -> None:
        ok, reasons = verdict(1000.0, {}, (), [("reconcile of ns/a", 600.0)], Bounds(work=300))
        assert not ok
        assert reasons == ["reconcile of ns/a running for 400 s"]


class TestDueTimes:
    def test_take_due_at_gives_each_item_the_time_it_was_due(self) -> None:
        s = Schedule(resync_every=60)
        s.know(A, 1.0)
        s.know(B, 4.0)
        assert s.take_due_at(10.0) == [("tick", A, 1.0), ("tick", B, 4.0)]
        assert s.take_due_at(70.0) == [("resync", A, 61.0), ("resync", B, 64.0)]
