"""Every kopf handler of the operator, each a line or two: read the body, call the reconciler.

Create, update, resume and the periodic timer all call the same `Reconciler.reconcile()`;
events of the children we own either restore a child changed by hand or refresh the status.
A per-resource daemon runs the continuous analysis (`analysis.tick`) every
`spec.analysis.interval` and reconciles at once when a tick changed the mode; kopf stops it on
the standby replica and when the resource goes.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import kopf

from pizza_operator import analysis
from pizza_operator.api.v1alpha1 import GROUP, KIND, PLURAL, VERSION
from pizza_operator.contract import MANAGED_BY_LABEL, MANAGER
from pizza_operator.reconcile import Reconciler, retry_delay

logger = logging.getLogger(__name__)

RESYNC_SECONDS = float(os.environ.get("PIZZA_OPERATOR_RESYNC_SECONDS", "60"))
PEERING_LIFETIME = int(os.environ.get("PIZZA_OPERATOR_PEERING_LIFETIME", "60"))
WORKERS = int(os.environ.get("PIZZA_OPERATOR_WORKERS", "8"))  # threads running reconciles
OWNED = {MANAGED_BY_LABEL: MANAGER}


def _door(memo: Any) -> analysis.Door:
    door: analysis.Door = memo.door
    return door


def _scrapes(memo: Any) -> analysis.ScrapeMemory:
    scrapes: analysis.ScrapeMemory = memo.scrapes
    return scrapes


def _reconciler(memo: Any) -> Reconciler:
    reconciler: Reconciler = memo.reconciler
    return reconciler


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Keep kopf's bookkeeping in pizza.ai annotations; post our own (few) Events."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.enabled = False
    # No runtime scan of CRDs and namespaces: the namespaces are named exactly and the CRD is
    # installed before the operator, so it needs no cluster-wide read (least-privilege RBAC).
    settings.scanning.disabled = True
    settings.peering.lifetime = PEERING_LIFETIME
    settings.execution.max_workers = WORKERS
    settings.watching.server_timeout = 300


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
def reconcile(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
    outcome = _reconciler(memo).reconcile(body)
    if outcome.blocked is not None:  # InvalidSpec, NameConflict: the resync looks again
        raise kopf.PermanentError(outcome.message)
    if outcome.retry:
        raise kopf.TemporaryError(outcome.message, delay=retry_delay(retry))


@kopf.timer(GROUP, VERSION, PLURAL, interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS)
def resync(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _reconciler(memo).reconcile(body)


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10.0)
async def analyse(
    namespace: str | None, name: str, stopped: kopf.DaemonStopped, memo: kopf.Memo, **_: Any
) -> None:
    """Continuous analysis: one check every spec.analysis.interval, for as long as we lead."""
    door, scrapes, reconciler = _door(memo), _scrapes(memo), _reconciler(memo)
    while not stopped:
        try:
            result = await analysis.tick(door, scrapes, namespace or "", name)
            if result.reconcile:  # the mode changed: apply its children now
                body = await asyncio.to_thread(door.kube.get, KIND, namespace or "", name)
                if body is not None:
                    await asyncio.to_thread(reconciler.reconcile, body, force=True)
            delay = result.delay
        except Exception:  # a failed check is logged and retried; the daemon never dies of it
            logger.exception("analysis failed namespace=%s name=%s", namespace, name)
            delay = 10.0
        await stopped.wait(delay)


@kopf.on.event(GROUP, VERSION, PLURAL)
def forget(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    if event.get("type") == "DELETED":  # children go by garbage collection; drop our memory
        meta = event["object"]["metadata"]
        _reconciler(memo).forget(meta.get("namespace", ""), meta["name"])
        _scrapes(memo).forget((meta.get("namespace", ""), meta["name"]))


@kopf.on.event("apps", "v1", "deployments", labels=OWNED)
@kopf.on.event("v1", "services", labels=OWNED)
@kopf.on.event("v1", "configmaps", labels=OWNED)
@kopf.on.event("policy", "v1", "poddisruptionbudgets", labels=OWNED)
def child_changed(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    if event.get("type") is not None:  # the initial listing is covered by the resume handler
        _reconciler(memo).on_child_event(event.get("type"), event["object"])
