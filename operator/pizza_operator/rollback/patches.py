"""The status patches of the rollback, as pure builders: step, return, refusal and record.

Each builder is a `StatusWriter` change: from the live resource (`fresh`, read just before the
write) to the status fields to merge-patch, or None when there is nothing to write. They are
computed again from a newer object on a 409, so they must hold when another writer went first:
a step already recorded (its number taken) or a return already made writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pizza_operator.api.v1alpha1 import (
    AnalysisStatus,
    ComponentCheck,
    Condition,
    PizzaModelDeployment,
)
from pizza_operator.conditions import find_condition, merge_conditions, new_condition
from pizza_operator.contract import RETRY_ANNOTATION
from pizza_operator.rollback.ladder import Decision
from pizza_operator.rollback.plan import Refuse, Return, Step, failing_check, mode_of

Patch = dict[str, Any]
Change = Callable[[PizzaModelDeployment], Patch | None]


def step_number(pmd: PizzaModelDeployment) -> int:
    """The number the next rollback of this resource gets."""
    last = pmd.status.last_rollback
    return (last.number if last else 0) + 1


def served_revision(pmd: PizzaModelDeployment, step: Step) -> str | None:
    """The revision the children are built from after `step`."""
    return step.revision if step.to == "previous" else pmd.status.current_revision


def step_change(
    pmd: PizzaModelDeployment, step: Step, record: AnalysisStatus, error_rate: float | None
) -> Change:
    """Record one ladder step: mode, lastRollback, servingRevision, RolledBack=True and the
    record reset (a new mode is judged on what happens in it)."""
    stamp = tick_time(record)
    number = step_number(pmd)
    check = failing_check(mode_of(pmd), record)
    last: Patch = {
        "number": number,
        "from": mode_of(pmd),
        "to": step.to,
        "reason": step.reason,
        "message": step.message,
        "values": dict(check.values) if check is not None else {},
        "time": stamp,
        "generation": pmd.metadata.generation,
        "retryToken": pmd.metadata.annotations.get(RETRY_ANNOTATION),
        "revision": served_revision(pmd, step) if step.to == "previous" else None,
    }
    condition = new_condition(
        "RolledBack", "True", step.reason, step.message, pmd.metadata.generation, now=stamp
    )

    def change(fresh: PizzaModelDeployment) -> Patch | None:
        done = fresh.status.last_rollback
        if done is not None and done.number >= number:
            return None  # another writer recorded this step already
        extra = {"rollbackRequest": step.request} if step.request is not None else {}
        return {
            **extra,
            "mode": step.to,
            "lastRollback": {k: v for k, v in last.items() if v is not None},
            "servingRevision": served_revision(pmd, step),
            "analysis": record_wire(reset(record, stamp)),
            "errorRate": error_rate,
            "conditions": with_condition(fresh, condition, stamp),
        }

    return change


def return_change(pmd: PizzaModelDeployment, back: Return, record: AnalysisStatus) -> Change:
    """Back to the primary: mode primary, the current revision served, RolledBack=False."""
    stamp = tick_time(record)
    condition = new_condition(
        "RolledBack", "False", back.reason, back.message, pmd.metadata.generation, now=stamp
    )
    last = pmd.status.last_rollback
    remembered = last.retry_token if last is not None else None

    def change(fresh: PizzaModelDeployment) -> Patch | None:
        if mode_of(fresh) == "primary":
            return None
        patch: Patch = {
            "mode": "primary",
            "servingRevision": fresh.status.current_revision,
            "analysis": record_wire(reset(record, stamp)),
            "conditions": with_condition(fresh, condition, stamp),
        }
        if back.token != remembered:
            patch["lastRollback"] = {"retryToken": back.token}
        return patch

    return change


def refusal_change(pmd: PizzaModelDeployment, refuse: Refuse, stamp: str) -> Change:
    """The request is handled (never taken again) and RolledBack=False says why."""
    condition = new_condition(
        "RolledBack", "False", "RequestRefused", refuse.message, pmd.metadata.generation, now=stamp
    )

    def change(fresh: PizzaModelDeployment) -> Patch | None:
        if fresh.status.rollback_request == refuse.request:
            return None  # another writer handled this request already
        return {
            "rollbackRequest": refuse.request,
            "conditions": with_condition(fresh, condition, stamp),
        }

    return change


def suppressed_condition(pmd: PizzaModelDeployment, decision: Decision, stamp: str) -> Condition:
    """RolledBack=False RollbackSuppressed: the step `automatic: false` keeps from being taken."""
    why = f" ({decision.reason})" if decision.reason != "RollbackSuppressed" else ""
    message = f"rollback.automatic is false: would go {mode_of(pmd)} -> {decision.step}{why}"
    return new_condition(
        "RolledBack", "False", "RollbackSuppressed", message, pmd.metadata.generation, now=stamp
    )


def record_wire(record: AnalysisStatus) -> dict[str, Any]:
    """The record as a merge patch: a field this tick left unset is written as null, so that
    what an earlier tick wrote (a `metricsError`, a `clientErrorRate`) does not linger."""
    unset = {
        field.alias or name: None
        for name, field in AnalysisStatus.model_fields.items()
        if getattr(record, name) is None
    }
    return {**unset, **record.to_wire()}


def record_change(
    record: AnalysisStatus, error_rate: float | None, condition: Condition | None
) -> Change:
    """The analysis record and errorRate, and a RolledBack condition when one is given."""
    stamp = tick_time(record)

    def change(fresh: PizzaModelDeployment) -> Patch:
        patch: Patch = {"analysis": record_wire(record), "errorRate": error_rate}
        if condition is not None:
            patch["conditions"] = with_condition(fresh, condition, stamp)
        return patch

    return change


def is_news(fresh: PizzaModelDeployment, condition: Condition) -> bool:
    """Whether `condition` changes the RolledBack reason (its Event is posted once)."""
    old = find_condition(fresh.status.conditions, condition.type)
    return old is None or old.reason != condition.reason


def reset(record: AnalysisStatus, stamp: str) -> AnalysisStatus:
    """The record as a new mode starts it: failures and healthy runs counted from now."""
    return record.model_copy(
        update={
            "since": stamp,
            "primary": _reset(record.primary),
            "fallback": _reset(record.fallback),
        }
    )


def with_condition(
    fresh: PizzaModelDeployment, condition: Condition, now: str
) -> list[dict[str, Any]]:
    return [c.to_wire() for c in merge_conditions(fresh.status.conditions, [condition], now)]


def _reset(check: ComponentCheck | None) -> ComponentCheck | None:
    if check is None:
        return None
    return check.model_copy(update={"consecutive_failures": 0, "healthy_since": None})


def tick_time(record: AnalysisStatus) -> str:
    """The time of the tick that wrote `record` (its checks carry it)."""
    check = record.primary or record.fallback
    return check.time if check is not None else ""
