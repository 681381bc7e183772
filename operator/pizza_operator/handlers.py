"""Every kopf handler of the operator, each a line or two: read the body, call the reconciler.

Create, update and resume call `Reconciler.reconcile()`; events of the children we own either
restore a child changed by hand or refresh the status. The resource's own events feed the
operator-wide loop (`rounds`: each resource's analysis tick every `spec.analysis.interval` and
its resync), which the startup handler starts. No daemon and no timer: kopf puts a finalizer on
every resource that has one, and nothing may make a deletion wait for the operator; a finalizer
left by an older operator is removed by kopf on its first look at the resource.
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from pizza_operator.api.v1alpha1 import GROUP, PLURAL, VERSION
from pizza_operator.contract import MANAGED_BY_LABEL, MANAGER
from pizza_operator.health import Health
from pizza_operator.reconcile import Reconciler, retry_delay
from pizza_operator.rollout.shape import in_flight
from pizza_operator.rounds import Rounds

logger = logging.getLogger(__name__)

WORKERS = int(os.environ.get("PIZZA_OPERATOR_WORKERS", "8"))  # threads running reconciles
OWNED = {MANAGED_BY_LABEL: MANAGER}
CHILD_KINDS = (
    ("apps", "v1", "deployments"),
    ("v1", "services"),
    ("v1", "configmaps"),
    ("policy", "v1", "poddisruptionbudgets"),
    ("networking.k8s.io", "v1", "networkpolicies"),
)
"""The children whose events we follow; their watches carry OWNED as a label selector, so the
API server sends only ours (the cluster's other objects never reach the operator)."""
LIST_CHUNK = 200
"""Objects per page of kopf's initial lists."""
IO_THREADS = 32
"""Threads of the loop's default executor, where the analysis ticks' API calls and the resyncs
run (`asyncio.to_thread`). Python's default is the CPU count + 4: 6 on 2 cores, and at 500
resources a tick every 10 s each (about 5 calls of 20-50 ms on a busy API server) the ticks
waited there for a thread, not for the API server (bench/operator/README.md)."""


def _reconciler(memo: Any) -> Reconciler:
    reconciler: Reconciler = memo.reconciler
    return reconciler


def _health(memo: Any) -> Health:
    health: Health = memo.health
    return health


def _rounds(memo: Any) -> Rounds:
    rounds: Rounds = memo.rounds
    return rounds


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Keep kopf's bookkeeping in pizza.ai annotations; post our own (few) Events; start the
    operator-wide loop."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.enabled = False
    # No runtime scan of CRDs and namespaces: the namespaces are named exactly and the CRD is
    # installed before the operator, so it needs no cluster-wide read (least-privilege RBAC).
    settings.scanning.disabled = True
    settings.execution.max_workers = WORKERS
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(IO_THREADS, thread_name_prefix="pizza-io")
    )
    settings.watching.server_timeout = 300
    settings.watching.chunk_size = LIST_CHUNK
    for kind in CHILD_KINDS:
        settings.watching.label_selectors[kind] = ",".join(f"{k}={v}" for k, v in OWNED.items())
    rounds = Rounds(
        memo.door,
        memo.scrapes,
        memo.reconciler,
        memo.health,
        resync_every=memo.config.resync_seconds,
    )
    memo.rounds = rounds
    memo.rounds_task = asyncio.create_task(rounds.run())


@kopf.on.cleanup()
async def stop_rounds(memo: kopf.Memo, **_: Any) -> None:
    memo.rounds_task.cancel()
    await asyncio.gather(memo.rounds_task, return_exceptions=True)
    await _rounds(memo).stop()
    if memo.stop_flag is not None:  # lets kopf's thread waiting on it end
        memo.stop_flag.set()


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
def reconcile(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
    meta = body["metadata"]
    with _health(memo).working(f"reconcile of {meta.get('namespace')}/{meta['name']}"):
        outcome = _reconciler(memo).reconcile(body)
    if outcome.blocked is not None:  # InvalidSpec, NameConflict: the resync looks again
        raise kopf.PermanentError(outcome.message)
    if outcome.retry:
        raise kopf.TemporaryError(outcome.message, delay=retry_delay(retry))


@kopf.on.event(GROUP, VERSION, PLURAL)
async def track(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """Known resources are analysed and resynced by the loop; a deleted one is forgotten (its
    children go by garbage collection)."""
    meta = event["object"]["metadata"]
    key = (meta.get("namespace", ""), meta["name"])
    if event.get("type") == "DELETED":
        _rounds(memo).forget(key)
        _reconciler(memo).forget(*key)
    else:
        spec = event["object"].get("spec") or {}
        scaled = any((spec.get(c) or {}).get("autoscaling") for c in ("primary", "fallback"))
        rollout = (event["object"].get("status") or {}).get("rollout") or {}
        rolling = in_flight(rollout.get("phase"), bool(rollout.get("handedOver")))
        _rounds(memo).know(key, scaled=scaled, rolling=rolling)


@kopf.on.event(*CHILD_KINDS[0], labels=OWNED)
@kopf.on.event(*CHILD_KINDS[1], labels=OWNED)
@kopf.on.event(*CHILD_KINDS[2], labels=OWNED)
@kopf.on.event(*CHILD_KINDS[3], labels=OWNED)
@kopf.on.event(*CHILD_KINDS[4], labels=OWNED)
def child_changed(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    if event.get("type") is not None:  # the initial listing is covered by the resume handler
        _reconciler(memo).on_child_event(event.get("type"), event["object"])
