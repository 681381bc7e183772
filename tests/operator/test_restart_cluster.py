"""Restarting the operator creates no duplicates and changes nothing that was right."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.waiting import eventually

from .helpers import OperatorProcess, apply, children, kubectl, kubectl_json, pmd_manifest

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def _snapshot(ns: str, name: str) -> dict[str, tuple[str, str]]:
    return {
        k: (v["metadata"]["uid"], v["metadata"]["resourceVersion"])
        for k, v in children(ns, name).items()
    }


ANALYSIS_FIELDS = ("analysis", "errorRate")
"""Written by every analysis check (the counts and times move on): not what a restart may change."""


def _settled(status: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in status.items() if k not in ANALYSIS_FIELDS}


def test_restart_changes_nothing(crds_installed: Path, test_namespace: str, tmp_path: Path) -> None:
    ns, name = test_namespace, "steady"
    peering = f"test-{uuid.uuid4().hex[:8]}"
    first = OperatorProcess(tmp_path, peering, name="first").start()
    try:
        apply(pmd_manifest(name, ns))
        kubectl("wait", "--for=condition=Ready", f"pmd/{name}", "-n", ns, "--timeout=90s")
        time.sleep(3)  # let trailing status updates of the Deployments settle
    finally:
        first.stop()
    before = _snapshot(ns, name)
    status_before = _settled(kubectl_json("get", "pmd", name, "-n", ns)["status"])
    deployments_before = len(kubectl_json("get", "deploy", "-n", ns)["items"])

    second = OperatorProcess(tmp_path, peering, name="second").start()
    try:
        # the new process resumes the resource (a full reconcile) and then its timer runs (5 s)
        eventually(
            lambda: second.metric("pizza_operator_reconciles_total", kind="full") >= 2,
            timeout=30,
            what="resume and one resync by the new operator",
            ignoring=AssertionError,
        )
        after = _snapshot(ns, name)
        status_after = _settled(kubectl_json("get", "pmd", name, "-n", ns)["status"])
        errors = second.metric("pizza_operator_reconciles_total", result="error")
    finally:
        second.stop()
    assert after == before
    assert status_after == status_before
    assert len(kubectl_json("get", "deploy", "-n", ns)["items"]) == deployments_before == 3
    assert errors == 0


def test_two_operators_only_one_acts(
    crds_installed: Path, test_namespace: str, tmp_path: Path
) -> None:
    ns = test_namespace
    peering = f"test-{uuid.uuid4().hex[:8]}"
    leader = OperatorProcess(tmp_path, peering, name="leader").start()
    standby: OperatorProcess | None = None
    try:
        standby = OperatorProcess(tmp_path, peering, name="standby").start()
        # kopf starts every peered operator paused; only the highest priority (oldest) resumes
        eventually(
            lambda: "Resuming operations" in leader.log(),
            timeout=30,
            what="leader acts",
            ignoring=AssertionError,
        )
        apply(pmd_manifest("shared", ns))
        kubectl("wait", "--for=condition=Ready", "pmd/shared", "-n", ns, "--timeout=90s")
        time.sleep(6)  # more than one resync interval: a second active operator would reconcile
        assert leader.metric("pizza_operator_reconciles_total") >= 1
        assert standby.metric("pizza_operator_reconciles_total") == 0
        assert "Resuming operations" not in standby.log()
        assert "Pausing operations" not in leader.log()

        # the leader leaves: the standby takes over and keeps the resource converged
        leader.stop()
        eventually(
            lambda: "Resuming operations" in standby.log(),
            timeout=60,
            what="the standby resumes",
            ignoring=AssertionError,
        )
        kubectl("delete", "deploy", "shared-router", "-n", ns, "--wait=false")

        def restored() -> Any:
            return kubectl_json("get", "deploy", "shared-router", "-n", ns)["metadata"]

        eventually(
            restored, timeout=30, what="standby restores a deleted child", ignoring=AssertionError
        )
        assert standby.metric("pizza_operator_reconciles_total", kind="full") >= 1
    finally:
        leader.stop()
        if standby is not None:
            standby.stop()
