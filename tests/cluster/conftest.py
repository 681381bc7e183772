"""Fixtures of the control-plane tests."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from pizza_devcluster.nodes import DEFAULT_NODES
from pizza_devcluster.pytest_plugin import KubeCluster


@pytest.fixture
def kwok_nodes(kube_cluster: KubeCluster, kube_api: Any) -> None:
    """The fake kwok nodes. On an existing cluster without them (kind) the test is skipped;
    on our own cluster their absence is a failure."""
    names = {n.metadata.name for n in client.CoreV1Api(kube_api).list_node().items}
    missing = {spec.name for spec in DEFAULT_NODES} - names
    if missing and kube_cluster.local is None:
        pytest.skip(f"existing cluster without the fake kwok nodes {sorted(missing)}")
    assert not missing, f"fake nodes missing: {sorted(missing)}"
