"""One analysis tick of one resource: read, gather, judge, record, plan, write.

    read the resource (skip it when deleted, paused, not reconciled yet, or blocked:
                       InvalidSpec, NameConflict)
    -> gather.gather            signals and checks (I/O, async)
    -> record.next_record       the next analysis record (pure)
    -> plan.plan                the one thing to do next (pure, rollback package)
    -> write.write              status, Events, revision outcomes (the API door, in a thread)

It returns a typed `TickResult`; the handler decides what follows (a reconcile after a step or
a return, so the new mode's children are applied at once).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pizza_operator import metrics
from pizza_operator.analysis.gather import ScrapeMemory, gather
from pizza_operator.analysis.record import ANALYSED, Observation, next_record, thresholds
from pizza_operator.analysis.write import Done, Door, write
from pizza_operator.api.v1alpha1 import KIND, AnalysisStatus, PizzaModelDeployment
from pizza_operator.conditions import find_condition
from pizza_operator.contract import BLOCKED_REASONS, RevisionRef, format_time
from pizza_operator.rollback import parse_duration
from pizza_operator.rollback.plan import becomes_known_good, needs_revisions, plan

GONE_DELAY = 10.0
"""Seconds until the next look at a resource that could not be read."""


@dataclass(frozen=True)
class TickResult:
    """What a tick did, and when the next one is due."""

    delay: float
    done: Done | Literal["gone", "skipped"]

    @property
    def reconcile(self) -> bool:
        """The mode changed: the children must follow now."""
        return self.done in ("stepped", "returned")


def skipped(pmd: PizzaModelDeployment) -> bool:
    """Nothing to judge: being deleted, paused (it freezes the analysis too), not reconciled yet,
    or its last reconcile applied nothing (an invalid spec, a name conflict: its children are
    the last good ones, or none)."""
    ready = find_condition(pmd.status.conditions, "Ready")
    return bool(
        pmd.metadata.deletion_timestamp
        or pmd.spec.paused
        or pmd.status.current_revision is None
        or (ready is not None and ready.reason in BLOCKED_REASONS)
    )


async def tick(door: Door, memory: ScrapeMemory, namespace: str, name: str) -> TickResult:
    """One check of one resource."""
    body = await asyncio.to_thread(door.kube.get, KIND, namespace, name)
    if body is None:
        return TickResult(GONE_DELAY, "gone")
    pmd = PizzaModelDeployment.from_body(body)
    interval = parse_duration(pmd.spec.analysis.interval)
    if skipped(pmd):
        return TickResult(interval, "skipped")
    now = datetime.now(UTC)
    seen = await gather(door.kube, door.history, memory, pmd, now=now, interval=interval)
    limits = thresholds(pmd.spec.analysis)
    record = next_record(pmd.status.analysis or AnalysisStatus(), seen, limits, format_time(now))
    export(pmd, seen, record, limits)
    done = await asyncio.to_thread(_decide_and_write, door, pmd, seen, record, now)
    return TickResult(interval, done)


def _decide_and_write(
    door: Door,
    pmd: PizzaModelDeployment,
    seen: Observation,
    record: AnalysisStatus,
    now: datetime,
) -> Done:
    if record.primary is not None and becomes_known_good(pmd, record.primary, now):
        door.history.mark(pmd, pmd.status.current_revision or "", "Good")
    revisions: list[RevisionRef] = []
    if needs_revisions(pmd, record, now):
        revisions = [s.revision for s in door.history.revisions(pmd)]
    action = plan(pmd, record, revisions, now)
    return write(door, pmd, action, record, seen.window.primary.failure_rate)


def export(
    pmd: PizzaModelDeployment,
    seen: Observation,
    record: AnalysisStatus,
    limits: dict[str, float],
) -> None:
    """The operator's own metrics of this tick: verdicts, values and thresholds."""
    ns, name = pmd.metadata.namespace, pmd.metadata.name
    if seen.window.error is not None:
        metrics.METRICS_UNAVAILABLE.labels(source=seen.source).inc()
    for component in ANALYSED:
        check = seen.checks[component]
        counted = getattr(record, component)
        failures = float(counted.consecutive_failures) if counted is not None else 0.0
        metrics.ANALYSIS_CHECKS.labels(component=component, verdict=check.verdict).inc()
        metrics.set_values(ns, name, component, {**check.values, "consecutiveFailures": failures})
        metrics.set_thresholds(ns, name, component, limits)
