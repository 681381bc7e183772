"""Unit tests of the fake node manifests and the readiness check."""

from __future__ import annotations

from typing import Any

import pytest
from pizza_devcluster.nodes import (
    CPU_NODES,
    DEFAULT_NODES,
    GPU_NODE,
    NOT_READY_TAINT,
    node_is_ready,
    node_manifest,
)

pytestmark = pytest.mark.unit


class TestNodeManifest:
    def test_gpu_node(self) -> None:
        node = node_manifest(GPU_NODE)
        assert node["metadata"]["name"] == "pizza-gpu-0"
        assert node["metadata"]["annotations"] == {"kwok.x-k8s.io/node": "fake"}
        labels = node["metadata"]["labels"]
        assert labels["nvidia.com/gpu.present"] == "true"
        assert labels["node-role.pizza.ai/gpu"] == "true"
        assert labels["kubernetes.io/os"] == "linux"
        assert labels["kubernetes.io/arch"] == "amd64"
        assert node["status"]["capacity"] == {
            "cpu": "16",
            "memory": "64Gi",
            "pods": "110",
            "nvidia.com/gpu": "2",
        }
        assert node["status"]["allocatable"] == node["status"]["capacity"]
        assert node["spec"]["taints"] == [
            {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
        ]

    @pytest.mark.parametrize("spec", CPU_NODES, ids=lambda s: s.name)
    def test_cpu_nodes_have_no_gpu_and_no_taint(self, spec: Any) -> None:
        node = node_manifest(spec)
        assert node["status"]["capacity"] == {"cpu": "8", "memory": "32Gi", "pods": "110"}
        assert node["status"]["allocatable"] == node["status"]["capacity"]
        assert node["spec"]["taints"] == []
        assert "nvidia.com/gpu.present" not in node["metadata"]["labels"]
        assert node["metadata"]["annotations"] == {"kwok.x-k8s.io/node": "fake"}

    def test_default_nodes_have_unique_names(self) -> None:
        names = [spec.name for spec in DEFAULT_NODES]
        assert names == ["pizza-gpu-0", "pizza-cpu-0", "pizza-cpu-1"]

    def test_manifest_does_not_share_state_between_calls(self) -> None:
        first = node_manifest(GPU_NODE)
        first["status"]["capacity"]["cpu"] = "1"
        first["spec"]["taints"][0]["effect"] = "NoExecute"
        second = node_manifest(GPU_NODE)
        assert second["status"]["capacity"]["cpu"] == "16"
        assert second["spec"]["taints"][0]["effect"] == "NoSchedule"


def _node(ready: str | None, taints: list[dict[str, str]] | None = None) -> dict[str, Any]:
    conditions = [] if ready is None else [{"type": "Ready", "status": ready}]
    return {"spec": {"taints": taints or []}, "status": {"conditions": conditions}}


class TestNodeIsReady:
    def test_ready_without_taint(self) -> None:
        assert node_is_ready(_node("True"))

    def test_ready_but_still_tainted_not_ready(self) -> None:
        taint = {"key": NOT_READY_TAINT, "effect": "NoSchedule"}
        assert not node_is_ready(_node("True", [taint]))

    @pytest.mark.parametrize("status", ["False", "Unknown", None])
    def test_not_ready(self, status: str | None) -> None:
        assert not node_is_ready(_node(status))

    def test_gpu_taint_does_not_count_as_not_ready(self) -> None:
        taint = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
        assert node_is_ready(_node("True", [taint]))
