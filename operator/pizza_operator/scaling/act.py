"""One autoscaling look at one resource (I/O): read it, scrape its routers, decide, write.

The routers are scraped every `EVERY` seconds (every `ASLEEP_EVERY` while the primary sleeps,
so that the first request meant for it wakes it within about a second); a decision that changes
a count, or the primary's sleep, is written to `status.autoscaling` and the caller reconciles,
which gives the Deployments their counts and the routers their routing table."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import UTC, datetime
from typing import Any

from pizza_operator.analysis.scrape import metrics_urls, scrape_pods
from pizza_operator.analysis.window import Scrape
from pizza_operator.api.v1alpha1 import KIND, PizzaModelDeployment
from pizza_operator.builders.naming import selector_labels
from pizza_operator.kube import Kube
from pizza_operator.scaling import signals
from pizza_operator.scaling.decide import Load, Recent, decide
from pizza_operator.scaling.plan import idle_since, next_status, targets

logger = logging.getLogger(__name__)
EVERY = 2.0
ASLEEP_EVERY = 1.0
SCRAPE_TIMEOUT = 1.0
Key = tuple[str, str]


@dataclasses.dataclass(frozen=True)
class Looked:
    delay: float | None  # None: nothing to scale (no autoscaling, or the resource is gone)
    changed: bool  # a count or the primary's sleep changed: reconcile now


@dataclasses.dataclass
class ScalingMemory:
    """The last scrape of each router pod, each component's recent counts (the window) and when
    a request meant for the primary was last seen (epoch seconds)."""

    scrapes: dict[Key, dict[str, Scrape | None]] = dataclasses.field(default_factory=dict)
    recent: dict[tuple[Key, str], Recent] = dataclasses.field(default_factory=dict)
    demand_seen: dict[Key, float] = dataclasses.field(default_factory=dict)

    def demand(self, key: Key, count: float, now: float) -> float | None:
        """When a request meant for the primary was last seen, `count` of them seen `now`."""
        if count > 0:
            self.demand_seen[key] = now
        return self.demand_seen.get(key)

    def forget(self, key: Key) -> None:
        self.scrapes.pop(key, None)
        self.demand_seen.pop(key, None)
        for found in [k for k in self.recent if k[0] == key]:
            del self.recent[found]


async def look(kube: Kube, memory: ScalingMemory, namespace: str, name: str) -> Looked:
    body = await asyncio.to_thread(kube.get, KIND, namespace, name)
    if body is None:
        return Looked(None, changed=False)
    pmd = PizzaModelDeployment.from_body(body)
    found = targets(pmd)
    if not found:
        return Looked(None, changed=False)
    if pmd.spec.paused or pmd.metadata.deletion_timestamp:
        return Looked(EVERY, changed=False)
    key = (namespace, name)
    now_scrapes = await _scrape_routers(kube, pmd)
    before = memory.scrapes.get(key, {})
    memory.scrapes[key] = {pod: s for pod, s in now_scrapes.items() if s is not None}
    primary_pods: list[dict[str, Any]] = []
    if any(t.component == "primary" for t in found):
        selector = selector_labels(pmd, "primary")
        primary_pods = await asyncio.to_thread(kube.list, "Pod", namespace, selector)
    now = datetime.now(UTC)
    patch: dict[str, Any] = {}
    changed, asleep = False, False
    for target in found:
        is_primary = target.component == "primary"
        demanded = signals.demand(before, now_scrapes) if is_primary else 0.0
        seen = memory.demand(key, demanded, now.timestamp())
        load = Load(
            in_flight=signals.in_flight(now_scrapes, target.component),
            demand=demanded,
            unschedulable=signals.unschedulable(primary_pods) if is_primary else 0,
            ready_for=signals.ready_for(primary_pods, now.timestamp()) if is_primary else None,
        )
        decision, memory.recent[(key, target.component)] = decide(
            now.timestamp(),
            target.current,
            load,
            target.bounds,
            memory.recent.get((key, target.component), ()),
            last_demand=idle_since(target.previous, seen, now),
            asleep=bool(target.previous and target.previous.asleep),
        )
        entry, write = next_status(target, decision, load.in_flight, demanded > 0, now)
        asleep = asleep or decision.asleep
        if write:
            patch[target.component] = entry.to_wire()
            changed = (
                changed
                or decision.wanted != target.current
                or (target.previous is None or decision.asleep != target.previous.asleep)
            )
            logger.info(
                "autoscaling namespace=%s name=%s component=%s wanted=%d reason=%s",
                namespace,
                name,
                target.component,
                decision.wanted,
                decision.reason,
            )
    if patch:
        await asyncio.to_thread(kube.patch_status, namespace, name, {"autoscaling": patch})
    return Looked(ASLEEP_EVERY if asleep else EVERY, changed=changed)


async def _scrape_routers(kube: Kube, pmd: PizzaModelDeployment) -> dict[str, Scrape | None]:
    ns = pmd.metadata.namespace
    pods = await asyncio.to_thread(kube.list, "Pod", ns, selector_labels(pmd, "router"))
    urls = metrics_urls(pods)
    return await scrape_pods(urls, timeout_seconds=SCRAPE_TIMEOUT) if urls else {}
