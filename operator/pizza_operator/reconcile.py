"""The reconcile loop: from a PizzaModelDeployment to its children and its status.

Level-based: create, update, resume, the periodic timer and child events all converge through
`Reconciler.reconcile()`, which reads the resource, builds every child with the pure builders,
server-side applies those that differ from the cluster and writes the status. Nothing depends on
which event fired, and nothing depends on process memory: each child carries the hash of what we
applied (`children.HASH_ANNOTATION`), so a new leader judges every child from the cluster alone.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import kopf

from pizza_operator import children as kids
from pizza_operator import metrics
from pizza_operator.api.v1alpha1 import GROUP, KIND, VERSION, Mode, PizzaModelDeployment
from pizza_operator.builders import build_children
from pizza_operator.builders.naming import COMPONENTS, MANAGER, Component
from pizza_operator.config import OperatorConfig
from pizza_operator.history import History, with_revision
from pizza_operator.kube import Kube, KubeError, now_rfc3339
from pizza_operator.refresher import Coalescer
from pizza_operator.status import Observed, build_status, condition, observe
from pizza_operator.status_writer import StatusWriter
from pizza_operator.validation import find_problems, resolve_images

logger = logging.getLogger(__name__)

_MUTABLE_BY_USERS = ("Deployment",)  # kinds whose spec a user may get wrong (dry-run first)
_CHILD_KINDS = (
    "Deployment",
    "Service",
    "PodDisruptionBudget",
    "ConfigMap",
    "ServiceAccount",
    "Role",
    "RoleBinding",
)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a reconcile did; handlers turn an invalid spec into kopf.PermanentError and an API
    error into kopf.TemporaryError."""

    invalid: bool = False
    retry: bool = False  # an API error: try again soon
    message: str = ""
    ready: bool = False


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

    @contextmanager
    def _lock(self, namespace: str, name: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault((namespace, name), threading.Lock())
        with lock:
            yield

    # ---- the one reconcile -------------------------------------------------------------------

    def reconcile(self, body: Mapping[str, Any], *, force: bool = False) -> Outcome:
        """Converge the children and the status of one resource to its spec.

        A child is applied when it is missing, when its desired-hash annotation differs from the
        hash of the child we build now, or when its managedFields show that our apply lost a
        field we set (a hand edit); owned children no longer desired are deleted. `force`
        applies every child. Only writes the API server accepted count in
        `pizza_operator_child_writes_total`."""
        pmd = PizzaModelDeployment.from_body(body)
        if pmd.metadata.deletion_timestamp:
            return Outcome()
        started = time.monotonic()
        result = "ok"
        try:
            with self._lock(pmd.metadata.namespace, pmd.metadata.name):
                outcome = self._converge(pmd, force)
            if outcome.invalid:
                result = "invalid"
                metrics.ERRORS.labels(reason="InvalidSpec").inc()
            return outcome
        except KubeError as exc:
            if exc.gone:
                result = "gone"
                return Outcome()  # the resource or its namespace is going away
            result = "error"
            metrics.ERRORS.labels(reason="ApiError").inc()
            message = (
                f"API error {exc.status} reconciling {pmd.metadata.namespace}/"
                f"{pmd.metadata.name}: {exc.message}"
            )
            logger.warning("%s", message)
            return Outcome(retry=True, message=message)
        finally:
            metrics.RECONCILES.labels(kind="full", result=result).inc()
            metrics.RECONCILE_DURATION.labels(kind="full").observe(time.monotonic() - started)

    def _converge(self, pmd: PizzaModelDeployment, force: bool) -> Outcome:
        ns, name = pmd.metadata.namespace, pmd.metadata.name
        mode: Mode = pmd.status.mode or "primary"
        problems = find_problems(pmd, self.config)
        shaped = self.serving_shape(pmd, mode)
        children = build_children(shaped, resolve_images(shaped, self.config), mode)
        owner = owner_of(pmd)
        kopf.append_owner_reference(children, owner=kopf.Body(owner))  # type: ignore[arg-type]
        last_ready = condition(pmd.status, "Ready")
        was_invalid = last_ready is not None and last_ready.reason == "InvalidSpec"
        new_generation = pmd.status.observed_generation != pmd.metadata.generation
        if not problems and _user_placement(pmd) and (new_generation or was_invalid):
            problems = self._dry_run(children)
        if problems:
            return self._report_invalid(pmd, mode, problems)

        live = self._live_children(pmd)
        observed: dict[Component, Observed] = {c: Observed() for c in COMPONENTS}
        created: list[str] = []
        applied = 0
        if pmd.spec.paused:
            for key, obj in live.items():
                component = _component(obj)
                if key[0] == "Deployment" and component is not None:
                    observed[component] = observe(obj)
        else:
            observed, created, applied = self._apply_changed(children, live, force)
            self._prune(children, live)
        revision = pmd.status.current_revision
        if revision is None or new_generation:
            revision = self.history.record(pmd).name
        status_outcome = self._write_status(pmd, mode, observed, revision=revision)
        if created:
            first = len(created) == len(children)
            self.kube.post_event(
                owner,
                "Normal" if first else "Warning",
                "Created" if first else "Restored",
                ("created " if first else "recreated missing ") + ", ".join(created),
            )
        logger.info(
            "reconciled namespace=%s name=%s generation=%s mode=%s ready=%s applied=%d created=%d",
            ns,
            name,
            pmd.metadata.generation,
            mode,
            status_outcome.ready,
            applied,
            len(created),
        )
        metrics.set_mode(ns, name, mode)
        return status_outcome

    def serving_shape(self, pmd: PizzaModelDeployment, mode: Mode) -> PizzaModelDeployment:
        """The resource the children are built from: itself, or in mode previous the resource
        with the known-good revision's shaping spec (its spec itself is never changed)."""
        serving = pmd.status.serving_revision
        if mode != "previous" or not serving or serving == pmd.status.current_revision:
            return pmd
        stored = self.history.get(pmd, serving)
        if stored is None:
            logger.warning("serving revision %s of %s/%s is gone", serving, *_ns_name(pmd))
            return pmd
        return with_revision(pmd, stored)

    def _dry_run(self, children: list[dict[str, Any]]) -> list[str]:
        """Ask the API server whether it would accept the children the user can get wrong."""
        problems = []
        for child in children:
            if child["kind"] not in _MUTABLE_BY_USERS:
                continue
            try:
                self.kube.apply_dry_run(child)
            except KubeError as exc:
                if exc.status not in (400, 422):
                    raise
                problems.append(f"{child['kind']} {child['metadata']['name']}: {exc.message}")
        return problems

    def _live_children(self, pmd: PizzaModelDeployment) -> dict[tuple[str, str, str], Any]:
        """The live children this resource owns (by uid), keyed by (kind, namespace, name)."""
        live: dict[tuple[str, str, str], Any] = {}
        for kind in _CHILD_KINDS:
            for obj in self.kube.list(kind, pmd.metadata.namespace, _selector(pmd)):
                refs = obj.get("metadata", {}).get("ownerReferences", [])
                if any(ref.get("uid") == pmd.metadata.uid for ref in refs):
                    live[_key(obj, kind)] = obj
        return live

    def _apply_changed(
        self,
        children: list[dict[str, Any]],
        live: Mapping[tuple[str, str, str], Any],
        force: bool,
    ) -> tuple[dict[Component, Observed], list[str], int]:
        """Apply the children that differ from the cluster; the Deployments' state after."""
        observed: dict[Component, Observed] = {c: Observed() for c in COMPONENTS}
        created: list[str] = []
        applied = 0
        for child in children:
            current = live.get(_key(child))
            why = "forced" if force else kids.needs_apply(child, current)
            if why is not None:
                logger.info(
                    "applying child=%s/%s namespace=%s reason=%s",
                    child["kind"],
                    child["metadata"]["name"],
                    child["metadata"]["namespace"],
                    why,
                )
                current, was_created = self._apply_one(kids.with_hash(child))
                applied += 1
                if was_created:
                    created.append(f"{child['kind']}/{child['metadata']['name']}")
            assert current is not None  # needs_apply() calls a missing child "missing"
            component = _component(current)
            if child["kind"] == "Deployment" and component is not None:
                observed[component] = observe(current)
        return observed, created, applied

    def _apply_one(self, child: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Apply; when hand edits make the merged object invalid, replace it, then apply again."""
        try:
            result = self.kube.apply(child)
            kids.CHILD_WRITES.labels(kind=child["kind"], action="apply").inc()
            return result
        except KubeError as exc:
            if exc.status != 422:
                raise
            logger.warning(
                "replacing child=%s/%s namespace=%s reason=%r",
                child["kind"],
                child["metadata"]["name"],
                child["metadata"]["namespace"],
                exc.message,
            )
            self.kube.replace(child)
            kids.CHILD_WRITES.labels(kind=child["kind"], action="replace").inc()
            live, _ = self.kube.apply(child)
            kids.CHILD_WRITES.labels(kind=child["kind"], action="apply").inc()
            return live, False

    def _prune(
        self, children: list[dict[str, Any]], live: Mapping[tuple[str, str, str], Any]
    ) -> None:
        """Delete owned children the desired set no longer contains (a PDB once replicas is 1)."""
        wanted = {_key(child) for child in children}
        for key in sorted(set(live) - wanted):
            kind, namespace, name = key
            logger.info("pruning child=%s/%s namespace=%s", kind, name, namespace)
            self.kube.delete(kind, namespace, name)
            kids.CHILD_WRITES.labels(kind=kind, action="delete").inc()

    def _observe(self, namespace: str, name: str) -> dict[Component, Observed]:
        observed: dict[Component, Observed] = {c: Observed() for c in COMPONENTS}
        selector = {"app.kubernetes.io/instance": name, "app.kubernetes.io/managed-by": MANAGER}
        for deployment in self.kube.list("Deployment", namespace, selector):
            component = _component(deployment)
            if component is not None:
                observed[component] = observe(deployment)
        return observed

    # ---- status --------------------------------------------------------------------------------

    def _write_status(
        self,
        pmd: PizzaModelDeployment,
        mode: Mode,
        observed: Mapping[Component, Observed] | None,
        problems: list[str] | None = None,
        revision: str | None = None,
    ) -> Outcome:
        """Status of what was built from `pmd` (its generation), over the live status: the
        fields the analysis owns (mode once set, RolledBack, analysis...) are kept."""
        now = now_rfc3339()
        seen: dict[str, Any] = {}

        def change(fresh: PizzaModelDeployment) -> dict[str, Any]:
            view = pmd.model_copy(update={"status": fresh.status})
            status = build_status(view, fresh.status.mode or mode, observed, now, problems)
            if revision is not None and not problems:
                status = status.model_copy(update={"current_revision": revision})
            wire = status.to_wire()
            if fresh.status.mode is not None:
                wire.pop("mode", None)  # the analysis owns the mode once it is set
            before = fresh.status.to_wire()
            seen.update(old=condition(fresh.status, "Ready"), status=status)
            return {k: v for k, v in wire.items() if before.get(k) != v}

        self.writer.update(pmd.metadata.namespace, pmd.metadata.name, change, current=pmd)
        old_ready, status = seen["old"], seen["status"]
        new_ready = condition(status, "Ready")
        assert new_ready is not None
        owner = owner_of(pmd)
        if new_ready.status == "True" and (old_ready is None or old_ready.status != "True"):
            self.kube.post_event(owner, "Normal", "Ready", _summary(status))
        elif new_ready.reason == "InvalidSpec":
            if old_ready is None or (old_ready.reason, old_ready.message) != (
                new_ready.reason,
                new_ready.message,
            ):
                self.kube.post_event(owner, "Warning", "InvalidSpec", new_ready.message)
        elif new_ready.status != "True" and old_ready is not None and old_ready.status == "True":
            self.kube.post_event(owner, "Warning", "NotReady", new_ready.message)
        return Outcome(
            invalid=new_ready.reason == "InvalidSpec",
            message=new_ready.message,
            ready=new_ready.status == "True",
        )

    def _report_invalid(
        self, pmd: PizzaModelDeployment, mode: Mode, problems: list[str]
    ) -> Outcome:
        logger.warning(
            "invalid spec namespace=%s name=%s problems=%r",
            pmd.metadata.namespace,
            pmd.metadata.name,
            problems,
        )
        return self._write_status(pmd, mode, None, problems)

    def refresh_status(self, namespace: str, name: str) -> None:
        """Status only, from the live Deployments (a child's status changed, nothing else)."""
        started = time.monotonic()
        result = "ok"
        try:
            with self._lock(namespace, name):
                body = self.kube.get(KIND, namespace, name)
                if body is None or body.get("metadata", {}).get("deletionTimestamp"):
                    return
                pmd = PizzaModelDeployment.from_body(body)
                ready = condition(pmd.status, "Ready")
                if ready is not None and ready.reason == "InvalidSpec":
                    return  # children are the last good ones; the status stays InvalidSpec
                mode: Mode = pmd.status.mode or "primary"
                self._write_status(pmd, mode, self._observe(namespace, name))
                metrics.set_mode(namespace, name, mode)
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

    # ---- child events ------------------------------------------------------------------------

    def on_child_event(self, event_type: str | None, child: Mapping[str, Any]) -> None:
        """A Deployment, Service or PDB we own changed: restore it or refresh the status."""
        meta = child.get("metadata", {})
        owner_name = next(
            (
                ref["name"]
                for ref in meta.get("ownerReferences", [])
                if ref.get("kind") == KIND and ref.get("apiVersion") == f"{GROUP}/{VERSION}"
            ),
            None,
        )
        if owner_name is None:
            return
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
        metrics.forget(namespace, name)


def _ns_name(pmd: PizzaModelDeployment) -> tuple[str, str]:
    return pmd.metadata.namespace, pmd.metadata.name


def owner_of(pmd: PizzaModelDeployment) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {
            "name": pmd.metadata.name,
            "namespace": pmd.metadata.namespace,
            "uid": pmd.metadata.uid,
        },
    }


def _user_placement(pmd: PizzaModelDeployment) -> bool:
    """Node selectors and tolerations reach the Deployments unchecked by us: dry-run them first.
    (Everything else in the pod templates is validated by the CRD schema or `validation`.)"""
    spec = pmd.spec
    return bool(
        spec.primary.node_selector
        or spec.primary.tolerations
        or spec.fallback.node_selector
        or spec.fallback.tolerations
    )


def _selector(pmd: PizzaModelDeployment) -> dict[str, str]:
    return {
        "app.kubernetes.io/instance": pmd.metadata.name,
        "app.kubernetes.io/managed-by": MANAGER,
    }


def _key(obj: Mapping[str, Any], kind: str | None = None) -> tuple[str, str, str]:
    """(kind, namespace, name); items of a LIST carry no kind, so callers pass it."""
    meta = obj.get("metadata", {})
    kind = kind or str(obj.get("kind", ""))
    return (kind, str(meta.get("namespace", "")), str(meta.get("name", "")))


def _component(obj: Mapping[str, Any]) -> Component | None:
    value = obj.get("metadata", {}).get("labels", {}).get("app.kubernetes.io/component", "")
    return next((c for c in COMPONENTS if c == value), None)


def _summary(status: Any) -> str:
    parts = [
        f"{c} {getattr(status, c).summary}" for c in COMPONENTS if getattr(status, c) is not None
    ]
    return "every component is ready: " + ", ".join(parts)
