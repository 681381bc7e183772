"""Create, update, self-heal and delete against the real API server, with a real operator.

The namespaces (from the `test_namespace` fixture) enforce Pod Security "restricted", so every
pod these tests see was admitted under it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.conditions import condition, is_true
from tests.support.waiting import eventually

from .helpers import OperatorProcess, apply, children, events, kubectl, kubectl_json, pmd_manifest

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

GPU_NODE = "pizza-gpu-0"
CPU_NODES = {"pizza-cpu-0", "pizza-cpu-1"}


def _create_ready(namespace: str, name: str = "pizza-classifier", **spec: Any) -> None:
    apply(pmd_manifest(name, namespace, **spec))
    kubectl("wait", "--for=condition=Ready", f"pmd/{name}", "-n", namespace, "--timeout=90s")


def _pods(namespace: str, name: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kubectl_json(
        "get", "pods", "-n", namespace, "-l", f"app.kubernetes.io/instance={name}"
    )["items"]
    return items


class TestCreate:
    def test_children_pods_and_ready(self, operator: OperatorProcess, test_namespace: str) -> None:
        ns, name = test_namespace, "pizza-classifier"
        _create_ready(ns, name)

        kids = children(ns, name)
        assert sorted(kids) == sorted(
            [
                f"Deployment/{name}-primary",
                f"Deployment/{name}-fallback",
                f"Deployment/{name}-router",
                f"Service/{name}",
                f"Service/{name}-primary",
                f"Service/{name}-fallback",
                f"PodDisruptionBudget/{name}-fallback",
                f"PodDisruptionBudget/{name}-router",
            ]
        )
        uid = kubectl_json("get", "pmd", name, "-n", ns)["metadata"]["uid"]
        for kid in kids.values():
            refs = kid["metadata"]["ownerReferences"]
            assert [(r["uid"], r["controller"]) for r in refs] == [(uid, True)]
            labels = kid["metadata"]["labels"]
            for key in ("name", "instance", "component", "managed-by"):
                assert labels[f"app.kubernetes.io/{key}"]
            managers = {m["manager"] for m in kid["metadata"]["managedFields"]}
            assert "pizza-operator" in managers

        pods = _pods(ns, name)
        by_component: dict[str, list[dict[str, Any]]] = {}
        for pod in pods:
            component = pod["metadata"]["labels"]["app.kubernetes.io/component"]
            by_component.setdefault(component, []).append(pod)
        assert {k: len(v) for k, v in by_component.items()} == {
            "primary": 1,
            "fallback": 2,
            "router": 2,
        }
        assert all(is_true(p, "Ready") for p in pods)
        assert {p["spec"]["nodeName"] for p in by_component["primary"]} == {GPU_NODE}
        cpu_pods = by_component["fallback"] + by_component["router"]
        assert {p["spec"]["nodeName"] for p in cpu_pods} <= CPU_NODES

        body = kubectl_json("get", "pmd", name, "-n", ns)
        status = body["status"]
        assert status["observedGeneration"] == body["metadata"]["generation"]
        assert status["mode"] == "primary"
        assert {c["type"]: c["status"] for c in status["conditions"]} == {
            "Ready": "True",
            "PrimaryAvailable": "True",
            "FallbackAvailable": "True",
            "Progressing": "False",
            "Degraded": "False",
        }
        for cond in status["conditions"]:
            assert cond["lastTransitionTime"] and cond["reason"]
            assert cond["observedGeneration"] == body["metadata"]["generation"]

        reasons = {e["reason"] for e in events(ns, name)}
        assert {"Created", "Ready"} <= reasons

    def test_printer_columns_and_metrics(
        self, operator: OperatorProcess, test_namespace: str
    ) -> None:
        ns, name = test_namespace, "columns"
        _create_ready(ns, name)
        table = kubectl("get", "pmd", name, "-n", ns).stdout.splitlines()
        assert table[0].split() == [
            "NAME",
            "MODE",
            "READY",
            "PRIMARY",
            "FALLBACK",
            "ERROR-RATE",
            "AGE",
        ]
        row = table[1].split()
        assert row[:5] == [name, "primary", "True", "1/1", "2/2"]

        assert operator.metric("pizza_operator_mode", namespace=ns, name=name, mode="primary") == 1
        assert operator.metric("pizza_operator_mode", namespace=ns, name=name, mode="stable") == 0
        assert operator.metric("pizza_operator_reconciles_total", kind="full", result="ok") >= 1
        assert operator.metric("pizza_operator_reconcile_duration_seconds_count", kind="full") >= 1

    def test_every_pod_admitted_under_restricted(
        self, operator: OperatorProcess, test_namespace: str
    ) -> None:
        ns = test_namespace
        labels = kubectl_json("get", "namespace", ns)["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        _create_ready(ns, "restricted")
        replicasets = kubectl_json("get", "rs", "-n", ns)["items"]
        assert replicasets
        for rs in replicasets:
            failures = [
                c
                for c in rs.get("status", {}).get("conditions", [])
                if c["type"] == "ReplicaFailure"
            ]
            assert failures == [], failures
            assert rs["status"].get("replicas", 0) == rs["spec"]["replicas"]


class TestUpdate:
    def test_changing_the_primary_model_rolls_the_primary(
        self, operator: OperatorProcess, test_namespace: str
    ) -> None:
        ns, name = test_namespace, "rolling"
        _create_ready(ns, name, rollout={"strategy": "AllAtOnce"})  # the canary: test_rollout_*
        before = children(ns, name)
        patch = {"spec": {"primary": {"model": {"name": "spatial-mllm-v2"}}}}
        kubectl("patch", "pmd", name, "-n", ns, "--type=merge", "-p", json.dumps(patch))

        def rolled() -> bool:
            dep = kubectl_json("get", "deploy", f"{name}-primary", "-n", ns)
            env = {
                e["name"]: e["value"]
                for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]
            }
            return bool(env["PIZZA_MODEL_NAME"] == "spatial-mllm-v2")

        eventually(rolled, timeout=30, what="primary Deployment updated", ignoring=AssertionError)
        kubectl("rollout", "status", f"deploy/{name}-primary", "-n", ns, "--timeout=60s")
        kubectl("wait", "--for=condition=Ready", f"pmd/{name}", "-n", ns, "--timeout=60s")
        after = children(ns, name)
        primary = f"Deployment/{name}-primary"
        assert after[primary]["metadata"]["generation"] > before[primary]["metadata"]["generation"]
        revision = "deployment.kubernetes.io/revision"
        assert after[primary]["metadata"]["annotations"][revision] == "2"
        # nothing else was touched: other Deployments keep their generation, Services their version
        for key, old in before.items():
            new = after[key]["metadata"]
            if key.startswith("Deployment/") and key != primary:
                assert new["generation"] == old["metadata"]["generation"], key
            if key.startswith("Service/"):
                assert new["resourceVersion"] == old["metadata"]["resourceVersion"], key
        body = kubectl_json("get", "pmd", name, "-n", ns)
        assert body["status"]["observedGeneration"] == body["metadata"]["generation"] == 2


class TestSelfHealing:
    def test_hand_deleted_children_come_back(
        self, operator: OperatorProcess, test_namespace: str
    ) -> None:
        ns, name = test_namespace, "healing"
        _create_ready(ns, name)
        before = children(ns, name)
        kubectl("delete", "deploy", f"{name}-fallback", "-n", ns, "--wait=false")
        kubectl("delete", "svc", name, "-n", ns, "--wait=false")
        kubectl("delete", "pdb", f"{name}-router", "-n", ns, "--wait=false")

        def restored() -> bool:
            now = children(ns, name)
            return sorted(now) == sorted(before) and all(
                now[k]["metadata"]["uid"] != before[k]["metadata"]["uid"]
                for k in (
                    f"Deployment/{name}-fallback",
                    f"Service/{name}",
                    f"PodDisruptionBudget/{name}-router",
                )
            )

        eventually(restored, timeout=30, what="deleted children recreated", ignoring=AssertionError)
        kubectl("wait", "--for=condition=Ready", f"pmd/{name}", "-n", ns, "--timeout=60s")
        assert "Restored" in {e["reason"] for e in events(ns, name)}

    def test_hand_edited_children_are_reverted(
        self, operator: OperatorProcess, test_namespace: str
    ) -> None:
        ns, name = test_namespace, "edited"
        _create_ready(ns, name)
        kubectl("scale", "deploy", f"{name}-router", "-n", ns, "--replicas=5")
        patch = [{"op": "replace", "path": "/spec/ports/0/port", "value": 9999}]
        kubectl("patch", "svc", f"{name}-primary", "-n", ns, "--type=json", "-p", json.dumps(patch))

        def reverted() -> bool:
            dep = kubectl_json("get", "deploy", f"{name}-router", "-n", ns)
            svc = kubectl_json("get", "svc", f"{name}-primary", "-n", ns)
            return bool(dep["spec"]["replicas"] == 2 and svc["spec"]["ports"][0]["port"] == 8001)

        eventually(reverted, timeout=30, what="hand edits reverted", ignoring=AssertionError)


class TestInvalidSpec:
    def test_operator_only_problem_is_reported_without_children(
        self, operator: OperatorProcess, test_namespace: str
    ) -> None:
        ns, name = test_namespace, "too-greedy"
        manifest = pmd_manifest(name, ns)
        manifest["spec"]["fallback"]["resources"] = {
            "requests": {"memory": "2Gi"},
            "limits": {"memory": "1Gi"},
        }
        apply(manifest)  # the API server accepts it: only the operator can compare quantities

        def reported() -> dict[str, Any] | None:
            cond = condition(kubectl_json("get", "pmd", name, "-n", ns), "Ready")
            return cond if cond and cond["reason"] == "InvalidSpec" else None

        cond = eventually(
            reported, timeout=30, what="Ready=False InvalidSpec", ignoring=AssertionError
        )
        assert cond["status"] == "False"
        assert "spec.fallback.resources.requests.memory" in cond["message"]
        warnings = [e for e in events(ns, name) if e["reason"] == "InvalidSpec"]
        assert warnings and warnings[0]["type"] == "Warning"
        assert children(ns, name) == {}

    def test_api_server_refusal_of_a_child_builds_nothing(
        self, operator: OperatorProcess, test_namespace: str
    ) -> None:
        ns, name = test_namespace, "bad-selector"
        manifest = pmd_manifest(name, ns)
        manifest["spec"]["fallback"]["nodeSelector"] = {"not a valid label key!": "x"}
        apply(manifest)

        def reported() -> dict[str, Any] | None:
            cond = condition(kubectl_json("get", "pmd", name, "-n", ns), "Ready")
            return cond if cond and cond["reason"] == "InvalidSpec" else None

        cond = eventually(
            reported, timeout=30, what="Ready=False InvalidSpec", ignoring=AssertionError
        )
        assert "nodeSelector" in cond["message"]
        assert children(ns, name) == {}

        # fixing the spec builds everything
        fixed = pmd_manifest(name, ns)
        apply(fixed)
        kubectl("wait", "--for=condition=Ready", f"pmd/{name}", "-n", ns, "--timeout=90s")
        assert len(children(ns, name)) == 8


class TestDelete:
    def test_deleting_the_resource_collects_its_children(
        self, operator: OperatorProcess, test_namespace: str
    ) -> None:
        ns, name = test_namespace, "doomed"
        _create_ready(ns, name)
        assert children(ns, name)
        kubectl("delete", "pmd", name, "-n", ns, "--wait=true", "--timeout=60s")
        eventually(
            lambda: children(ns, name) == {},
            timeout=60,
            what="children collected",
            ignoring=AssertionError,
        )
        eventually(
            lambda: _pods(ns, name) == [],
            timeout=60,
            what="pods collected",
            ignoring=AssertionError,
        )
        assert operator.metric("pizza_operator_mode", namespace=ns, name=name) == 0
