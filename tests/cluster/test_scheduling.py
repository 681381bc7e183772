"""Workloads on the fake nodes: Deployments, GPU placement, unschedulable pods, kwok failures."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.cluster.helpers import deployment, pod, restricted_container, restricted_pod_spec
from tests.support.conditions import condition, is_true
from tests.support.waiting import eventually

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("kwok_nodes")]

CPU_NODES = {"pizza-cpu-0", "pizza-cpu-1"}
GPU_TOLERATION = {
    "key": "nvidia.com/gpu",
    "operator": "Equal",
    "value": "present",
    "effect": "NoSchedule",
}


def _gpu_container(count: int) -> dict[str, Any]:
    limits = {"nvidia.com/gpu": str(count)}
    return restricted_container(resources={"requests": {"cpu": "1"}, "limits": limits})


def test_deployment_pods_are_scheduled_on_cpu_nodes_and_ready(
    kube_api: Any, test_namespace: str
) -> None:
    apps = client.AppsV1Api(kube_api)
    core = client.CoreV1Api(kube_api)
    apps.create_namespaced_deployment(test_namespace, deployment("web", 2))

    def ready_pods() -> list[Any] | None:
        pods = core.list_namespaced_pod(test_namespace, label_selector="app=web").items
        ready = [p for p in pods if is_true(p, "Ready")]
        return ready if len(ready) == 2 else None

    pods = eventually(ready_pods, 30, "2 Ready pods of Deployment web", every=0.1)
    assert {p.spec.node_name for p in pods} <= CPU_NODES  # the GPU node is tainted
    assert all(p.status.phase == "Running" for p in pods)
    web = eventually(
        lambda: (
            (d := apps.read_namespaced_deployment("web", test_namespace)).status.ready_replicas == 2
            and d
        ),
        30,
        "Deployment status readyReplicas=2",
        every=0.1,
    )
    assert web.status.available_replicas == 2


def test_gpu_pod_lands_on_the_gpu_node(kube_api: Any, test_namespace: str) -> None:
    core = client.CoreV1Api(kube_api)
    spec = restricted_pod_spec(_gpu_container(1), tolerations=[GPU_TOLERATION])
    core.create_namespaced_pod(test_namespace, pod("gpu-one", spec))

    def running() -> Any:
        p = core.read_namespaced_pod("gpu-one", test_namespace)
        return p if p.status.phase == "Running" else None

    assert eventually(running, 30, "GPU pod Running", every=0.1).spec.node_name == "pizza-gpu-0"


def test_pod_without_toleration_never_lands_on_the_gpu_node(
    kube_api: Any, test_namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_pod(
        test_namespace, pod("gpu-untolerated", restricted_pod_spec(_gpu_container(1)))
    )

    def unschedulable() -> Any:
        p = core.read_namespaced_pod("gpu-untolerated", test_namespace)
        cond = condition(p, "PodScheduled")
        return cond if cond and cond.status == "False" else None

    cond = eventually(unschedulable, 30, "PodScheduled=False", every=0.1)
    assert cond.reason == "Unschedulable"
    assert "untolerated taint" in cond.message


def test_more_gpus_than_exist_stays_pending_unschedulable(
    kube_api: Any, test_namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    spec = restricted_pod_spec(_gpu_container(3), tolerations=[GPU_TOLERATION])
    core.create_namespaced_pod(test_namespace, pod("gpu-three", spec))

    def unschedulable() -> Any:
        p = core.read_namespaced_pod("gpu-three", test_namespace)
        cond = condition(p, "PodScheduled")
        return (p, cond) if cond and cond.status == "False" else None

    p, cond = eventually(unschedulable, 30, "PodScheduled=False on the 3-GPU pod", every=0.1)
    assert p.status.phase == "Pending"
    assert p.spec.node_name is None
    assert cond.reason == "Unschedulable"
    assert "Insufficient nvidia.com/gpu" in cond.message


def test_kwok_chaos_label_fails_a_running_pod(kube_api: Any, test_namespace: str) -> None:
    core = client.CoreV1Api(kube_api)
    labels = {"app": "crashy", "pod-container-running-failed.stage.kwok.x-k8s.io": "true"}
    core.create_namespaced_pod(test_namespace, pod("crashy", restricted_pod_spec(), labels))

    def failed() -> Any:
        p = core.read_namespaced_pod("crashy", test_namespace)
        return p if p.status.phase == "Failed" else None

    p = eventually(failed, 30, "pod Failed by the kwok chaos stage", every=0.1)
    terminated = p.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 1
