"""One look at a running rollout (I/O): read, scrape the routers, judge the step, write.

Every `spec.rollout.every` while a canary runs: the routers' counters since the step began
(`observe`), the canary's readiness, the SRE's promote or abort annotation, then the state
machine (`steps.advance`). A look that changes the phase, the step or the weight writes
`status.rollout`, posts the transition's Event (once, by name) and asks for a reconcile, which
gives the routing table its new weight, removes an aborted canary or rolls the primary to a
promoted revision. A promoted canary answers at weight 100 until the primary Deployment runs the
revision (`handedOver`), then goes.

The step's baseline (each router's counters when the step began, or when this operator first
looked at it) lives in memory: an operator that restarts judges the step on what came since.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import UTC, datetime
from typing import Any

from pizza_operator import metrics
from pizza_operator.analysis.scrape import metrics_urls, scrape_pods
from pizza_operator.analysis.window import Scrape
from pizza_operator.api.v1alpha1 import KIND, PizzaModelDeployment, RolloutStatus
from pizza_operator.builders.canary import CANARY, canary_name
from pizza_operator.builders.modes import desired_replicas
from pizza_operator.builders.naming import child_name, owner_of, selector_labels
from pizza_operator.contract import (
    ABORT_ANNOTATION,
    COMPONENT_LABEL,
    PROMOTE_ANNOTATION,
    format_time,
    parse_time,
)
from pizza_operator.history import History, revision_hash, revision_name, shaping_spec
from pizza_operator.kube import Kube
from pizza_operator.rollback.durations import parse_duration
from pizza_operator.rollout import record
from pizza_operator.rollout.capacity import place
from pizza_operator.rollout.observe import observe
from pizza_operator.rollout.shape import LIVE, in_flight, state_of, steps_of
from pizza_operator.rollout.steps import Gates, Observed, Request, advance
from pizza_operator.scaling.signals import unschedulable

logger = logging.getLogger(__name__)
SCRAPE_TIMEOUT = 2.0
Key = tuple[str, str]


@dataclasses.dataclass(frozen=True)
class Looked:
    delay: float | None  # None: no rollout to watch
    changed: bool  # the weight, the phase or the hand-over changed: reconcile now


@dataclasses.dataclass
class RolloutMemory:
    """Each running step's baseline: the routers' counters when it began."""

    baselines: dict[tuple[Key, str, str], dict[str, Scrape | None]] = dataclasses.field(
        default_factory=dict
    )

    def forget(self, key: Key) -> None:
        for found in [k for k in self.baselines if k[0] == key]:
            del self.baselines[found]


def spec_revision(pmd: PizzaModelDeployment) -> str:
    return revision_name(pmd, revision_hash(shaping_spec(pmd)))


def watched(pmd: PizzaModelDeployment) -> RolloutStatus | None:
    """The rollout to look at: the spec's, running or promoted and not handed over yet."""
    rollout = pmd.status.rollout
    if rollout is None or rollout.revision != spec_revision(pmd):
        return None
    return rollout if in_flight(rollout.phase, rollout.handed_over) else None


def gates(pmd: PizzaModelDeployment) -> Gates:
    g = pmd.spec.rollout.gates
    return Gates(
        g.max_failure_rate, g.max_p95_ratio, g.min_agreement, g.min_requests, g.p95_slack_seconds
    )


def asked(pmd: PizzaModelDeployment, rollout: RolloutStatus) -> tuple[Request | None, str | None]:
    """An SRE's new promote or abort (abort wins), and the tokens handled once it is taken."""
    notes, handled = pmd.metadata.annotations, handled_tokens(rollout.request)
    for annotation, request in ((ABORT_ANNOTATION, "abort"), (PROMOTE_ANNOTATION, "promote")):
        token = notes.get(annotation)
        if token and token not in handled:
            return request, ",".join([*handled[-3:], token])  # type: ignore[return-value]
    return None, None


def handled_tokens(request: str | None) -> list[str]:
    return [t for t in (request or "").split(",") if t]


async def look(kube: Kube, history: History, memory: RolloutMemory, ns: str, name: str) -> Looked:
    body = await asyncio.to_thread(kube.get, KIND, ns, name)
    if body is None:
        return Looked(None, changed=False)
    pmd = PizzaModelDeployment.from_body(body)
    rollout = watched(pmd)
    if rollout is None:
        return Looked(None, changed=False)
    every = parse_duration(pmd.spec.rollout.every)
    if pmd.spec.paused or pmd.metadata.deletion_timestamp:
        return Looked(every, changed=False)
    if rollout.phase == "Promoted":
        return await _hand_over(kube, pmd, rollout, every)
    now = datetime.now(UTC)
    request, token = asked(pmd, rollout)
    started = parse_time(rollout.step_started_at).timestamp()
    observed = None
    if (pmd.status.mode or "primary") != "primary":
        after = dataclasses.replace(
            state_of(rollout, started),
            phase="Aborted",
            weight=0,
            reason=f"the stable primary was rolled back (mode {pmd.status.mode})",
        )
    else:
        rollout, observed = await _observe(kube, memory, pmd, rollout)
        after = advance(
            state_of(rollout, started),
            steps_of(pmd),
            observed,
            gates(pmd),
            now.timestamp(),
            request=request,
            ready_within=parse_duration(pmd.spec.rollout.ready_within),
        )
    new = record.next_status(
        rollout, after, observed, format_time(now), request=token, started=started
    )
    await _write(kube, history, pmd, rollout, new)
    if new.phase not in LIVE:
        memory.forget((ns, name))
    before = pmd.status.rollout
    changed = before is None or (new.phase, new.canary_weight, new.plan) != (
        before.phase,
        before.canary_weight,
        before.plan,
    )
    return Looked(every, changed=changed)


