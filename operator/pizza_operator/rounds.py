"""The operator-wide loop: every resource's analysis tick and periodic resync, from a schedule.

It runs in kopf's event loop while this replica leads (started and stopped by the startup and
cleanup handlers). Ticks await their I/O in the loop; resyncs and the reconciles after a step
run in threads. At most `tick_concurrency` ticks and `concurrency` resyncs (as many autoscaling
looks, as many rollout steps) run at once, one per resource and kind of work. A tick mostly waits
(API reads, router scrapes of up to 2 s when a pod does not answer), so its bound is wider: 500
resources every 10 s with 2 s waits need about 100.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from pizza_operator import analysis, metrics
from pizza_operator.api.v1alpha1 import KIND
from pizza_operator.health import Health
from pizza_operator.reconcile import Reconciler
from pizza_operator.rollout import act as rollout
from pizza_operator.rollout.act import RolloutMemory
from pizza_operator.scaling import act as scaling
from pizza_operator.scaling.act import ScalingMemory
from pizza_operator.schedule import Key, Schedule, Work

logger = logging.getLogger(__name__)

FAILED_DELAY = 10.0
"""Seconds until the next tick after one that raised."""
BEAT = "rounds"


class Rounds:
    def __init__(
        self,
        door: analysis.Door,
        scrapes: analysis.ScrapeMemory,
        reconciler: Reconciler,
        health: Health,
        *,
        resync_every: float,
        concurrency: int = 16,
        tick_concurrency: int = 128,
    ) -> None:
        self.door, self.scrapes, self.reconciler, self.health = door, scrapes, reconciler, health
        self.schedule = Schedule(resync_every)
        self.scaling = ScalingMemory()
        self.rollouts = RolloutMemory()
        self._slots = {
            "tick": asyncio.Semaphore(tick_concurrency),
            **{w: asyncio.Semaphore(concurrency) for w in ("resync", "scale", "rollout")},
        }
        self._wake = asyncio.Event()
        self._running: set[tuple[Work, Key]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def know(self, key: Key, *, scaled: bool = False, rolling: bool = False) -> None:
        """A resource seen (again); `scaled`: it has autoscaling, so its routers are looked at
        every few seconds too (until a look finds nothing to scale); `rolling`: a canary runs,
        judged every `spec.rollout.every` (until a look finds none)."""
        now = time.monotonic()
        woken = self.schedule.know(key, now)
        for work, wanted in (("scale", scaled), ("rollout", rolling)):
            running = (work, key) in self._running
            if wanted and not running and not self.schedule.has(work, key):  # type: ignore[arg-type]
                self.schedule.plan(work, key, now)  # type: ignore[arg-type]
                woken = True
        if woken:
            self._wake.set()

    def forget(self, key: Key) -> None:
        self.schedule.forget(key)
        self.scrapes.forget(key)
        self.scaling.forget(key)
        self.rollouts.forget(key)

    async def run(self) -> None:
        while True:
            self.health.beat(BEAT)
            for work, key, due in self.schedule.take_due_at(time.monotonic()):
                if (work, key) not in self._running:
                    self._start(work, key, due)
            next_at = self.schedule.next_at()
            wait = 5.0 if next_at is None else min(5.0, max(0.0, next_at - time.monotonic()))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _start(self, work: Work, key: Key, due: float) -> None:
        self._running.add((work, key))
        if work == "tick":
            task = asyncio.create_task(self._tick(key, due))
        else:
            run = {"resync": self._resync, "scale": self._scale, "rollout": self._rollout}[work]
            task = asyncio.create_task(run(key))
        self._tasks.add(task)

        def done(_: asyncio.Task[None]) -> None:
            self._tasks.discard(task)
            self._running.discard((work, key))
            self._wake.set()

        task.add_done_callback(done)

    async def _tick(self, key: Key, due: float) -> None:
        namespace, name = key
        delay = FAILED_DELAY
        async with self._slots["tick"]:
            metrics.ANALYSIS_TICK_LAG.observe(max(0.0, time.monotonic() - due))
            with self.health.working(f"analysis of {namespace}/{name}"):
                try:
                    result = await analysis.tick(self.door, self.scrapes, namespace, name)
                    if result.reconcile:  # the mode changed: apply its children now
                        await self._reconcile(key, force=True)
                    delay = result.delay
                except Exception:  # a failed check is logged and retried; the loop never dies
                    logger.exception("analysis failed namespace=%s name=%s", namespace, name)
        self.schedule.plan("tick", key, time.monotonic() + delay)

    async def _resync(self, key: Key) -> None:
        async with self._slots["resync"]:
            with self.health.working(f"resync of {key[0]}/{key[1]}"):
                try:
                    await self._reconcile(key, force=False)
                except Exception:
                    logger.exception("resync failed namespace=%s name=%s", *key)
        self.schedule.plan("resync", key, time.monotonic() + self.schedule.resync_every)

    async def _scale(self, key: Key) -> None:
        delay: float | None = FAILED_DELAY
        async with self._slots["scale"]:
            with self.health.working(f"autoscaling of {key[0]}/{key[1]}"):
                try:
                    looked = await scaling.look(self.door.kube, self.scaling, *key)
                    if looked.changed:  # give the Deployments and routers their new counts
                        await self._reconcile(key, force=False)
                    delay = looked.delay
                except Exception:
                    logger.exception("autoscaling failed namespace=%s name=%s", *key)
        if delay is not None:
            self.schedule.plan("scale", key, time.monotonic() + delay)

    async def _rollout(self, key: Key) -> None:
        delay: float | None = FAILED_DELAY
        async with self._slots["rollout"]:
            with self.health.working(f"rollout of {key[0]}/{key[1]}"):
                try:
                    looked = await rollout.look(
                        self.door.kube, self.reconciler.history, self.rollouts, *key
                    )
                    if looked.changed:  # the routing table, the canary, the primary follow
                        await self._reconcile(key, force=False)
                    delay = looked.delay
                except Exception:
                    logger.exception("rollout failed namespace=%s name=%s", *key)
        if delay is not None:
            self.schedule.plan("rollout", key, time.monotonic() + delay)

    async def _reconcile(self, key: Key, *, force: bool) -> None:
        body = await asyncio.to_thread(self.door.kube.get, KIND, *key)
        if body is None:
            self.forget(key)
            return
        await asyncio.to_thread(self.reconciler.reconcile, body, force=force)
