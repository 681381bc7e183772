"""`Reconciler`: one lock per resource around the one reconcile, and the status refresh.

Gather (the live children), judge (`needs_apply`, `status`), write (`ChildApplier`,
`StatusReporter`): the pieces live in the modules beside this one; here they are put in order.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import kopf

from pizza_operator import children as kids
from pizza_operator import metrics
from pizza_operator.api.v1alpha1 import KIND, Mode, PizzaModelDeployment
from pizza_operator.builders import build_children, resolve_images
from pizza_operator.builders.canary import canary_name
from pizza_operator.builders.modes import desired_replicas
from pizza_operator.builders.naming import COMPONENTS, owner_of
from pizza_operator.conditions import find_condition
from pizza_operator.config import OperatorConfig
from pizza_operator.contract import BLOCKED_REASONS
from pizza_operator.history import History
from pizza_operator.kube import Kube, KubeError
from pizza_operator.reconcile.apply import Applied, ChildApplier, ChildKey, Step, plan
from pizza_operator.reconcile.canary import Rollouts, Shaped
from pizza_operator.reconcile.readiness import Readiness
from pizza_operator.reconcile.report import ReconcileResult, StatusReporter
from pizza_operator.refresher import Coalescer
from pizza_operator.status import Blocked
from pizza_operator.status_writer import StatusWriter
from pizza_operator.validation import find_problems

logger = logging.getLogger(__name__)


class Reconciler:
    """Holds the API door, one lock per resource and the status coalescer; no child state."""

    def __init__(self, kube: Kube, config: OperatorConfig) -> None:
        self.kube = kube
        self.config = config
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._refresher = Coalescer(self.refresh_status, delay=config.status_coalesce_seconds)
        self.writer = StatusWriter(kube)
        self.history = History(kube, self.writer)
        self.rollouts = Rollouts(kube, self.history, self.writer)
        self.children = ChildApplier(kube)
        self.reporter = StatusReporter(kube, self.writer)
        self.readiness = Readiness(
            self.children, self._refresher.request, config.endpoints_settle_seconds
        )

    @contextmanager
    def _lock(self, namespace: str, name: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault((namespace, name), threading.Lock())
        with lock:
            yield

    # ---- the one reconcile -------------------------------------------------------------------

    def reconcile(self, body: Mapping[str, Any], *, force: bool = False) -> ReconcileResult:
        """Converge the children and the status of one resource to its spec.

        A child is applied when it is missing, when its desired-hash annotation differs from the
        hash of the child we build now, or when its managedFields show that our apply lost a
        field we set (a hand edit); owned children no longer desired are deleted. `force`
        applies every child. Nothing is applied when the spec is invalid or a child's name is
        held by an object the resource does not control (the whole set is checked first). Only
        writes the API server accepted count in `pizza_operator_child_writes_total`."""
        pmd = PizzaModelDeployment.from_body(body)
        if pmd.metadata.deletion_timestamp:
            return ReconcileResult()
        started = time.monotonic()
        result = "ok"
        try:
            with self._lock(pmd.metadata.namespace, pmd.metadata.name):
                outcome = self._converge(pmd, force)
            if outcome.blocked is not None:
                result = "invalid" if outcome.blocked == "InvalidSpec" else "conflict"
                metrics.ERRORS.labels(reason=outcome.blocked).inc()
            return outcome
        except KubeError as exc:
            if exc.gone:
                result = "gone"
                return ReconcileResult()  # the resource or its namespace is going away
            result = "error"
            metrics.ERRORS.labels(reason="ApiError").inc()
            message = (
                f"API error {exc.status} reconciling {pmd.metadata.namespace}/"
                f"{pmd.metadata.name}: {exc.message}"
            )
            logger.warning("%s", message)
            return ReconcileResult(retry=True, message=message)
        finally:
            metrics.RECONCILES.labels(kind="full", result=result).inc()
            metrics.RECONCILE_DURATION.labels(kind="full").observe(time.monotonic() - started)

    def _converge(self, pmd: PizzaModelDeployment, force: bool) -> ReconcileResult:
        mode: Mode = pmd.status.mode or "primary"
        new_generation = pmd.status.observed_generation != pmd.metadata.generation
        problems = find_problems(pmd, self.config)
        blocked = Blocked("InvalidSpec", tuple(problems)) if problems else None
        rollout = self.rollouts.shape(pmd, mode, new_generation and not problems, self.config)
        children = _children(pmd, rollout, mode, self.config)
        live: dict[ChildKey, Any] = {}
        steps: list[Step] = []
        if blocked is None:
            live = self.children.live(pmd)
            steps = plan(children, live, force)
            dry_run = _needs_dry_run(pmd, new_generation)
            blocked = self.children.check(steps, pmd.metadata.uid, dry_run=dry_run)
        if blocked is not None:
            logger.warning(
                "nothing applied namespace=%s name=%s reason=%s problems=%r",
                pmd.metadata.namespace,
                pmd.metadata.name,
                blocked.reason,
                blocked.problems,
            )
            return self.reporter.report(pmd, mode, None, blocked=blocked)

        done = self._apply(pmd, steps, children, live)
        revision = rollout.revision or pmd.status.current_revision
        if rollout.revision is None and (revision is None or new_generation):
            revision = self.history.record(pmd).name
        observed, settling = self.readiness.observe(pmd, done.deployments)
        outcome = self.reporter.report(
            pmd,
            mode,
            observed,
            revision=revision,
            created=[c for c in done.created if not c.endswith("/" + canary_name(pmd))],
            total=len(children) - len(canary_children(children, pmd)),
            settling=settling,
        )
        self.readiness.follow((pmd.metadata.namespace, pmd.metadata.name), outcome)
        logger.info(
            "reconciled namespace=%s name=%s generation=%s mode=%s ready=%s applied=%d created=%d",
            pmd.metadata.namespace,
            pmd.metadata.name,
            pmd.metadata.generation,
            mode,
            outcome.ready,
            done.applied,
            len(done.created),
        )
        metrics.set_mode(pmd.metadata.namespace, pmd.metadata.name, mode)
        wanted: dict[str, int | None] = {c: desired_replicas(pmd, mode, c) for c in COMPONENTS}
        metrics.set_wanted(pmd.metadata.namespace, pmd.metadata.name, wanted)
        return outcome

    def _apply(
        self,
        pmd: PizzaModelDeployment,
        steps: list[Step],
        children: list[dict[str, Any]],
        live: Mapping[ChildKey, Any],
    ) -> Applied:
        """Apply what differs and prune what is no longer wanted; paused: only look."""
        if pmd.spec.paused:
            return Applied(deployments=[o for k, o in live.items() if k[0] == "Deployment"])
        done = self.children.apply_changed(steps)
        self.children.prune(children, live)
        return done

    # ---- status only -------------------------------------------------------------------------

    def refresh_status(self, namespace: str, name: str) -> None:
        """Status only, from the live Deployments (a child's status changed, nothing else)."""
        started = time.monotonic()
        result = "ok"
        try:
            with self._lock(namespace, name):
                self._refresh(namespace, name)
        except KubeError as exc:
            if exc.gone:
                result = "gone"
                return
            result = "error"
            metrics.ERRORS.labels(reason="ApiError").inc()
            raise
        finally:
            metrics.RECONCILES.labels(kind="status", result=result).inc()
            metrics.RECONCILE_DURATION.labels(kind="status").observe(time.monotonic() - started)

    def _refresh(self, namespace: str, name: str) -> None:
        body = self.kube.get(KIND, namespace, name)
        if body is None or body.get("metadata", {}).get("deletionTimestamp"):
            return
        pmd = PizzaModelDeployment.from_body(body)
        ready = find_condition(pmd.status.conditions, "Ready")
        if ready is not None and ready.reason in BLOCKED_REASONS:
            return  # children are the last good ones; the status stays InvalidSpec/NameConflict
        if pmd.status.observed_generation != pmd.metadata.generation:
            return  # the children of this generation are not applied yet: its reconcile writes
        mode: Mode = pmd.status.mode or "primary"
        deployments = self.children.deployments(namespace, name)
        observed, settling = self.readiness.observe(pmd, deployments)
        outcome = self.reporter.report(pmd, mode, observed, settling=settling)
        self.readiness.follow((namespace, name), outcome)
        metrics.set_mode(namespace, name, mode)

    # ---- child events ------------------------------------------------------------------------

    def on_child_event(self, event_type: str | None, child: Mapping[str, Any]) -> None:
        """A Deployment, Service or PDB we own changed: restore it or refresh the status."""
        owner_name = kids.owner_name(child)
        if owner_name is None:
            return
        meta = child.get("metadata", {})
        namespace = meta["namespace"]
        if event_type == "DELETED" or kids.drifted(child):
            body = self.kube.get(KIND, namespace, owner_name)
            if body is None or body.get("metadata", {}).get("deletionTimestamp"):
                return
            logger.info(
                "checking child=%s/%s event=%s owner=%s",
                child.get("kind"),
                meta.get("name"),
                event_type,
                owner_name,
            )
            self.reconcile(body)  # restores what is missing or edited; a pruned child stays gone
        elif child.get("kind") == "Deployment":
            self._refresher.request(namespace, owner_name)

    def forget(self, namespace: str, name: str) -> None:
        """The resource is gone: drop its lock and metric series."""
        with self._guard:
            self._locks.pop((namespace, name), None)
        self.readiness.forget((namespace, name))
        metrics.forget(namespace, name)


def canary_children(children: list[dict[str, Any]], pmd: PizzaModelDeployment) -> list[str]:
    """The canary's children among `children` (their creation is the rollout's, no restore)."""
    name = canary_name(pmd)
    return [c["metadata"]["name"] for c in children if c["metadata"]["name"] == name]


def _children(
    pmd: PizzaModelDeployment, shaped: Shaped, mode: Mode, config: OperatorConfig
) -> list[dict[str, Any]]:
    """Every child wanted now, each with the resource as its controller."""
    images = resolve_images(shaped.pmd, config)
    children = build_children(shaped.pmd, images, mode, config.operator_pods, shaped.canary)
    kopf.append_owner_reference(children, owner=kopf.Body(owner_of(pmd)))  # type: ignore[arg-type]
    return children


def _needs_dry_run(pmd: PizzaModelDeployment, new_generation: bool) -> bool:
    """Dry-run the children to be applied on a new generation, and again while the last
    reconcile applied nothing (the spec or the names may have been fixed since, within the same
    generation): only the API server can judge all of a child."""
    last_ready = find_condition(pmd.status.conditions, "Ready")
    was_blocked = last_ready is not None and last_ready.reason in BLOCKED_REASONS
    return new_generation or was_blocked