async def _observe(
    kube: Kube, memory: RolloutMemory, pmd: PizzaModelDeployment, rollout: RolloutStatus
) -> tuple[RolloutStatus, Observed]:
    """The step so far (from its baseline, taken at the first look at it), and the plan."""
    ns = pmd.metadata.namespace
    canary, pods, scrapes = await asyncio.gather(
        asyncio.to_thread(kube.get, "Deployment", ns, canary_name(pmd)),
        asyncio.to_thread(kube.list, "Pod", ns, _canary_selector(pmd)),
        _scrape_routers(kube, pmd),
    )
    step = ((ns, pmd.metadata.name), rollout.revision, rollout.step_started_at)
    base = memory.baselines.setdefault(step, scrapes)
    ready = bool(canary and (canary.get("status") or {}).get("readyReplicas"))
    return _plan(pmd, rollout, pods), observe(base, scrapes, canary_ready=ready)


async def _write(
    kube: Kube,
    history: History,
    pmd: PizzaModelDeployment,
    before: RolloutStatus,
    new: RolloutStatus,
) -> None:
    """The transition's Event (once, by name), the aborted revision marked Failed, the status."""
    ns, name = pmd.metadata.namespace, pmd.metadata.name
    moved = record.transition(before, new)
    if moved is not None:
        event = record.event_name(name, new, moved)
        await asyncio.to_thread(
            kube.post_event, owner_of(pmd), moved.type, moved.reason, moved.message, event
        )
        logger.info("rollout namespace=%s name=%s %s", ns, name, moved.message)
    if new.phase == "Aborted":
        await asyncio.to_thread(history.mark, pmd, new.revision, "Failed")
    if new != pmd.status.rollout:
        await asyncio.to_thread(kube.patch_status, ns, name, record.patch(new))
    metrics.set_rollout(
        ns, name, new.phase, new.canary_weight, aborted=moved is not None and moved.key == "aborted"
    )


def _plan(
    pmd: PizzaModelDeployment, rollout: RolloutStatus, pods: list[dict[str, Any]]
) -> RolloutStatus:
    """Surge until the canary's pod cannot be scheduled (no GPU free); then Borrow, when the
    stable primary has a pod to lend."""
    if rollout.plan == "Borrow" or not unschedulable(pods):  # type: ignore[arg-type]
        return rollout
    wanted = desired_replicas(pmd, pmd.status.mode or "primary", "primary")  # autoscaled: now
    stable = pmd.spec.primary.replicas if wanted is None else wanted
    placed = place(stable, pmd.spec.primary.gpu, gpus_free=0)
    why = f"the canary's pod cannot be scheduled: {placed.why}"
    return rollout.model_copy(update={"plan": placed.plan, "plan_reason": why})


async def _hand_over(
    kube: Kube, pmd: PizzaModelDeployment, rollout: RolloutStatus, every: float
) -> Looked:
    """A promoted canary goes once the primary Deployment runs the revision, all pods ready."""
    ns, name = pmd.metadata.namespace, pmd.metadata.name
    live, canary = await asyncio.gather(
        asyncio.to_thread(kube.get, "Deployment", ns, child_name(pmd, "primary")),
        asyncio.to_thread(kube.get, "Deployment", ns, canary_name(pmd)),
    )
    if live is None or not _rolled_out(live) or not _same_pods(live, canary):
        return Looked(every, changed=False)
    done = rollout.model_copy(update={"handed_over": True, "canary_weight": 0})
    await asyncio.to_thread(kube.patch_status, ns, name, record.patch(done))
    metrics.set_rollout(ns, name, done.phase, 0, aborted=False)
    logger.info("rollout namespace=%s name=%s handed over to the primary", ns, name)
    return Looked(None, changed=True)


def _rolled_out(deployment: dict[str, Any]) -> bool:
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    wanted = spec.get("replicas", 1)
    return bool(
        status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
        and status.get("updatedReplicas", 0) >= wanted
        and status.get("readyReplicas", 0) >= wanted
        and status.get("replicas", 0) == wanted
    )


def _same_pods(primary: dict[str, Any], canary: dict[str, Any] | None) -> bool:
    """The primary Deployment's pods run what the canary's ran (image, arguments, environment,
    resources); no canary left: nothing to compare."""
    if canary is None:
        return True

    def pods(deployment: dict[str, Any]) -> list[tuple[Any, ...]]:
        containers = deployment["spec"]["template"]["spec"].get("containers") or []
        return [
            (c.get("image"), c.get("args"), c.get("env"), c.get("resources")) for c in containers
        ]

    return pods(primary) == pods(canary)


def _canary_selector(pmd: PizzaModelDeployment) -> dict[str, str]:
    return {**selector_labels(pmd, "primary"), COMPONENT_LABEL: CANARY}


async def _scrape_routers(kube: Kube, pmd: PizzaModelDeployment) -> dict[str, Scrape | None]:
    ns = pmd.metadata.namespace
    pods = await asyncio.to_thread(kube.list, "Pod", ns, selector_labels(pmd, "router"))
    urls = metrics_urls(pods)
    return await scrape_pods(urls, timeout_seconds=SCRAPE_TIMEOUT) if urls else {}
