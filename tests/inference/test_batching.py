from __future__ import annotations

import asyncio
import threading

import pytest
from pizza_inference.batching import DynamicBatcher

pytestmark = pytest.mark.unit


def test_batches_concurrent_requests_in_one_call() -> None:
    calls: list[list[int]] = []
    gate = threading.Event()

    def double(items: list[int]) -> list[int]:
        gate.wait(5)
        calls.append(items)
        return [2 * i for i in items]

    async def scenario() -> list[int]:
        batcher: DynamicBatcher[int, int] = DynamicBatcher(double, max_batch_size=4, timeout_s=0.05)
        first = asyncio.ensure_future(batcher.submit(0))
        await asyncio.sleep(0.1)  # the first batch [0] is running and blocked on the gate
        rest = [asyncio.ensure_future(batcher.submit(i)) for i in range(1, 10)]
        await asyncio.sleep(0.05)
        gate.set()
        results = await asyncio.gather(first, *rest)
        await batcher.stop()
        return results

    assert asyncio.run(scenario()) == [2 * i for i in range(10)]
    assert calls[0] == [0]
    assert [len(c) for c in calls[1:]] == [4, 4, 1]  # queued while busy, split at max_batch_size


def test_a_failing_batch_fails_each_of_its_requests_and_the_next_batch_works() -> None:
    def flaky(items: list[int]) -> list[int]:
        if any(i < 0 for i in items):
            raise ValueError("negative")
        return items

    async def scenario() -> tuple[list[int | BaseException], int]:
        batcher: DynamicBatcher[int, int] = DynamicBatcher(flaky, max_batch_size=8, timeout_s=0.02)
        failed = await asyncio.gather(batcher.submit(-1), batcher.submit(3), return_exceptions=True)
        ok = await batcher.submit(5)
        await batcher.stop()
        return list(failed), ok

    failed, ok = asyncio.run(scenario())
    assert all(isinstance(f, ValueError) for f in failed)
    assert ok == 5


def test_rejects_bad_settings() -> None:
    with pytest.raises(ValueError):
        DynamicBatcher(lambda x: x, max_batch_size=0)
    with pytest.raises(ValueError):
        DynamicBatcher(lambda x: x, timeout_s=-1)
