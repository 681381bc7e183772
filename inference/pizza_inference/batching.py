"""Dynamic batching: requests queue up, one forward pass answers up to `max_batch_size` of them.

The worker takes the first waiting item, then collects more until the batch is full or
`timeout_s` has passed since the first one, and runs `fn` on a single worker thread (so the model
never blocks the event loop and never runs twice at once). While a batch runs, new requests queue
and form the next batch. When the caller says how many items are on their way (`arriving`, e.g.
requests still being decoded), the worker waits only while some are: a lone request is not held
back for the timeout. The queue itself has no bound: the model server bounds it, by the memory
its decoded images may hold (`memory.MemoryPool`, the image pool). Depends on the standard
library only.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class DynamicBatcher(Generic[T, R]):
    def __init__(
        self,
        fn: Callable[[list[T]], Sequence[R]],
        *,
        max_batch_size: int = 32,
        timeout_s: float = 0.002,
        on_batch: Callable[[int, float], None] | None = None,
        arriving: Callable[[], int] | None = None,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        if timeout_s < 0:
            raise ValueError("timeout_s must not be negative")
        self._fn = fn
        self.max_batch_size = max_batch_size
        self.timeout_s = timeout_s
        self._on_batch = on_batch
        self._arriving = arriving
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[R]]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batcher")

    async def submit(self, item: T) -> R:
        """Queues one item and waits for its result (or the exception its batch raised)."""
        if self._queue is None:
            self._queue = asyncio.Queue()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._run(self._queue))
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future))
        return await future

    async def run_direct(self, items: list[T]) -> Sequence[R]:
        """Runs `fn` on `items` on the worker thread, bypassing the queue (warm-up, benchmarks)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._fn, items)

    async def _collect(
        self, queue: asyncio.Queue[tuple[T, asyncio.Future[R]]]
    ) -> list[tuple[T, asyncio.Future[R]]]:
        batch = [await queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        yielded = False
        while len(batch) < self.max_batch_size:
            if not queue.empty():
                batch.append(queue.get_nowait())
                continue
            if not yielded:  # let handlers that are ready to run submit their items first
                yielded = True
                await asyncio.sleep(0)
                continue
            remaining = deadline - loop.time()
            if remaining <= 0 or (self._arriving is not None and self._arriving() <= 0):
                break
            try:
                batch.append(await asyncio.wait_for(queue.get(), remaining))
            except TimeoutError:
                break
        return batch

    async def _run(self, queue: asyncio.Queue[tuple[T, asyncio.Future[R]]]) -> None:
        while True:
            await self._run_batch(await self._collect(queue))

    async def _run_batch(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        """Runs one batch; its items are let go of when it returns (not kept while the next
        batch is collected: a decoded image is the biggest thing a request holds)."""
        live = [(item, fut) for item, fut in batch if not fut.done()]
        if not live:
            return
        start = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self._executor, self._fn, [i for i, _ in live])
            if len(results) != len(live):
                raise RuntimeError(f"model returned {len(results)} results for {len(live)} inputs")
        except Exception as exc:
            for _, fut in live:
                if not fut.done():
                    fut.set_exception(exc)
            return
        if self._on_batch is not None:
            self._on_batch(len(live), time.perf_counter() - start)
        for (_, fut), result in zip(live, results, strict=True):
            if not fut.done():
                fut.set_result(result)

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._worker
            self._worker = None
        self._executor.shutdown(wait=False, cancel_futures=True)
