"""The status refresh coalescer (real threads, no cluster)."""

from __future__ import annotations

import threading
import time

import pytest
from pizza_operator.refresher import Coalescer, Doubling, Settling

from tests.support.waiting import eventually

pytestmark = pytest.mark.unit


class TestCoalescer:
    def test_a_burst_runs_once_per_key(self) -> None:
        calls: list[tuple[str, str]] = []
        coalescer = Coalescer(lambda ns, name: calls.append((ns, name)), delay=0.1)
        for _ in range(20):
            coalescer.request("ns", "a")
            coalescer.request("ns", "b")
        eventually(lambda: len(calls) == 2, 5.0, "len(calls) == 2", every=0.01)
        time.sleep(0.3)
        assert sorted(calls) == [("ns", "a"), ("ns", "b")]

    def test_request_during_a_run_runs_again(self) -> None:
        started, release = threading.Event(), threading.Event()
        calls: list[str] = []

        def action(ns: str, name: str) -> None:
            calls.append(name)
            started.set()
            release.wait(5)

        coalescer = Coalescer(action, delay=0.01, workers=1)
        coalescer.request("ns", "a")
        assert started.wait(5)
        coalescer.request("ns", "a")  # arrives while the first run is in progress
        release.set()
        eventually(lambda: len(calls) == 2, 5.0, "len(calls) == 2", every=0.01)

    def test_a_failing_action_does_not_stop_the_worker(self) -> None:
        calls: list[str] = []

        def action(ns: str, name: str) -> None:
            calls.append(name)
            if name == "boom":
                raise RuntimeError("boom")

        coalescer = Coalescer(action, delay=0.01, workers=1)
        coalescer.request("ns", "boom")
        eventually(lambda: calls == ["boom"], 5.0, "calls == ['boom']", every=0.01)
        coalescer.request("ns", "ok")
        eventually(lambda: calls == ["boom", "ok"], 5.0, "calls == ['boom', 'ok']", every=0.01)

    def test_a_sooner_request_moves_the_run_forward(self) -> None:
        calls: list[float] = []
        coalescer = Coalescer(lambda ns, name: calls.append(time.monotonic()), delay=5.0)
        asked = time.monotonic()
        coalescer.request("ns", "a")  # due in 5 s
        coalescer.request("ns", "a", delay=0.05)  # sooner: runs then, and once
        eventually(lambda: len(calls) == 1, 2.0, "len(calls) == 1", every=0.01)
        assert calls[0] - asked < 1.0
        coalescer.request("ns", "b", delay=0.05)
        coalescer.request("ns", "b", delay=5.0)  # later: the sooner run stays
        eventually(lambda: len(calls) == 2, 2.0, "len(calls) == 2", every=0.01)


class TestDoubling:
    def test_doubles_up_to_the_last_and_starts_over_on_reset(self) -> None:
        doubling = Doubling(0.25, 5.0)
        key = ("ns", "a")
        assert [doubling.next(key) for _ in range(7)] == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
        assert doubling.next(("ns", "b")) == 0.25  # each key its own
        for _ in range(5000):  # a key that never resets stays at the last delay
            assert doubling.next(key) == 5.0
        doubling.reset(key)
        assert doubling.next(key) == 0.25


class TestSettling:
    def test_waits_from_the_first_sight_and_starts_over_when_lost(self) -> None:
        now = [100.0]
        settling = Settling(1.0, clock=lambda: now[0])
        key = ("ns", "a")
        assert settling.left(key, reachable=False) == 0.0  # nothing listed: nothing to settle
        assert settling.left(key, reachable=True) == 1.0  # first seen now
        now[0] = 100.4
        assert settling.left(key, reachable=True) == pytest.approx(0.6)
        assert settling.remaining(key) == pytest.approx(0.6)
        now[0] = 101.0
        assert settling.left(key, reachable=True) == 0.0
        assert settling.left(key, reachable=False) == 0.0  # an endpoint lost: start over
        assert settling.remaining(key) == 0.0
        assert settling.left(key, reachable=True) == 1.0
        settling.forget(key)
        assert settling.remaining(key) == 0.0
