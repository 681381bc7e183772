"""A rollout's next status and the Event of its transition (pure).

One Event per transition, named after the rollout and the transition (`event_name`): a new
leader redoing a look the old one had announced posts nothing twice."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pizza_operator.api.v1alpha1 import CanarySignals, RolloutStatus
from pizza_operator.contract import EventReason
from pizza_operator.rollout.steps import Observed, State


@dataclass(frozen=True)
class Transition:
    type: Literal["Normal", "Warning"]
    reason: EventReason
    message: str
    key: str  # what makes this transition one of its kind within the rollout


def patch(rollout: RolloutStatus) -> dict[str, object]:
    """The status merge patch that makes `status.rollout` exactly `rollout`: its unset fields
    are written as null, so nothing of an earlier rollout lingers (a merge patch keeps what it
    does not name)."""
    return {"rollout": rollout.model_dump(by_alias=True, mode="json")}


def signals(observed: Observed) -> CanarySignals:
    return CanarySignals(
        canary_requests=observed.canary_requests,
        canary_failures=observed.canary_failures,
        canary_p95=observed.canary_p95,
        stable_p95=observed.stable_p95,
        pairs=observed.pairs,
        agreed=observed.agreed,
        agreement=observed.agreed / observed.pairs if observed.pairs > 0 else None,
    )


def next_status(
    rollout: RolloutStatus,
    after: State,
    observed: Observed | None,
    now: str,
    *,
    request: str | None,
    started: float,
) -> RolloutStatus:
    """status.rollout after one look that moved the state to `after` (`started`: when the
    step began, as status.rollout says; a new step, or the first one's traffic, starts anew)."""
    stepped = after.step != rollout.step or after.step_started != started
    finished = after.phase in ("Promoted", "Aborted") and rollout.phase not in (
        "Promoted",
        "Aborted",
    )
    return rollout.model_copy(
        update={
            "phase": after.phase,
            "step": after.step,
            "canary_weight": after.weight,
            "reason": after.reason,
            "step_started_at": now if stepped else rollout.step_started_at,
            "finished_at": now if finished else rollout.finished_at,
            "request": request if request is not None else rollout.request,
            "signals": None if stepped else (signals(observed) if observed else rollout.signals),
        }
    )


def transition(before: RolloutStatus, after: RolloutStatus) -> Transition | None:
    """The Event of a look that changed the phase or the step; None when neither changed."""
    where = f"revision {after.revision} (stable {after.stable_revision})"
    if after.phase == before.phase and after.step == before.step:
        return None
    if after.phase == "Aborted":
        return Transition(
            "Warning", "RolloutAborted", f"canary of {where} aborted: {after.reason}", "aborted"
        )
    if after.phase == "Promoted":
        return Transition(
            "Normal", "RolloutPromoted", f"{where} promoted: {after.reason}", "promoted"
        )
    if after.step != before.step:
        return Transition(
            "Normal",
            "RolloutStep",
            f"canary of {where} at step {after.step + 1}: {after.canary_weight}% of primary "
            "traffic",
            f"step-{after.step}",
        )
    if after.phase == "Paused":
        return Transition(
            "Normal",
            "RolloutPaused",
            f"canary of {where} paused: {after.reason}",
            f"paused-{after.step}",
        )
    return None  # Paused -> Progressing: data came, the step goes on (no Event)


def started(rollout: RolloutStatus) -> Transition:
    return Transition(
        "Normal",
        "RolloutStarted",
        f"canary of revision {rollout.revision} against stable {rollout.stable_revision}: "
        f"{rollout.canary_weight}% of primary traffic",
        "started",
    )


def event_name(name: str, rollout: RolloutStatus, transition: Transition) -> str:
    """The Event's name: one per resource, rollout (its revision and start) and transition."""
    stamp = rollout.started_at.replace(":", "").replace("-", "").lower()
    return f"{name}.rollout-{rollout.revision[-10:]}-{stamp}-{transition.key}"[:253]
