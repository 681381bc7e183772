"""The continuous analysis of one resource: gather the signals, judge, take one ladder step.

`Analyzer.tick()` runs every `spec.analysis.interval` from a per-resource kopf daemon, always
(not only during a rollout). Each tick: the Kubernetes signals of the primary and the fallback
(Deployments and pods from the API), the metric signals of the window (Prometheus when
`spec.analysis.prometheus.address` is set, else two scrapes of the router pods' `/metrics`),
`judge` per component, the consecutive-failure counts, then `decide`. Everything it keeps is
in the resource's status (`analysis`, `mode`, `lastRollback`, `servingRevision`) and in the
ControllerRevisions; the only thing in memory is the last window's scrapes of the router pods
(a new leader judges the metric half Inconclusive until it has a baseline).

A step is crash-safe: the Warning Event has a name derived from the rollback's number (a new
leader redoing the step gets a 409, not a second Event), the status is written with the
resourceVersion read (one writer wins), and the children follow from the status (the next
reconcile of any replica applies the new mode's children).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pizza_operator import metrics
from pizza_operator.api.v1alpha1 import (
    GROUP,
    KIND,
    AnalysisStatus,
    ComponentCheck,
    Condition,
    Mode,
    PizzaModelDeployment,
)
from pizza_operator.builders.naming import PORT, child_name, selector_labels
from pizza_operator.kube import Kube
from pizza_operator.reconcile import Reconciler, owner_of
from pizza_operator.rollback import (
    Check,
    Decision,
    KubeSignals,
    LadderState,
    MetricSignals,
    Revision,
    Thresholds,
    count_failures,
    decide,
    judge,
    may_return_to_primary,
    parse_duration,
)
from pizza_operator.rollback.kube_signals import format_time, kube_signals, parse_time
from pizza_operator.rollback.promql import QueryContext, router_window_from_prometheus
from pizza_operator.rollback.scrape import RouterWindow, Scrape, router_window, scrape_pods
from pizza_operator.rollback.verdicts import AnalysedComponent
from pizza_operator.status import merge_conditions

logger = logging.getLogger(__name__)

RETRY_ANNOTATION = f"{GROUP}/retry"
"""Set it to any new value to send a rolled-back resource back to the primary."""
REQUEST_ANNOTATION = f"{GROUP}/rollback"
"""`TO[:REVISION]@TOKEN`: an SRE asks for one step (kubectl pizza rollback); taken once."""
FAILPOINT_ENV = "PIZZA_OPERATOR_FAILPOINT"
"""Tests only: SIGKILL the operator at this point of a rollback step (rollback-decided,
rollback-announced, rollback-recorded), the way a node or OOM kill would."""
ANALYSED: tuple[AnalysedComponent, ...] = ("primary", "fallback")

Key = tuple[str, str]


@dataclass(frozen=True)
class Observation:
    """One tick's signals and checks."""

    checks: dict[AnalysedComponent, Check]
    window: RouterWindow
    source: str
    restarts: dict[str, Any]


def _failpoint(name: str) -> None:
    if os.environ.get(FAILPOINT_ENV) == name:
        logger.error("failpoint %s: the operator kills itself now", name)
        os.kill(os.getpid(), signal.SIGKILL)


def _seconds_since(text: str | None, now: datetime) -> float | None:
    return (now - parse_time(text)).total_seconds() if text else None


def _finite(values: Mapping[str, float | None]) -> dict[str, float]:
    return {k: round(float(v), 6) for k, v in values.items() if v is not None}


