"""The rollback ladder: previous, then stable, then emergency; one step per decision."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pizza_operator.api.v1alpha1 import Mode
from pizza_operator.rollback.revisions import Revision, known_good

Step = Literal["none", "previous", "stable", "emergency"]


@dataclass(frozen=True)
class LadderState:
    """What the decision needs: the mode, the failure counts, the revisions, the switches."""

    mode: Mode
    primary_failures: int
    fallback_failures: int
    failure_threshold: int
    current: Revision
    history: Sequence[Revision] = ()
    automatic: bool = True
    paused: bool = False


@dataclass(frozen=True)
class Decision:
    """The next step; `suppressed` when `rollback.automatic: false` keeps it from being taken."""

    step: Step
    reason: str
    to_revision: Revision | None = None
    suppressed: bool = False


def _step(state: LadderState) -> Decision:
    if state.mode == "primary" and state.primary_failures >= state.failure_threshold:
        good = known_good(state.history, state.current.hash)
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
    if state.paused:
        return Decision("none", "Paused")
    decision = _step(state)
    if decision.step != "none" and not state.automatic:
        return Decision(decision.step, "RollbackSuppressed", decision.to_revision, True)
    return decision


def may_return_to_primary(
    mode: Mode,
    generation: int,
    rollback_generation: int | None,
    retry_token: str | None,
    retry_token_seen: str | None,
) -> bool:
    """After a rollback, primary again only on a new spec generation or an SRE's retry token."""
    if mode == "primary":
        return True
    if rollback_generation is not None and generation > rollback_generation:
        return True
    return retry_token is not None and retry_token != retry_token_seen
