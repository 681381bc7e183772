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
    lease = f"test-{uuid.uuid4().hex[:8]}"
    first = OperatorProcess(tmp_path, lease, name="first").start()
    try:
        apply(pmd_manifest(name, ns))
        kubectl("wait", "--for=condition=Ready", f"pmd/{name}", "-n", ns, "--timeout=90s")
        time.sleep(3)  # let trailing status updates of the Deployments settle
    finally:
        first.stop()
    before = _snapshot(ns, name)
    status_before = _settled(kubectl_json("get", "pmd", name, "-n", ns)["status"])
    deployments_before = len(kubectl_json("get", "deploy", "-n", ns)["items"])

    second = OperatorProcess(tmp_path, lease, name="second").start()
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
