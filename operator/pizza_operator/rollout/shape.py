"""Which rollout a reconcile is in, and what it builds from it (pure).

A new primary revision is a canary when `spec.rollout.strategy` is Canary, the resource serves
in mode primary, a stable revision runs, and the pods of the primary change shape: its model,
resources, scheduling or the image (its count and autoscaling are no new revision of it: they
apply at once, as router and fallback changes do). Until the rollout ends, the primary
Deployment keeps the stable revision's shape and the canary runs the spec's; an aborted canary
leaves the stable shape in place until the spec changes again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pizza_operator.api.v1alpha1 import Mode, PizzaModelDeployment, RolloutStatus
from pizza_operator.contract import ABORT_ANNOTATION, PROMOTE_ANNOTATION
from pizza_operator.rollback.durations import parse_duration
from pizza_operator.rollout.steps import State, Step, start

COUNT_FIELDS = ("replicas", "autoscaling")
"""Parts of spec.primary that change its count, not its pods."""
LIVE = ("Progressing", "Paused")


def primary_shape(data: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a revision's data that shapes the primary's pods."""
    primary = {k: v for k, v in (data.get("primary") or {}).items() if k not in COUNT_FIELDS}
    return {"image": data.get("image"), "primary": primary}


def starts_canary(
    pmd: PizzaModelDeployment, mode: Mode, stable: Mapping[str, Any], new: Mapping[str, Any]
) -> bool:
    """Does the spec's revision (`new`, its shaping data) start a canary against `stable`?"""
    return (
        pmd.spec.rollout.strategy == "Canary"
        and mode == "primary"
        and primary_shape(stable) != primary_shape(new)
    )


def of_revision(pmd: PizzaModelDeployment, revision: str) -> RolloutStatus | None:
    """status.rollout when it is about `revision` (the spec's), else None."""
    rollout = pmd.status.rollout
    return rollout if rollout is not None and rollout.revision == revision else None


def keeps_stable(rollout: RolloutStatus | None) -> bool:
    """The primary Deployment keeps the stable shape: a canary runs, or it was aborted."""
    return rollout is not None and (rollout.phase in LIVE or rollout.phase == "Aborted")


def in_flight(phase: str | None, handed_over: bool) -> bool:
    """A rollout the canary still serves in: live, or promoted and not yet handed over (the
    canary answers for the revision while the primary Deployment rolls to it)."""
    return phase in LIVE or (phase == "Promoted" and not handed_over)


def canary_runs(rollout: RolloutStatus | None, mode: Mode) -> bool:
    """The canary's pods are wanted."""
    if rollout is None or mode != "primary":
        return False
    return in_flight(rollout.phase, rollout.handed_over)


def canary_weight(rollout: RolloutStatus) -> int:
    """The routing table's weight: the step's, 100 while a promoted canary hands over."""
    return 100 if rollout.phase == "Promoted" else rollout.canary_weight


def with_stable_primary(
    pmd: PizzaModelDeployment, stable: Mapping[str, Any]
) -> PizzaModelDeployment:
    """The resource with the stable revision's primary (and image for it), the spec's count:
    what the primary Deployment is built from during a rollout."""
    wire = pmd.spec.to_wire()
    primary = dict(stable.get("primary") or {})
    for field in COUNT_FIELDS:
        primary.pop(field, None)
        if field in wire["primary"]:
            primary[field] = wire["primary"][field]
    wire["primary"] = primary
    if stable.get("image") is not None:
        wire["image"] = stable["image"]
    else:
        wire.pop("image", None)
    return pmd.model_copy(update={"spec": type(pmd.spec).model_validate(wire)})


def steps_of(pmd: PizzaModelDeployment) -> tuple[Step, ...]:
    return tuple(
        Step(s.weight, parse_duration(s.pause) if s.pause else None) for s in pmd.spec.rollout.steps
    )


def begin(
    pmd: PizzaModelDeployment, revision: str, stable: str, now: str, now_epoch: float
) -> RolloutStatus:
    """A new rollout of `revision` against `stable` at the first step (Surge: the plan changes
    to Borrow when the canary's pod cannot be scheduled). The promote and abort tokens already
    on the resource are handled: they were meant for an earlier rollout."""
    state = start(steps_of(pmd), now_epoch)
    return RolloutStatus(
        phase=state.phase,
        revision=revision,
        stable_revision=stable,
        step=state.step,
        canary_weight=state.weight,
        reason=state.reason,
        started_at=now,
        step_started_at=now,
        request=",".join(
            t
            for a in (PROMOTE_ANNOTATION, ABORT_ANNOTATION)
            if (t := pmd.metadata.annotations.get(a))
        )
        or None,
    )


def state_of(rollout: RolloutStatus, step_started: float) -> State:
    return State(rollout.phase, rollout.step, rollout.canary_weight, step_started, rollout.reason)
