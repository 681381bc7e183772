"""Leader election on a Lease, against a real API server with real operator processes: one
replica acts; a frozen leader is replaced within 15 s and, woken, writes nothing; a replica
that stops hands the Lease over at once."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.waiting import eventually

from .helpers import OperatorProcess, apply, kubectl, kubectl_json, pmd_manifest

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
TAKEOVER_LIMIT = 15.0  # seconds from a spec change under a frozen leader to its child applied


def _lease(name: str) -> dict[str, Any]:
    spec: dict[str, Any] = kubectl_json("get", "lease", name, "-n", "default")["spec"]
    return spec


def _router_replicas(ns: str, name: str) -> int:
    replicas: int = kubectl_json("get", "deploy", f"{name}-router", "-n", ns)["spec"]["replicas"]
    return replicas


def _set_router_replicas(ns: str, name: str, replicas: int) -> None:
    patch = {"spec": {"router": {"replicas": replicas}}}
    kubectl("patch", "pmd", name, "-n", ns, "--type=merge", "-p", json.dumps(patch))


def _applied_within(ns: str, name: str, replicas: int, limit: float) -> float:
    """Change the spec; seconds until the router Deployment has it (fails past `limit`)."""
    start = time.monotonic()
    _set_router_replicas(ns, name, replicas)
    eventually(
        lambda: _router_replicas(ns, name) == replicas,
        timeout=limit,
        what=f"router scaled to {replicas}",
        every=0.2,
        ignoring=AssertionError,
    )
    return time.monotonic() - start


def test_one_acts_a_frozen_leader_is_replaced_and_writes_nothing_when_it_wakes(
    crds_installed: Path, test_namespace: str, tmp_path: Path
) -> None:
    ns, name, lease = test_namespace, "elected", f"test-{uuid.uuid4().hex[:8]}"
    first = OperatorProcess(tmp_path, lease, name="first").start()
    eventually(first.leading, 30, "the first replica leads", ignoring=AssertionError)
    second = OperatorProcess(tmp_path, lease, name="second").start()
    try:
        assert second.health() == (200, {"ok": True, "role": "standby", "reasons": []})
        apply(pmd_manifest(name, ns))
        kubectl("wait", "--for=condition=Ready", f"pmd/{name}", "-n", ns, "--timeout=90s")
        time.sleep(6)  # more than one resync interval: a second active operator would reconcile
        assert first.metric("pizza_operator_reconciles_total") >= 1
        assert second.metric("pizza_operator_reconciles_total") == 0
        assert not second.leading()
        assert _lease(lease)["holderIdentity"].endswith(tuple("0123456789abcdef"))
        assert kubectl_json("get", "pmd", name, "-n", ns)["metadata"].get("finalizers") is None

        # the leader freezes (a stuck process, a node cut off): the standby acts within 15 s
        assert first.proc is not None
        os.kill(first.proc.pid, signal.SIGSTOP)
        try:
            took = _applied_within(ns, name, 3, TAKEOVER_LIMIT)
            print(f"takeover: spec change applied {took:.1f} s after the leader froze")
            assert second.leading()
        finally:
            os.kill(first.proc.pid, signal.SIGCONT)

        # woken, the old leader finds the Lease taken and stands by; it restores nothing stale
        eventually(
            lambda: "lost the lease" in first.log() and not first.leading(),
            timeout=15,
            what="the woken leader stands by",
            ignoring=AssertionError,
        )
        time.sleep(6)
        assert _router_replicas(ns, name) == 3
        assert second.leading()

        # a replica that stops hands the Lease back: the other takes over at once
        second.stop()
        took = _applied_within(ns, name, 1, 10.0)
        print(f"hand-over: spec change applied {took:.1f} s after the leader stopped")
        assert first.leading()
    finally:
        first.stop()
        second.stop()
