"""The fake nodes kwok manages: one GPU node and two CPU nodes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_ANNOTATION_VALUE = "fake"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_TAINT_VALUE = "present"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"


@dataclass(frozen=True)
class NodeSpec:
    """What a fake node offers. Allocatable equals capacity."""

    name: str
    cpu: str
    memory: str
    pods: str = "110"
    extended: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[dict[str, str], ...] = ()


GPU_NODE = NodeSpec(
    name="pizza-gpu-0",
    cpu="16",
    memory="64Gi",
    extended={GPU_RESOURCE: "2"},
    labels={"nvidia.com/gpu.present": "true", "node-role.pizza.ai/gpu": "true"},
    taints=({"key": GPU_TAINT_KEY, "value": GPU_TAINT_VALUE, "effect": "NoSchedule"},),
)
CPU_NODES = (
    NodeSpec(name="pizza-cpu-0", cpu="8", memory="32Gi"),
    NodeSpec(name="pizza-cpu-1", cpu="8", memory="32Gi"),
)
DEFAULT_NODES: tuple[NodeSpec, ...] = (GPU_NODE, *CPU_NODES)


def node_manifest(spec: NodeSpec) -> dict[str, Any]:
    """The Node object kwok adopts (by its annotation) and turns Ready."""
    resources = {"cpu": spec.cpu, "memory": spec.memory, "pods": spec.pods, **spec.extended}
    labels = {
        "kubernetes.io/hostname": spec.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "type": "kwok",
        **spec.labels,
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": spec.name,
            "annotations": {KWOK_ANNOTATION: KWOK_ANNOTATION_VALUE},
            "labels": labels,
        },
        "spec": {"taints": [dict(taint) for taint in spec.taints]},
        "status": {
            "capacity": dict(resources),
            "allocatable": dict(resources),
            "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux"},
        },
    }


def node_is_ready(node: dict[str, Any]) -> bool:
    """Ready=True and without the not-ready taint (which would still keep pods off it)."""
    conditions = node.get("status", {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    taints = node.get("spec", {}).get("taints") or []
    return ready and not any(t.get("key") == NOT_READY_TAINT for t in taints)
