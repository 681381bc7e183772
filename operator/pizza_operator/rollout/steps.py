"""The canary state machine (pure: no clock, no I/O).

A rollout walks `steps` (a weight: the percent of primary traffic the canary gets; a pause: how
long the step lasts once judged healthy, or None: until promoted). Each look judges the step so
far, canary against stable: failure rate, p95 latency, and prediction agreement on the sampled
requests sent to both. A failed gate, or a canary that never becomes ready, aborts; no data is no
verdict and pauses the step (as Argo Rollouts does with Inconclusive) until data comes; a healthy
step whose pause is over advances, and the last one promotes. An SRE's promote or abort wins.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

Phase = Literal["Progressing", "Paused", "Promoted", "Aborted"]
PHASES: tuple[Phase, ...] = ("Progressing", "Paused", "Promoted", "Aborted")
Verdict = Literal["Healthy", "Failed", "Inconclusive"]
Request = Literal["promote", "abort"]


@dataclasses.dataclass(frozen=True)
class Step:
    weight: int  # percent of primary-bound requests sent to the canary, 1..100
    pause: float | None  # seconds the step lasts once healthy; None: until promoted


@dataclasses.dataclass(frozen=True)
class Gates:
    max_failure_rate: float = 0.05  # the canary's failure rate over the step
    max_p95_ratio: float = 1.5  # canary p95 at most this times the stable primary's
    min_agreement: float = 0.9  # share of sampled pairs that predicted the same class
    min_requests: int = 10  # canary requests (and sampled pairs) a step needs for a verdict
    p95_slack: float = 0.1  # seconds the canary's p95 may exceed the ratio's bound by: a p95 of
    # tens of requests is near their maximum, and the routers' buckets are coarse (0.05, 0.1,
    # 0.25 s): without it a canary as fast as stable failed in 4-70 % of rollouts (bench/rollout)


@dataclasses.dataclass(frozen=True)
class Observed:
    """The current step so far."""

    canary_requests: float
    canary_failures: float
    canary_p95: float | None
    stable_p95: float | None
    pairs: float  # sampled requests answered by both
    agreed: float
    canary_ready: bool


@dataclasses.dataclass(frozen=True)
class State:
    phase: Phase
    step: int  # index into the steps
    weight: int  # the canary's weight now (0 once promoted or aborted)
    step_started: float  # when the current step began (epoch seconds)
    reason: str = ""


def judge(observed: Observed, gates: Gates) -> tuple[Verdict, list[str]]:
    """The step's verdict with its reasons; a gate without enough data gives no verdict."""
    failed: list[str] = []
    missing: list[str] = []
    if observed.canary_requests < gates.min_requests:
        missing.append(f"{observed.canary_requests:g} canary requests (< {gates.min_requests})")
    else:
        rate = observed.canary_failures / observed.canary_requests
        if rate > gates.max_failure_rate:
            failed.append(f"failure rate {rate:.1%} > {gates.max_failure_rate:.1%}")
        if observed.canary_p95 is None:
            missing.append("no canary p95")
        elif observed.stable_p95 is None:
            pass  # no stable answer in the step (its pods lent to the canary): no p95 gate
        elif observed.canary_p95 > max(
            observed.stable_p95 * gates.max_p95_ratio, observed.stable_p95 + gates.p95_slack
        ):
            failed.append(
                f"p95 {observed.canary_p95:.3f} s > {gates.max_p95_ratio:g} x stable "
                f"{observed.stable_p95:.3f} s"
            )
    if observed.pairs < gates.min_requests:
        missing.append(f"{observed.pairs:g} compared pairs (< {gates.min_requests})")
    else:
        agreement = observed.agreed / observed.pairs
        if agreement < gates.min_agreement:
            failed.append(f"agreement {agreement:.1%} < {gates.min_agreement:.0%}")
    if failed:
        return "Failed", failed
    if missing:
        return "Inconclusive", missing
    return "Healthy", []


def start(steps: tuple[Step, ...], now: float) -> State:
    """A new revision's rollout begins at its first step, with no traffic: the canary gets its
    weight once it is ready (no request is sent to a pod still starting), and the step's clock
    and counts start then."""
    del steps
    return State("Progressing", 0, 0, now, WAITING)


WAITING = "waiting for the canary to be ready"


def advance(
    state: State,
    steps: tuple[Step, ...],
    observed: Observed,
    gates: Gates,
    now: float,
    *,
    request: Request | None = None,
    ready_within: float,
) -> State:
    """The next state of a rollout from one look at its step. `ready_within`: seconds a canary
    may take to become ready (its startup timeout) before the rollout is aborted."""
    if state.phase in ("Promoted", "Aborted"):
        return state
    if request == "abort":
        return dataclasses.replace(state, phase="Aborted", weight=0, reason="aborted by request")
    if request == "promote":
        return dataclasses.replace(state, phase="Promoted", weight=0, reason="promoted by request")
    if state.weight == 0:  # not ready yet
        if observed.canary_ready:
            first = steps[state.step]
            why = f"canary ready: {first.weight}% of primary traffic"
            return State("Progressing", state.step, first.weight, now, why)
        if now - state.step_started >= ready_within:
            why = f"canary not ready within {ready_within:.0f} s"
            return dataclasses.replace(state, phase="Aborted", weight=0, reason=why)
        return dataclasses.replace(state, phase="Progressing", reason=WAITING)
    verdict, reasons = judge(observed, gates)
    if verdict == "Failed":
        return dataclasses.replace(state, phase="Aborted", weight=0, reason="; ".join(reasons))
    if verdict == "Inconclusive":
        return dataclasses.replace(
            state, phase="Paused", reason="no verdict: " + "; ".join(reasons)
        )
    pause = steps[state.step].pause
    if pause is None or now - state.step_started < pause:
        return dataclasses.replace(state, phase="Progressing", reason="healthy so far")
    if state.step + 1 >= len(steps):
        return dataclasses.replace(state, phase="Promoted", weight=0, reason="every step healthy")
    following = steps[state.step + 1]
    return State("Progressing", state.step + 1, following.weight, now, "previous step healthy")
