"""What one analysis tick does next, decided from what it read: a pure function.

After the checks are recorded, exactly one of these happens, in this order of precedence:
an SRE's request annotation is taken (`Step`) or refused (`Refuse`); a rolled-back resource goes
back to the primary (`Return`: a new generation, a retry token, or the opt-in cool-down); the
ladder takes its next step (`Step`); or only the record is written (`Record`, with the step
`rollback.automatic: false` held back, if any).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pizza_operator.api.v1alpha1 import AnalysisStatus, ComponentCheck, Mode, PizzaModelDeployment
from pizza_operator.contract import (
    RETRY_ANNOTATION,
    ROLLBACK_ANNOTATION,
    ReturnReason,
    RevisionRef,
    RollbackRequest,
    known_good,
    parse_time,
)
from pizza_operator.rollback.durations import parse_duration
from pizza_operator.rollback.ladder import Decision, LadderState, decide, return_reason
from pizza_operator.rollback.verdicts import AnalysedComponent
from pizza_operator.rollout.bake import baking, failure_threshold, in_bake_time


@dataclass(frozen=True)
class Step:
    """Take one ladder step to `to` (`revision`: the revision served in mode previous)."""

    to: Mode
    reason: str
    message: str
    revision: str | None = None
    request: str | None = None  # the request annotation this step answers


@dataclass(frozen=True)
class Refuse:
    """An SRE's request that cannot be taken: recorded as handled, with why."""

    request: str
    message: str


@dataclass(frozen=True)
class Return:
    """Back to the primary; `token` is the retry token to remember."""

    reason: ReturnReason
    message: str
    token: str | None


@dataclass(frozen=True)
class Record:
    """Only the analysis record; `suppressed` is a step held back by `automatic: false`."""

    suppressed: Decision | None = None


Action = Step | Refuse | Return | Record


def mode_of(pmd: PizzaModelDeployment) -> Mode:
    return pmd.status.mode or "primary"


def needs_revisions(pmd: PizzaModelDeployment, record: AnalysisStatus, now: datetime) -> bool:
    """Whether `plan` will look at the revision history (read it only then)."""
    return _new_request(pmd) is not None or _worst_failures(record) >= failure_threshold(pmd, now)


def plan(
    pmd: PizzaModelDeployment,
    record: AnalysisStatus,
    revisions: Sequence[RevisionRef],
    now: datetime,
) -> Action:
    """The one thing this tick does after recording its checks."""
    request = _new_request(pmd)
    if request is not None:
        return _answer(pmd, request, revisions)
    back = _return(pmd, now)
    if back is not None:
        return back
    decision = _ladder(pmd, record, revisions, now)
    if decision is None or decision.step == "none":
        return Record()
    if decision.suppressed:
        return Record(suppressed=decision)
    to = decision.step
    revision = decision.to_revision.name if decision.to_revision is not None else None
    return Step(to, decision.reason, _failure_message(pmd, record, to, now), revision)


def becomes_known_good(pmd: PizzaModelDeployment, check: ComponentCheck, now: datetime) -> bool:
    """The current revision ran healthy in mode primary for a whole window: it is known-good
    (a promoted revision only after its bake time)."""
    if mode_of(pmd) != "primary" or check.verdict != "Healthy" or in_bake_time(pmd, now):
        return False
    if not pmd.status.current_revision or not check.healthy_since:
        return False
    healthy_for = (now - parse_time(check.healthy_since)).total_seconds()
    return healthy_for >= parse_duration(pmd.spec.analysis.window)


def _new_request(pmd: PizzaModelDeployment) -> str | None:
    request = pmd.metadata.annotations.get(ROLLBACK_ANNOTATION)
    if not request or request == pmd.status.rollback_request:
        return None
    return request