class Analyzer:
    """Runs the checks of every resource this operator leads; stateless but for scrapes."""

    def __init__(self, kube: Kube, reconciler: Reconciler) -> None:
        self.kube = kube
        self.reconciler = reconciler
        self.writer = reconciler.writer
        self.history = reconciler.history
        self._scrapes: dict[Key, list[tuple[float, dict[str, Scrape | None]]]] = {}

    def forget(self, namespace: str, name: str) -> None:
        self._scrapes.pop((namespace, name), None)

    # ---- one tick --------------------------------------------------------------------------

    def tick(self, namespace: str, name: str) -> float:
        """One check of one resource; returns the seconds until the next one."""
        body = self.kube.get(KIND, namespace, name)
        if body is None:
            return 10.0
        pmd = PizzaModelDeployment.from_body(body)
        interval = parse_duration(pmd.spec.analysis.interval)
        ready = next((c for c in pmd.status.conditions if c.type == "Ready"), None)
        if (
            pmd.metadata.deletion_timestamp
            or pmd.spec.paused  # paused freezes everything, the analysis included
            or pmd.status.current_revision is None  # not reconciled yet
            or (ready is not None and ready.reason == "InvalidSpec")
        ):
            return interval
        now = datetime.now(UTC)
        observation = self._observe(pmd, now, interval)
        self._act(pmd, observation, now)
        return interval

    # ---- signals -----------------------------------------------------------------------------

    def _observe(self, pmd: PizzaModelDeployment, now: datetime, interval: float) -> Observation:
        ns = pmd.metadata.namespace
        analysis = pmd.spec.analysis
        window_seconds = parse_duration(analysis.window)
        since = pmd.status.analysis.since if pmd.status.analysis else None
        age = _seconds_since(since, now)
        # a new mode is judged on what happened in it: the window starts at the mode change
        effective = window_seconds if age is None else max(interval, min(window_seconds, age))
        previous = pmd.status.analysis.restarts if pmd.status.analysis else {}
        ledger_in = {k: v.to_wire() for k, v in previous.items()}
        kube: dict[AnalysedComponent, KubeSignals | None] = {}
        ledger: dict[str, Any] = {}
        for component in ANALYSED:
            deployment = self.kube.get("Deployment", ns, child_name(pmd, component))
            if deployment is None:
                kube[component] = None
                continue
            pods = self.kube.list("Pod", ns, selector_labels(pmd, component))
            signals, part = kube_signals(
                deployment,
                pods,
                now=now,
                window_seconds=window_seconds,
                restarts=ledger_in,  # type: ignore[arg-type]
            )
            kube[component] = signals
            ledger.update(part)
        shaped = self.reconciler.serving_shape(pmd, pmd.status.mode or "primary")
        primary_model = shaped.spec.primary.model.name
        fallback_model = shaped.spec.fallback.model.name
        if (pmd.status.mode or "primary") == "emergency" and pmd.spec.rollback.emergency.model:
            fallback_model = pmd.spec.rollback.emergency.model.name
        if analysis.prometheus.address:
            source = "prometheus"
            context = QueryContext(
                router=f'namespace="{ns}",pod=~"{child_name(pmd, "router")}-.*"',
                window=f"{max(1, round(effective))}s",
                primary_model=primary_model,
                fallback_model=fallback_model,
            )
            window = asyncio.run(
                router_window_from_prometheus(
                    analysis.prometheus.address,
                    context,
                    overrides=analysis.prometheus.queries or None,
                )
            )
        else:
            source = "scrape"
            window = self._scrape_window(pmd, effective, primary_model, fallback_model)
        limits = Thresholds.from_spec(analysis)
        checks: dict[AnalysedComponent, Check] = {}
        for component in ANALYSED:
            seen = kube[component]
            if seen is None:
                checks[component] = Check(component, "Inconclusive", ("DeploymentMissing",))
            else:
                checks[component] = judge(component, seen, getattr(window, component), limits)
        return Observation(checks, window, source, ledger)

    def _scrape_window(
        self, pmd: PizzaModelDeployment, window: float, primary_model: str, fallback_model: str
    ) -> RouterWindow:
        """Scrape every router pod now; compare with the oldest scrape inside the window."""
        pods = self.kube.list("Pod", pmd.metadata.namespace, selector_labels(pmd, "router"))
        urls = {
            p["metadata"]["name"]: f"http://{p['status']['podIP']}:{PORT}/metrics"
            for p in pods
            if (p.get("status") or {}).get("podIP")
            and p["status"].get("phase") == "Running"
            and not p["metadata"].get("deletionTimestamp")
        }
        scrape = asyncio.run(scrape_pods(urls)) if urls else {}
        key = (pmd.metadata.namespace, pmd.metadata.name)
        now = time.time()
        kept = [(t, s) for t, s in self._scrapes.get(key, []) if t >= now - window - 1.0]
        baseline = kept[0][1] if kept else {}
        self._scrapes[key] = [*kept, (now, scrape)]
        return router_window(
            baseline, scrape, primary_model=primary_model, fallback_model=fallback_model
        )

    # ---- verdicts and steps ----------------------------------------------------------------

    def _act(self, pmd: PizzaModelDeployment, seen: Observation, now: datetime) -> None:
        ns, name = pmd.metadata.namespace, pmd.metadata.name
        stamp = format_time(now)
        mode: Mode = pmd.status.mode or "primary"
        limits = Thresholds.from_spec(pmd.spec.analysis)
        before = pmd.status.analysis or AnalysisStatus()
        thresholds = {
            "failureRate": limits.failure_rate,
            "latencyP95Seconds": limits.p95_latency_seconds,
            "minRequests": float(limits.min_requests),
            "maxRestarts": float(limits.max_restarts),
        }
        checks: dict[str, ComponentCheck] = {}
        for component in ANALYSED:
            check = seen.checks[component]
            last = getattr(before, component)
            failures = count_failures(last.consecutive_failures if last else 0, check.verdict)
            healthy_since = None
            if check.verdict != "Failed":
                healthy_since = last.healthy_since if last and last.healthy_since else None
                if healthy_since is None and check.verdict == "Healthy":
                    healthy_since = stamp
            checks[component] = ComponentCheck(
                time=stamp,
                verdict=check.verdict,
                reasons=list(check.reasons),
                values=_finite(check.values),
                thresholds=dict(thresholds),
                consecutive_failures=failures,
                healthy_since=healthy_since,
            )
            metrics.ANALYSIS_CHECKS.labels(component=component, verdict=check.verdict).inc()
            metrics.set_values(
                ns,
                name,
                component,
                {**check.values, "consecutiveFailures": float(failures)},
            )
            metrics.set_thresholds(ns, name, component, thresholds)
        inconclusive = sum(1 for c in seen.checks.values() if c.verdict == "Inconclusive")
        since = before.since
        if any("NotServingYet" in c.reasons for c in seen.checks.values()):
            since = stamp  # judge a new rollout's requests from when it serves, not its start
        analysis = AnalysisStatus(
            source=seen.source,
            checks=before.checks + 1,
            inconclusive=before.inconclusive + inconclusive,
            primary=checks["primary"],
            fallback=checks["fallback"],
            client_error_rate=seen.window.client.failure_rate,
            client_requests=seen.window.client.requests,
            fallback_reasons=seen.window.fallback_reasons,
            restarts=seen.restarts,  # type: ignore[arg-type]
            since=since,
        )
        self._mark_known_good(pmd, mode, checks["primary"], now)
        if self._manual(pmd, mode, analysis, seen, now):
            return
        if self._maybe_return(pmd, mode, analysis, now):
            return
        decision = self._decide(pmd, mode, checks)
        if decision is not None and not decision.suppressed and decision.step != "none":
            self._step(pmd=pmd, mode=mode, named=decision, analysis=analysis, seen=seen, now=now)
            return
        suppressed = decision if decision is not None and decision.suppressed else None
        self._write_analysis(pmd, analysis, seen.window.primary, mode, suppressed)

    def _mark_known_good(
        self, pmd: PizzaModelDeployment, mode: Mode, check: ComponentCheck, now: datetime
    ) -> None:
        """The current revision ran healthy for a whole window: it is known-good."""
        if mode != "primary" or check.verdict != "Healthy" or not pmd.status.current_revision:
            return
        healthy_for = _seconds_since(check.healthy_since, now)
        if healthy_for is not None and healthy_for >= parse_duration(pmd.spec.analysis.window):
            self.history.mark(pmd, pmd.status.current_revision, "Good")

    def _decide(
        self, pmd: PizzaModelDeployment, mode: Mode, checks: Mapping[str, ComponentCheck]
    ) -> Any:
        threshold = pmd.spec.analysis.failure_threshold
        primary, fallback = checks["primary"], checks["fallback"]
        if max(primary.consecutive_failures, fallback.consecutive_failures) < threshold:
            return None
        stored = self.history.revisions(pmd)
        current = next(
            (s.revision for s in stored if s.name == pmd.status.current_revision),
            Revision(0, "", "Pending"),
        )
        state = LadderState(
            mode=mode,
            primary_failures=primary.consecutive_failures,
            fallback_failures=fallback.consecutive_failures,
            failure_threshold=threshold,
            current=current,
            history=[s.revision for s in stored],
            automatic=pmd.spec.rollback.automatic,
            paused=pmd.spec.paused,
        )
        decision = decide(state)
        if decision.to_revision is not None:
            target = next(s.name for s in stored if s.revision.hash == decision.to_revision.hash)
            return _Named(decision, target)
        return _Named(decision, None)

    def _step(
        self,
        *,
        pmd: PizzaModelDeployment,
        mode: Mode,
        named: Any,
        analysis: AnalysisStatus,
        seen: Observation,
        now: datetime,
        request: str | None = None,
    ) -> None:
        ns, name = pmd.metadata.namespace, pmd.metadata.name
        decision = named.decision
        to: Mode = decision.step
        failing = seen.checks["fallback" if mode in ("stable", "emergency") else "primary"]
        last = pmd.status.last_rollback
        number = (last.number if last else 0) + 1
        message = (
            f"{mode} -> {to}: the {failing.component} failed "
            f"{pmd.spec.analysis.failure_threshold} checks in a row "
            f"({', '.join(failing.reasons) or 'no reason'}); "
            + ", ".join(f"{k}={v:g}" for k, v in _finite(failing.values).items())
        )
        if request is not None:
            message = f"{mode} -> {to}: asked for by {REQUEST_ANNOTATION}={request}"
        stamp = format_time(now)
        logger.warning("rollback decided namespace=%s name=%s %s", ns, name, message)
        _failpoint("rollback-decided")
        owner = owner_of(pmd)
        event_name = f"{name}.rollback-{pmd.metadata.uid[:8]}-{number}"
        self.kube.post_event(owner, "Warning", "RolledBack", message, name=event_name)
        _failpoint("rollback-announced")
        serving = named.revision if to == "previous" else pmd.status.current_revision
        reset = analysis.model_copy(
            update={
                "since": stamp,
                "primary": _reset(analysis.primary),
                "fallback": _reset(analysis.fallback),
            }
        )
        rollback = {
            "number": number,
            "from": mode,
            "to": to,
            "reason": decision.reason,
            "message": message,
            "values": _finite(failing.values),
            "time": stamp,
            "generation": pmd.metadata.generation,
            "retryToken": pmd.metadata.annotations.get(RETRY_ANNOTATION),
        }
        if to == "previous":
            rollback["revision"] = serving
        rolled_back = _condition("RolledBack", "True", decision.reason, message, pmd=pmd, now=stamp)

        def change(fresh: PizzaModelDeployment) -> dict[str, Any] | None:
            done = fresh.status.last_rollback
            if done is not None and done.number >= number:
                return None  # another writer recorded this step already
            extra = {"rollbackRequest": request} if request is not None else {}
            return {
                **extra,
                "mode": to,
                "lastRollback": {k: v for k, v in rollback.items() if v is not None},
                "servingRevision": serving,
                "analysis": reset.to_wire(),
                "errorRate": seen.window.primary.failure_rate,
                "conditions": _with(fresh, rolled_back, stamp),
            }

        written = self.writer.update(ns, name, change)
        metrics.ROLLBACKS.labels(namespace=ns, name=name, to=to, reason=decision.reason).inc()
        served = pmd.status.serving_revision or pmd.status.current_revision
        if mode in ("primary", "previous") and served:
            self.history.mark(pmd, served, "Failed")
        _failpoint("rollback-recorded")
        if written is not None:
            self.reconciler.reconcile(self._body(ns, name) or {}, force=True)

    def _manual(
        self,
        pmd: PizzaModelDeployment,
        mode: Mode,
        analysis: AnalysisStatus,
        seen: Observation,
        now: datetime,
    ) -> bool:
        """An SRE's `pizza.ai/rollback: TO[:REVISION]@TOKEN` (kubectl pizza rollback), once."""
        request = pmd.metadata.annotations.get(REQUEST_ANNOTATION)
        if not request or request == pmd.status.rollback_request:
            return False
        target = request.split("@", 1)[0]
        to, _, revision = target.partition(":")
        refusal = ""
        if to not in ("previous", "stable", "emergency"):
            refusal = f"unknown target {to!r}: previous, stable or emergency"
        elif to == "previous":
            stored = self.history.revisions(pmd)
            good = [
                s
                for s in stored
                if s.revision.outcome == "Good" and s.name != pmd.status.current_revision
            ]
            if revision:
                if not any(s.name == revision for s in stored):
                    refusal = f"no revision {revision!r}"
            elif good:
                revision = max(good, key=lambda s: s.revision.number).name
            else:
                refusal = "no known-good revision"
        if refusal:
            message = f"{REQUEST_ANNOTATION}={request} refused: {refusal}"
            logger.warning("%s namespace=%s", message, pmd.metadata.namespace)
            stamp = format_time(now)
            refused = _condition(
                "RolledBack", "False", "RequestRefused", message, pmd=pmd, now=stamp
            )
            self.writer.update(
                pmd.metadata.namespace,
                pmd.metadata.name,
                lambda fresh: {
                    "rollbackRequest": request,
                    "conditions": _with(fresh, refused, stamp),
                },
            )
            self.kube.post_event(owner_of(pmd), "Warning", "RollbackRefused", message)
            return True
        decision = Decision(to, "Requested")  # type: ignore[arg-type]
        self._step(
            pmd=pmd,
            mode=mode,
            named=_Named(decision, revision or None),
            analysis=analysis,
            seen=seen,
            now=now,
            request=request,
        )
        return True

    def _maybe_return(
        self, pmd: PizzaModelDeployment, mode: Mode, analysis: AnalysisStatus, now: datetime
    ) -> bool:
        """Back to the primary on a new generation, an SRE's retry, or (opt-in) a cool-down."""
        last = pmd.status.last_rollback
        if mode == "primary" or last is None:
            return False
        retry = pmd.metadata.annotations.get(RETRY_ANNOTATION)
        reason = ""
        if pmd.metadata.generation > last.generation:
            reason = "NewGeneration"
        elif may_return_to_primary(mode, pmd.metadata.generation, None, retry, last.retry_token):
            reason = "Retry"
        elif pmd.spec.rollback.auto_recover.enabled:
            waited = _seconds_since(last.time, now) or 0.0
            if waited >= parse_duration(pmd.spec.rollback.auto_recover.cooldown):
                reason = "AutoRecover"
        if not reason:
            return False
        ns, name = pmd.metadata.namespace, pmd.metadata.name
        stamp = format_time(now)
        message = f"{mode} -> primary ({reason})"
        back = _condition("RolledBack", "False", reason, message, pmd=pmd, now=stamp)
        reset = analysis.model_copy(
            update={
                "since": stamp,
                "primary": _reset(analysis.primary),
                "fallback": _reset(analysis.fallback),
            }
        )
        token = retry if reason == "Retry" else last.retry_token

        def change(fresh: PizzaModelDeployment) -> dict[str, Any] | None:
            if (fresh.status.mode or "primary") == "primary":
                return None
            patch: dict[str, Any] = {
                "mode": "primary",
                "servingRevision": fresh.status.current_revision,
                "analysis": reset.to_wire(),
                "conditions": _with(fresh, back, stamp),
            }
            if token != last.retry_token:
                patch["lastRollback"] = {"retryToken": token}
            return patch

        logger.info("returning to primary namespace=%s name=%s reason=%s", ns, name, reason)
        if self.writer.update(ns, name, change) is not None:
            self.kube.post_event(owner_of(pmd), "Normal", "ReturnedToPrimary", message)
            self.reconciler.reconcile(self._body(ns, name) or {}, force=True)
        return True

    def _write_analysis(
        self,
        pmd: PizzaModelDeployment,
        analysis: AnalysisStatus,
        primary: MetricSignals,
        mode: Mode,
        suppressed: Any,
    ) -> None:
        stamp = analysis.primary.time if analysis.primary else ""
        condition = None
        if suppressed is not None:
            decision = suppressed.decision
            condition = _condition(
                "RolledBack",
                "False",
                "RollbackSuppressed",
                f"rollback.automatic is false: would go {mode} -> {decision.step} "
                f"({decision.reason if decision.reason != 'RollbackSuppressed' else ''})".rstrip(
                    " ()"
                ),
                pmd=pmd,
                now=stamp,
            )
        posted: list[bool] = []

        def change(fresh: PizzaModelDeployment) -> dict[str, Any]:
            patch: dict[str, Any] = {
                "analysis": analysis.to_wire(),
                "errorRate": primary.failure_rate,
            }
            if condition is not None:
                old = next((c for c in fresh.status.conditions if c.type == "RolledBack"), None)
                if old is None or old.reason != condition.reason:
                    posted.append(True)
                patch["conditions"] = _with(fresh, condition, stamp)
            return patch

        self.writer.update(pmd.metadata.namespace, pmd.metadata.name, change)
        if posted and condition is not None:
            self.kube.post_event(owner_of(pmd), "Warning", "RollbackSuppressed", condition.message)

    def _body(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.kube.get(KIND, namespace, name)


@dataclass(frozen=True)
class _Named:
    decision: Any
    revision: str | None

    @property
    def suppressed(self) -> bool:
        return bool(self.decision.suppressed)

    @property
    def step(self) -> str:
        return str(self.decision.step)


def _reset(check: ComponentCheck | None) -> ComponentCheck | None:
    if check is None:
        return None
    return check.model_copy(update={"consecutive_failures": 0, "healthy_since": None})


def _condition(
    type_: str, status: str, reason: str, message: str, *, pmd: PizzaModelDeployment, now: str
) -> Condition:
    return Condition.model_validate(
        {
            "type": type_,
            "status": status,
            "reason": reason,
            "message": message[:1024],
            "lastTransitionTime": now,
            "observedGeneration": pmd.metadata.generation,
        }
    )


def _with(fresh: PizzaModelDeployment, condition: Condition, now: str) -> list[dict[str, Any]]:
    merged = merge_conditions(fresh.status.conditions, [condition], now)
    return [c.to_wire() for c in merged]
