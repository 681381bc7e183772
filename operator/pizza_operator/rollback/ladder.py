"""The rollback ladder: previous, then stable, then emergency; one step per decision."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pizza_operator.api.v1alpha1 import LastRollback, Mode
from pizza_operator.contract import ReturnReason, RevisionRef, known_good

Step = Literal["none", "previous", "stable", "emergency"]


@dataclass(frozen=True)
class LadderState:
    """What the decision needs: the mode, the failure counts, the revisions, the switches."""

    mode: Mode
    primary_failures: int
    fallback_failures: int
    failure_threshold: int
    current: RevisionRef
    history: Sequence[RevisionRef] = ()
    automatic: bool = True
    replaced: RevisionRef | None = None
    """While a promoted revision bakes: the revision its canary replaced (served until then)."""


@dataclass(frozen=True)
class Decision:
    """The next step; `suppressed` when `rollback.automatic: false` keeps it from being taken."""

    step: Step
    reason: str
    to_revision: RevisionRef | None = None
    suppressed: bool = False


def _step(state: LadderState) -> Decision:
    if state.mode == "primary" and state.primary_failures >= state.failure_threshold:
        good = state.replaced or known_good(state.history, state.current.name)
        if state.current.outcome != "Good" and good is not None:
            return Decision("previous", "PrimaryFailedNewRevision", good)
        return Decision("stable", "PrimaryFailed")
    if state.mode == "previous" and state.primary_failures >= state.failure_threshold:
        return Decision("stable", "KnownGoodRevisionFailed")
    if state.mode == "stable" and state.fallback_failures >= state.failure_threshold:
        return Decision("emergency", "FallbackFailed")
    return Decision("none", "Healthy")


def decide(state: LadderState) -> Decision:
    """The one next step of the ladder, or none; emergency is the bottom and never steps."""
    decision = _step(state)
    if decision.step != "none" and not state.automatic:
        return Decision(decision.step, "RollbackSuppressed", decision.to_revision, True)
    return decision


def return_reason(
    mode: Mode,
    generation: int,
    last: LastRollback | None,
    retry_token: str | None,
    cooled_down: bool = False,
) -> ReturnReason | None:
    """Why a rolled-back resource goes back to the primary now, if it does: a new spec
    generation, an SRE's new retry token, or (opt-in) the cool-down passed."""
    if mode == "primary" or last is None:
        return None
    if generation > last.generation:
        return "NewGeneration"
    if retry_token is not None and retry_token != last.retry_token:
        return "Retry"
    return "AutoRecover" if cooled_down else None