def _answer(pmd: PizzaModelDeployment, value: str, revisions: Sequence[RevisionRef]) -> Action:
    """An SRE's `pizza.ai/rollback: TO[:REVISION]@TOKEN` (kubectl pizza rollback), once."""
    request = RollbackRequest.decode(value)
    refusal = request.problem()
    revision = request.revision
    if refusal is None and request.to == "previous":
        if revision:
            if not any(r.name == revision for r in revisions):
                refusal = f"no revision {revision!r}"
        else:
            good = known_good(revisions, pmd.status.current_revision)
            revision = good.name if good is not None else None
            if revision is None:
                refusal = "no known-good revision"
    if refusal is not None:
        return Refuse(value, f"{ROLLBACK_ANNOTATION}={value} refused: {refusal}")
    mode = mode_of(pmd)
    to: Mode = request.to  # type: ignore[assignment]  # problem() checked it is a target
    message = f"{mode} -> {to}: asked for by {ROLLBACK_ANNOTATION}={value}"
    return Step(to, "Requested", message, revision, request=value)


def _return(pmd: PizzaModelDeployment, now: datetime) -> Return | None:
    """Back to the primary on a new generation, an SRE's retry, or (opt-in) a cool-down."""
    last = pmd.status.last_rollback
    retry = pmd.metadata.annotations.get(RETRY_ANNOTATION)
    recover = pmd.spec.rollback.auto_recover
    cooled_down = False
    if recover.enabled and last is not None:
        waited = (now - parse_time(last.time)).total_seconds() if last.time else 0.0
        cooled_down = waited >= parse_duration(recover.cooldown)
    mode = mode_of(pmd)
    reason = return_reason(mode, pmd.metadata.generation, last, retry, cooled_down)
    if reason is None:
        return None
    token = retry if reason == "Retry" else (last.retry_token if last is not None else None)
    return Return(reason, f"{mode} -> primary ({reason})", token)


def _worst_failures(record: AnalysisStatus) -> int:
    return max(
        record.primary.consecutive_failures if record.primary else 0,
        record.fallback.consecutive_failures if record.fallback else 0,
    )


def _ladder(
    pmd: PizzaModelDeployment,
    record: AnalysisStatus,
    revisions: Sequence[RevisionRef],
    now: datetime,
) -> Decision | None:
    threshold = failure_threshold(pmd, now)
    if _worst_failures(record) < threshold:
        return None
    current = next(
        (r for r in revisions if r.name == pmd.status.current_revision), RevisionRef("", 0)
    )
    return decide(
        LadderState(
            mode=mode_of(pmd),
            primary_failures=record.primary.consecutive_failures if record.primary else 0,
            fallback_failures=record.fallback.consecutive_failures if record.fallback else 0,
            failure_threshold=threshold,
            current=current,
            history=list(revisions),
            automatic=pmd.spec.rollback.automatic,
            replaced=_replaced(pmd, revisions) if baking(pmd, now) else None,
        )
    )


def _replaced(pmd: PizzaModelDeployment, revisions: Sequence[RevisionRef]) -> RevisionRef | None:
    """The revision a baking one's canary was judged against and replaced (known-good or not:
    it served the clients until the promotion), unless it has failed since."""
    rollout = pmd.status.rollout
    stable = rollout.stable_revision if rollout is not None else None
    return next((r for r in revisions if r.name == stable and r.outcome != "Failed"), None)


def failing_component(mode: Mode) -> AnalysedComponent:
    """The component whose failures a step from `mode` answers: the fallback in stable and
    emergency (the primary is not serving there), else the primary."""
    return "fallback" if mode in ("stable", "emergency") else "primary"


def failing_check(mode: Mode, record: AnalysisStatus) -> ComponentCheck | None:
    """The check a step from `mode` answers."""
    check: ComponentCheck | None = getattr(record, failing_component(mode))
    return check


def _failure_message(
    pmd: PizzaModelDeployment, record: AnalysisStatus, to: Mode, now: datetime
) -> str:
    mode = mode_of(pmd)
    check = failing_check(mode, record)
    component = failing_component(mode)
    reasons = ", ".join(check.reasons) if check is not None else ""
    values = check.values if check is not None else {}
    threshold = failure_threshold(pmd, now)
    checks = f"{threshold} checks in a row" if threshold > 1 else "a check"
    if baking(pmd, now):
        checks += f" within the {pmd.spec.rollout.bake_time} bake time after its promotion"
    return (
        f"{mode} -> {to}: the {component} failed {checks} "
        f"({reasons or 'no reason'}); " + ", ".join(f"{k}={v:g}" for k, v in values.items())
    )
