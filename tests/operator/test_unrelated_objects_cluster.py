"""The operator's memory does not grow with objects it does not own: its child watches carry a
label selector (the API server sends only ours) and its lists come in pages.

Two fresh operator processes against one control plane of their own, each measured once it has
converged one resource: the first with the cluster empty, the second with 3,000 unrelated
ConfigMaps of 100 KB (300 MB) in it. Their resident memory must be within 20 MB."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from kubernetes import client, config
from pizza_devcluster.cluster import LocalCluster

from .helpers import ROOT, OperatorProcess, kubectl, pmd_manifest

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
UNRELATED = 3000
SIZE = 100 * 1024
RSS_LIMIT = 20 * 1024 * 1024


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    cluster = LocalCluster(tmp_path / "cluster").start()
    try:
        yield cluster
    finally:
        cluster.stop()


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _settled_rss(cluster: LocalCluster, tmp_path: Path, ns: str, name: str) -> int:
    """RSS of a fresh operator once it has (re)converged `name` and run for 20 s more."""
    op = OperatorProcess(
        tmp_path, f"test-{uuid.uuid4().hex[:8]}", name="op", kubeconfig=cluster.kubeconfig
    ).start()
    try:
        kubectl(
            "--kubeconfig",
            str(cluster.kubeconfig),
            "wait",
            "--for=condition=Ready",
            f"pmd/{name}",
            "-n",
            ns,
            "--timeout=120s",
        )
        time.sleep(20)
        assert op.proc is not None
        samples = []
        for _ in range(5):
            samples.append(_rss(op.proc.pid))
            time.sleep(1)
        return max(samples)
    finally:
        op.stop()


def _fill(cluster: LocalCluster, namespace: str) -> None:
    api = client.CoreV1Api(config.new_client_from_config(str(cluster.kubeconfig)))
    api.create_namespace({"metadata": {"name": namespace}})
    blob = "x" * SIZE

    def create(i: int) -> None:
        body = {
            "metadata": {"name": f"unrelated-{i}", "labels": {"app": "other"}},
            "data": {"blob": blob},
        }
        api.create_namespaced_config_map(namespace, body)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(UNRELATED)))


def test_rss_does_not_grow_with_unrelated_config_maps(
    own_cluster: LocalCluster, tmp_path: Path
) -> None:
    cluster, ns, name = own_cluster, "default", "steady"
    kc = str(cluster.kubeconfig)
    kubectl("--kubeconfig", kc, "apply", "--server-side", "-f", str(ROOT / "crds"))
    kubectl(
        "--kubeconfig",
        kc,
        "wait",
        "--for=condition=Established",
        "crd/pizzamodeldeployments.pizza.ai",
    )
    kubectl("--kubeconfig", kc, "apply", "-f", "-", stdin=json.dumps(pmd_manifest(name, ns)))
    without = _settled_rss(cluster, tmp_path, ns, name)

    start = time.monotonic()
    _fill(cluster, "unrelated")
    print(f"{UNRELATED} ConfigMaps of {SIZE} B created in {time.monotonic() - start:.0f} s")
    with_them = _settled_rss(cluster, tmp_path, ns, name)
    mib = 1024 * 1024
    print(f"operator RSS: {without / mib:.1f} MiB without, {with_them / mib:.1f} MiB with them")
    assert abs(with_them - without) < RSS_LIMIT
