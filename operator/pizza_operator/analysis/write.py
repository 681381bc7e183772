"""Writing what a tick decided, through the API door: status, Events, revision outcomes.

Synchronous (the Kubernetes client is); the tick runs it in a worker thread. A step is
crash-safe: its Warning Event has a name derived from the rollback's number (a new leader
redoing the step gets a 409, not a second Event), the status is written with the
resourceVersion read (`StatusWriter`: one writer wins, and the step's change writes nothing once
its number is taken), and the children follow from the status (the reconcile the handler runs
next, or any replica's next reconcile, applies the new mode's children).
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass
from typing import Literal

from pizza_operator import metrics
from pizza_operator.api.v1alpha1 import AnalysisStatus, PizzaModelDeployment
from pizza_operator.builders.naming import owner_of
from pizza_operator.history import History
from pizza_operator.kube import Kube
from pizza_operator.rollback import patches
from pizza_operator.rollback.plan import Action, Record, Refuse, Return, Step, mode_of
from pizza_operator.status_writer import StatusWriter

logger = logging.getLogger(__name__)

FAILPOINT_ENV = "PIZZA_OPERATOR_FAILPOINT"
"""Tests only: SIGKILL the operator at this point of a rollback step (rollback-decided,
rollback-announced, rollback-recorded), the way a node or OOM kill would."""

Done = Literal["recorded", "stepped", "returned", "refused", "lost"]
"""What the write did; `lost`: the resource is gone or another writer got there first (no
Event, no count, nothing to follow up)."""


@dataclass(frozen=True)
class Door:
    """The analysis' ways to the API: reads and Events, status writes, the revision history."""

    kube: Kube
    writer: StatusWriter
    history: History


def failpoint(name: str) -> None:
    if os.environ.get(FAILPOINT_ENV) == name:
        logger.error("failpoint %s: the operator kills itself now", name)
        os.kill(os.getpid(), signal.SIGKILL)


def write(
    door: Door,
    pmd: PizzaModelDeployment,
    action: Action,
    record: AnalysisStatus,
    error_rate: float | None,
) -> Done:
    """Carry out `action` after recording the checks in `record`."""
    if isinstance(action, Step):
        return take_step(door, pmd, action, record, error_rate)
    if isinstance(action, Return):
        return return_to_primary(door, pmd, action, record)
    if isinstance(action, Refuse):
        return refuse(door, pmd, action, record)
    return write_record(door, pmd, action, record, error_rate)


def take_step(
    door: Door,
    pmd: PizzaModelDeployment,
    step: Step,
    record: AnalysisStatus,
    error_rate: float | None,
) -> Done:
    ns, name = pmd.metadata.namespace, pmd.metadata.name
    mode = mode_of(pmd)
    number = patches.step_number(pmd)
    logger.warning("rollback decided namespace=%s name=%s %s", ns, name, step.message)
    failpoint("rollback-decided")
    event = f"{name}.rollback-{pmd.metadata.uid[:8]}-{number}"
    door.kube.post_event(owner_of(pmd), "Warning", "RolledBack", step.message, name=event)
    failpoint("rollback-announced")
    wrote = _update(door, pmd, patches.step_change(pmd, step, record, error_rate))
    if wrote:  # else another writer recorded this step, and counts and marks it
        metrics.ROLLBACKS.labels(namespace=ns, name=name, to=step.to, reason=step.reason).inc()
        served = pmd.status.serving_revision or pmd.status.current_revision
        if mode in ("primary", "previous") and served:
            door.history.mark(pmd, served, "Failed")
    failpoint("rollback-recorded")
    return "stepped" if wrote else "lost"


def return_to_primary(
    door: Door, pmd: PizzaModelDeployment, back: Return, record: AnalysisStatus
) -> Done:
    ns, name = pmd.metadata.namespace, pmd.metadata.name
    logger.info("returning to primary namespace=%s name=%s reason=%s", ns, name, back.reason)
    if not _update(door, pmd, patches.return_change(pmd, back, record)):
        return "lost"
    door.kube.post_event(owner_of(pmd), "Normal", "ReturnedToPrimary", back.message)
    return "returned"


def refuse(door: Door, pmd: PizzaModelDeployment, refusal: Refuse, record: AnalysisStatus) -> Done:
    logger.warning("%s namespace=%s", refusal.message, pmd.metadata.namespace)
    stamp = patches.tick_time(record)
    if not _update(door, pmd, patches.refusal_change(pmd, refusal, stamp)):
        return "lost"
    door.kube.post_event(owner_of(pmd), "Warning", "RollbackRefused", refusal.message)
    return "refused"


def _update(door: Door, pmd: PizzaModelDeployment, change: patches.Change) -> bool:
    """Write `change` to the live status; whether this writer wrote it (False: the resource is
    gone, or another writer went first and the change, computed again, had nothing left)."""
    wrote: list[bool] = []

    def tracked(fresh: PizzaModelDeployment) -> patches.Patch | None:
        patch = change(fresh)
        wrote[:] = [bool(patch)]
        return patch

    written = door.writer.update(pmd.metadata.namespace, pmd.metadata.name, tracked)
    return written is not None and any(wrote)


def write_record(
    door: Door,
    pmd: PizzaModelDeployment,
    action: Record,
    record: AnalysisStatus,
    error_rate: float | None,
) -> Done:
    condition = None
    if action.suppressed is not None:
        condition = patches.suppressed_condition(pmd, action.suppressed, patches.tick_time(record))
    news: list[bool] = []
    change = patches.record_change(record, error_rate, condition)

    def noting(fresh: PizzaModelDeployment) -> patches.Patch | None:
        if condition is not None:
            news[:] = [patches.is_news(fresh, condition)]
        return change(fresh)

    # the tick's own read is tried first: a write since makes the patch a 409, then it reads again
    door.writer.update(pmd.metadata.namespace, pmd.metadata.name, noting, current=pmd)
    if condition is not None and any(news):
        door.kube.post_event(owner_of(pmd), "Warning", "RollbackSuppressed", condition.message)
    return "recorded"
