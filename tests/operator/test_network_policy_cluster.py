"""The NetworkPolicies against the real API server with a real operator: applied (the server's
dry-run and admission accept what the builder makes), owned, kept as built after a hand edit,
changed with the spec, pruned when disabled; a policy name the user already holds is left alone.

The operator runs as if in namespace `ops` with its chart's labels (PIZZA_OPERATOR_NAMESPACE,
PIZZA_OPERATOR_POD_LABELS), so the policies let its pods in. Enforcement needs real nodes and a
policy engine: tests/e2e/test_network_policy_e2e.py."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.conditions import condition
from tests.support.waiting import eventually

from .helpers import OperatorProcess, apply, kubectl, kubectl_json, pmd_manifest

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

OPERATOR_ENV = {
    "PIZZA_OPERATOR_NAMESPACE": "ops",
    "PIZZA_OPERATOR_POD_LABELS": "app.kubernetes.io/name=pizza-operator,"
    "app.kubernetes.io/component=operator",
}
OPERATOR_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ops"}},
    "podSelector": {
        "matchLabels": {
            "app.kubernetes.io/name": "pizza-operator",
            "app.kubernetes.io/component": "operator",
        }
    },
}
PROMETHEUS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
}
CLIENTS = {
    "podSelector": {"matchExpressions": [{"key": "role", "operator": "In", "values": ["client"]}]}
}


@pytest.fixture(scope="module")
def operator_in_ops(
    crds_installed: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    saved = {k: os.environ.get(k) for k in OPERATOR_ENV}
    os.environ.update(OPERATOR_ENV)
    try:
        proc = OperatorProcess(
            tmp_path_factory.mktemp("operator"), f"test-{uuid.uuid4().hex[:8]}"
        ).start()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    try:
        yield proc
    finally:
        proc.stop()


def _policies(namespace: str, name: str) -> dict[str, dict[str, Any]]:
    data = kubectl_json(
        "get", "networkpolicies", "-n", namespace, "-l", f"app.kubernetes.io/instance={name}"
    )
    return {item["metadata"]["name"]: item for item in data["items"]}


def _rule(namespace: str, policy: str) -> dict[str, Any]:
    rule: dict[str, Any] = kubectl_json("get", "networkpolicy", policy, "-n", namespace)["spec"][
        "ingress"
    ][0]
    return rule


def _patch_spec(namespace: str, name: str, spec: dict[str, Any]) -> None:
    kubectl("patch", "pmd", name, "-n", namespace, "--type=merge", "-p", json.dumps({"spec": spec}))


class TestNetworkPolicies:
    def test_applied_owned_changed_and_pruned(
        self, operator_in_ops: OperatorProcess, test_namespace: str
    ) -> None:
        ns, name = test_namespace, "guarded"
        apply(pmd_manifest(name, ns, networkPolicy={"prometheusFrom": [PROMETHEUS]}))
        kubectl("wait", "--for=condition=Ready", f"pmd/{name}", "-n", ns, "--timeout=90s")

        policies = _policies(ns, name)
        assert sorted(policies) == [f"{name}-fallback", f"{name}-primary", f"{name}-router"]
        uid = kubectl_json("get", "pmd", name, "-n", ns)["metadata"]["uid"]
        for policy in policies.values():
            refs = policy["metadata"]["ownerReferences"]
            assert [(r["uid"], r["controller"]) for r in refs] == [(uid, True)]
        router_pods = {
            "podSelector": {
                "matchLabels": {
                    "app.kubernetes.io/name": "pizza-serve",
                    "app.kubernetes.io/instance": name,
                    "app.kubernetes.io/component": "router",
                }
            }
        }
        for server in ("primary", "fallback"):
            rule = _rule(ns, f"{name}-{server}")
            assert rule["from"] == [router_pods, OPERATOR_PEER, PROMETHEUS]
            assert rule["ports"] == [{"protocol": "TCP", "port": 8001}]
        assert "from" not in _rule(ns, f"{name}-router")  # anyone

        _patch_spec(ns, name, {"networkPolicy": {"routerFrom": [CLIENTS]}})
        eventually(
            lambda: _rule(ns, f"{name}-router").get("from") == [CLIENTS, OPERATOR_PEER, PROMETHEUS],
            timeout=30,
            what="router policy narrowed to routerFrom and the scrapers",
        )

        _patch_spec(ns, name, {"networkPolicy": {"enabled": False}})
        eventually(lambda: _policies(ns, name) == {}, timeout=30, what="policies pruned")
        deployments = kubectl_json(
            "get", "deploy", "-n", ns, "-l", f"app.kubernetes.io/instance={name}"
        )
        assert len(deployments["items"]) == 3  # only the policies went

    def test_hand_edit_is_undone(
        self, operator_in_ops: OperatorProcess, test_namespace: str
    ) -> None:
        ns, name = test_namespace, "edited"
        apply(pmd_manifest(name, ns))
        kubectl("wait", "--for=condition=Ready", f"pmd/{name}", "-n", ns, "--timeout=90s")
        built = _rule(ns, f"{name}-primary")
        open_to_all = '{"spec":{"ingress":[{}]}}'
        patched = kubectl(
            "patch", "networkpolicy", f"{name}-primary", "-n", ns, "--type=merge", "-p",
            open_to_all, "-o", "json",
        )  # fmt: skip
        assert json.loads(patched.stdout)["spec"]["ingress"] == [{}]  # the edit took (at first)
        eventually(
            lambda: _rule(ns, f"{name}-primary") == built,
            timeout=30,
            what="hand-edited policy restored",
        )

    def test_a_users_policy_of_that_name_is_left_alone(
        self, operator_in_ops: OperatorProcess, test_namespace: str
    ) -> None:
        ns, name = test_namespace, "taken"
        users = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": f"{name}-router", "namespace": ns},
            "spec": {"podSelector": {"matchLabels": {"mine": "yes"}}, "policyTypes": ["Ingress"]},
        }
        apply(users)
        apply(pmd_manifest(name, ns))

        def blocked() -> dict[str, Any] | None:
            cond = condition(kubectl_json("get", "pmd", name, "-n", ns), "Ready")
            return cond if cond and cond["reason"] == "NameConflict" else None

        cond = eventually(blocked, timeout=30, what="Ready=False NameConflict")
        assert f"NetworkPolicy {name}-router" in cond["message"]
        kept = kubectl_json("get", "networkpolicy", f"{name}-router", "-n", ns)
        assert kept["spec"]["podSelector"] == {"matchLabels": {"mine": "yes"}}
        assert "ownerReferences" not in kept["metadata"]
