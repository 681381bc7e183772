"""The API server fails under a running operator: frozen for 75 s (SIGSTOP: connections hang),
then killed and started again. The operator is not restarted, its /healthz stays green (a
kubelet would not restart it either), and a spec change made afterwards is applied within 30 s.

A control plane of its own: freezing the session's would stall every other test's cluster."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pizza_devcluster.cluster import LocalCluster

from tests.support.waiting import eventually

from .helpers import ROOT, OperatorProcess, kubectl, pmd_manifest

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
FROZEN_SECONDS = 75.0
APPLIED_LIMIT = 30.0


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    cluster = LocalCluster(tmp_path / "cluster").start()
    try:
        yield cluster
    finally:
        cluster.stop()


def _kubectl(cluster: LocalCluster, *args: str, stdin: str | None = None) -> str:
    return kubectl("--kubeconfig", str(cluster.kubeconfig), *args, stdin=stdin).stdout


def _router_replicas(cluster: LocalCluster, ns: str, name: str) -> int:
    out = _kubectl(cluster, "get", "deploy", f"{name}-router", "-n", ns, "-o", "json")
    replicas: int = json.loads(out)["spec"]["replicas"]
    return replicas


def _applied_within(cluster: LocalCluster, ns: str, name: str, replicas: int) -> float:
    start = time.monotonic()
    patch = json.dumps({"spec": {"router": {"replicas": replicas}}})
    _kubectl(cluster, "patch", "pmd", name, "-n", ns, "--type=merge", "-p", patch)
    eventually(
        lambda: _router_replicas(cluster, ns, name) == replicas,
        timeout=APPLIED_LIMIT,
        what=f"router scaled to {replicas}",
        every=0.2,
        ignoring=AssertionError,
    )
    return time.monotonic() - start


def test_api_server_frozen_then_restarted(own_cluster: LocalCluster, tmp_path: Path) -> None:
    cluster, ns, name = own_cluster, "default", "steady"
    _kubectl(cluster, "apply", "--server-side", "-f", str(ROOT / "crds"))
    _kubectl(cluster, "wait", "--for=condition=Established", "crd/pizzamodeldeployments.pizza.ai")
    op = OperatorProcess(
        tmp_path, f"test-{uuid.uuid4().hex[:8]}", name="op", kubeconfig=cluster.kubeconfig
    ).start()
    try:
        _kubectl(cluster, "apply", "-f", "-", stdin=json.dumps(pmd_manifest(name, ns)))
        _kubectl(cluster, "wait", "--for=condition=Ready", f"pmd/{name}", "-n", ns, "--timeout=90s")
        assert op.proc is not None
        pid = op.proc.pid

        apiserver = cluster.pids["kube-apiserver"]
        os.kill(apiserver, signal.SIGSTOP)
        codes = []
        try:
            deadline = time.monotonic() + FROZEN_SECONDS
            while time.monotonic() < deadline:
                codes.append(op.health()[0])
                time.sleep(5)
        finally:
            os.kill(apiserver, signal.SIGCONT)
        assert set(codes) == {200}, codes
        took = _applied_within(cluster, ns, name, 3)
        print(f"after a {FROZEN_SECONDS:.0f} s freeze: spec change applied in {took:.1f} s")

        cluster.restart("kube-apiserver")
        took = _applied_within(cluster, ns, name, 1)
        print(f"after an API server restart: spec change applied in {took:.1f} s")
        assert op.proc.poll() is None
        assert op.proc.pid == pid
        assert op.health()[0] == 200
        assert op.leading()
    finally:
        op.stop()
