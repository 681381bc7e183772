"""Gathering one tick's signals: the only I/O of the analysis, async in the operator's loop.

The Kubernetes signals of the primary and the fallback (their Deployments and pods, read through
the API door in a worker thread: the client is synchronous), and the metric signals of the
window: Prometheus when `spec.analysis.prometheus.address` is set, else a scrape of every router
pod's `/metrics` compared with the scrape of about one window ago (`ScrapeMemory`, the one thing
the analysis keeps in memory: a new leader judges the metric half Inconclusive until it has a
baseline). Each component is then judged (`rollback.judge`, pure).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

from pizza_operator.analysis.kube_signals import ContainerRestarts, RestartLedger, kube_signals
from pizza_operator.analysis.promql import (
    QueryContext,
    router_selector,
    router_window_from_prometheus,
)
from pizza_operator.analysis.record import ANALYSED, Observation
from pizza_operator.analysis.scrape import metrics_urls, scrape_pods
from pizza_operator.analysis.window import RouterWindow, Scrape, router_window
from pizza_operator.api.v1alpha1 import Mode, PizzaModelDeployment
from pizza_operator.builders.naming import child_name, selector_labels
from pizza_operator.contract import COMPONENT_LABEL, parse_time
from pizza_operator.history import History, serving_shape
from pizza_operator.kube import Kube
from pizza_operator.rollback import Check, KubeSignals, Thresholds, judge, parse_duration
from pizza_operator.rollback.plan import mode_of
from pizza_operator.rollback.verdicts import AnalysedComponent
from pizza_operator.scaling.plan import primary_by_design

Key = tuple[str, str]


class ScrapeMemory:
    """The router pods' scrapes of the last window, per resource (a baseline for rates)."""

    def __init__(self) -> None:
        self._scrapes: dict[Key, list[tuple[float, dict[str, Scrape | None]]]] = {}

    def baseline(
        self, key: Key, scrape: dict[str, Scrape | None], window: float
    ) -> dict[str, Scrape | None]:
        """The oldest scrape inside the window (empty: none yet); `scrape` is kept as newest."""
        now = time.time()
        kept = [(t, s) for t, s in self._scrapes.get(key, []) if t >= now - window - 1.0]
        self._scrapes[key] = [*kept, (now, scrape)]
        return kept[0][1] if kept else {}

    def forget(self, key: Key) -> None:
        self._scrapes.pop(key, None)


def effective_window(pmd: PizzaModelDeployment, now: datetime, interval: float) -> float:
    """The metric window: `spec.analysis.window`, but never before the last mode change (a new
    mode is judged on what happened in it), and at least one interval."""
    window = parse_duration(pmd.spec.analysis.window)
    since = pmd.status.analysis.since if pmd.status.analysis else None
    if since is None:
        return window
    age = (now - parse_time(since)).total_seconds()
    return max(interval, min(window, age))


async def gather(
    kube: Kube,
    history: History,
    memory: ScrapeMemory,
    pmd: PizzaModelDeployment,
    *,
    now: datetime,
    interval: float,
) -> Observation:
    """This tick's checks of the primary and the fallback."""
    window_seconds = parse_duration(pmd.spec.analysis.window)
    previous = pmd.status.analysis.restarts if pmd.status.analysis else {}
    ledger_in: dict[str, ContainerRestarts] = {
        k: {"count": v.count, "times": list(v.times)} for k, v in previous.items()
    }
    kube_seen: dict[AnalysedComponent, KubeSignals | None] = {}
    ledger: RestartLedger = {}
    pods, *deployments = await asyncio.gather(
        asyncio.to_thread(kube.list, "Pod", pmd.metadata.namespace, instance_selector(pmd)),
        *(_deployment(kube, pmd, component) for component in ANALYSED),
    )
    for component, deployment in zip(ANALYSED, deployments, strict=True):
        if deployment is None:
            kube_seen[component] = None
            continue
        signals, part = kube_signals(
            deployment,
            pods_of(pods, selector_labels(pmd, component)),
            now=now,
            window_seconds=window_seconds,
            restarts=ledger_in,
        )
        kube_seen[component] = signals
        ledger.update(part)
    source, window = await _metric_window(
        history, memory, pmd, effective_window(pmd, now, interval), pods
    )
    limits = Thresholds.from_spec(pmd.spec.analysis)
    checks: dict[AnalysedComponent, Check] = {}
    by_design = primary_by_design(pmd, now)
    for component in ANALYSED:
        seen = kube_seen[component]
        if component == "primary" and by_design is not None:  # not a failure: no verdict
            checks[component] = Check(component, "Inconclusive", (by_design,))
        elif seen is None:
            checks[component] = Check(component, "Inconclusive", ("DeploymentMissing",))
        else:
            checks[component] = judge(component, seen, getattr(window, component), limits)
    return Observation(checks, window, source, ledger)


def instance_selector(pmd: PizzaModelDeployment) -> dict[str, str]:
    """The labels every pod of the resource carries (each component's selector narrows it)."""
    selector = selector_labels(pmd, "router")
    del selector[COMPONENT_LABEL]
    return selector


def pods_of(pods: list[dict[str, Any]], selector: dict[str, str]) -> list[dict[str, Any]]:
    """The pods whose labels match `selector` (what the API server's label selector does)."""
    return [
        p
        for p in pods
        if all(
            ((p.get("metadata") or {}).get("labels") or {}).get(k) == v for k, v in selector.items()
        )
    ]


async def _deployment(
    kube: Kube, pmd: PizzaModelDeployment, component: AnalysedComponent
) -> dict[str, Any] | None:
    ns = pmd.metadata.namespace
    return await asyncio.to_thread(kube.get, "Deployment", ns, child_name(pmd, component))


async def _metric_window(
    history: History,
    memory: ScrapeMemory,
    pmd: PizzaModelDeployment,
    window: float,
    pods: list[dict[str, Any]],
) -> tuple[str, RouterWindow]:
    mode: Mode = mode_of(pmd)
    shaped = await asyncio.to_thread(serving_shape, history, pmd, mode)
    primary_model = shaped.spec.primary.model.name
    fallback_model = shaped.spec.fallback.model.name
    if mode == "emergency" and pmd.spec.rollback.emergency.model:
        fallback_model = pmd.spec.rollback.emergency.model.name
    prometheus = pmd.spec.analysis.prometheus
    if prometheus.address:
        context = QueryContext(
            router=router_selector(pmd.metadata.namespace, child_name(pmd, "router")),
            window=f"{max(1, round(window))}s",
            primary_model=primary_model,
            fallback_model=fallback_model,
        )
        found = await router_window_from_prometheus(
            prometheus.address, context, overrides=prometheus.queries or None
        )
        return "prometheus", found
    routers = pods_of(pods, selector_labels(pmd, "router"))
    return "scrape", await _scrape_window(
        memory, pmd, window, routers, models=(primary_model, fallback_model)
    )


async def _scrape_window(
    memory: ScrapeMemory,
    pmd: PizzaModelDeployment,
    window: float,
    pods: list[dict[str, Any]],
    *,
    models: tuple[str, str],
) -> RouterWindow:
    """Scrape every router pod now; compare with the oldest scrape inside the window."""
    ns = pmd.metadata.namespace
    urls = metrics_urls(pods)
    scrape = await scrape_pods(urls) if urls else {}
    baseline = memory.baseline((ns, pmd.metadata.name), scrape, window)
    primary_model, fallback_model = models
    return router_window(
        baseline, scrape, primary_model=primary_model, fallback_model=fallback_model
    )
