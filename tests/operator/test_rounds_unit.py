"""The operator-wide loop measures how late each analysis tick starts (`rounds`).

A real `Rounds` with a real API client pointed at a loopback port nobody listens on: the tick
starts (its lag is recorded), its first read is refused, the failure is logged and the loop goes on.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from kubernetes import client
from pizza_operator.analysis import Door, ScrapeMemory
from pizza_operator.config import OperatorConfig
from pizza_operator.health import Health
from pizza_operator.kube import Kube
from pizza_operator.reconcile import Reconciler
from pizza_operator.rounds import Rounds
from prometheus_client import REGISTRY

from tests.support.net import free_port

pytestmark = pytest.mark.unit
LAG = "pizza_operator_analysis_tick_lag_seconds"


def lag_samples() -> tuple[float, float]:
    count = REGISTRY.get_sample_value(f"{LAG}_count") or 0.0
    total = REGISTRY.get_sample_value(f"{LAG}_sum") or 0.0
    return count, total


def rounds_without_api_server() -> Rounds:
    configuration = client.Configuration(host=f"http://127.0.0.1:{free_port()}")
    kube = Kube(client.ApiClient(configuration), timeout=(1.0, 1.0))
    reconciler = Reconciler(kube, OperatorConfig())
    door = Door(kube, reconciler.writer, reconciler.history)
    return Rounds(door, ScrapeMemory(), reconciler, Health(), resync_every=600)


def test_a_tick_due_three_seconds_ago_is_recorded_three_seconds_late() -> None:
    async def scenario() -> tuple[float, float]:
        rounds = rounds_without_api_server()
        count, total = lag_samples()
        rounds.schedule.know(("ns", "late"), time.monotonic() - 3.0)
        rounds.schedule.know(("ns", "later"), time.monotonic() + 60.0)  # not due: not counted
        loop = asyncio.create_task(rounds.run())
        deadline = time.monotonic() + 10
        while lag_samples()[0] == count and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        loop.cancel()
        await rounds.stop()
        after_count, after_total = lag_samples()
        return after_count - count, after_total - total

    ticks, lag = asyncio.run(scenario())
    assert ticks == 1
    assert 3.0 <= lag < 3.5
