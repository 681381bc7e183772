"""The NetworkPolicy builder and where the operator finds its own pods, without a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pizza_operator.api.v1alpha1 import PizzaModelDeployment
from pizza_operator.builders import build_children
from pizza_operator.builders.deployments import (
    build_fallback_deployment,
    build_primary_deployment,
    build_router_deployment,
)
from pizza_operator.builders.naming import Component
from pizza_operator.builders.network import build_network_policies, build_network_policy
from pizza_operator.config import OPERATOR_POD_LABELS, OperatorPods, operator_pods, parse_labels

pytestmark = pytest.mark.unit
IMAGE = "registry.example/pizza:1"
IMAGES: dict[Component, str] = {"primary": IMAGE, "fallback": IMAGE, "router": IMAGE}
OPERATOR = OperatorPods("pizza-system", {"app.kubernetes.io/name": "pizza-operator"})
OPERATOR_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "pizza-system"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "pizza-operator"}},
}
PROMETHEUS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
}
CLIENTS = {"podSelector": {"matchLabels": {"role": "client"}}}
DEPLOYMENTS = {
    "primary": build_primary_deployment,
    "fallback": build_fallback_deployment,
    "router": build_router_deployment,
}


def _pod_labels(pmd: PizzaModelDeployment, component: Component) -> dict[str, str]:
    labels: dict[str, str] = DEPLOYMENTS[component](pmd, IMAGE, "primary")["spec"]["template"][
        "metadata"
    ]["labels"]
    return labels


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return selector["matchLabels"].items() <= labels.items() and not selector.get(
        "matchExpressions"
    )


def _with_policy(body: dict[str, Any], **policy: Any) -> PizzaModelDeployment:
    body["spec"]["networkPolicy"] = policy
    return PizzaModelDeployment.from_body(body)


class TestBuildNetworkPolicy:
    def test_one_per_component_named_and_labelled_like_its_pods(
        self, pmd: PizzaModelDeployment
    ) -> None:
        policies = build_network_policies(pmd, OPERATOR)
        assert [p["metadata"]["name"] for p in policies] == [
            "pizza-classifier-primary",
            "pizza-classifier-fallback",
            "pizza-classifier-router",
        ]
        for policy, component in zip(policies, ("primary", "fallback", "router"), strict=True):
            assert policy["apiVersion"] == "networking.k8s.io/v1"
            assert policy["metadata"]["namespace"] == "pizzas"
            assert policy["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "pizza-operator"
            assert _selects(policy["spec"]["podSelector"], _pod_labels(pmd, component))
            others = {"primary", "fallback", "router"} - {component}
            for other in others:
                assert not _selects(policy["spec"]["podSelector"], _pod_labels(pmd, other))  # type: ignore[arg-type]
            assert policy["spec"]["policyTypes"] == ["Ingress"]  # egress is not restricted

    @pytest.mark.parametrize("component", ["primary", "fallback"])
    def test_model_servers_take_only_their_router_and_the_scrapers(
        self, body: dict[str, Any], component: Component
    ) -> None:
        pmd = _with_policy(body, prometheusFrom=[PROMETHEUS])
        (rule,) = build_network_policy(pmd, component, OPERATOR)["spec"]["ingress"]
        assert rule["ports"] == [{"protocol": "TCP", "port": 8001}]
        router, operator, prometheus = rule["from"]
        assert set(router) == {"podSelector"}  # this namespace only
        assert _selects(router["podSelector"], _pod_labels(pmd, "router"))
        assert not _selects(router["podSelector"], _pod_labels(pmd, component))
        assert operator == OPERATOR_PEER
        assert prometheus == PROMETHEUS

    def test_another_resources_router_is_not_let_in(self, body: dict[str, Any]) -> None:
        ours = PizzaModelDeployment.from_body(body)
        body["metadata"]["name"] = "pizza-classifier-b"
        theirs = PizzaModelDeployment.from_body(body)
        router = build_network_policy(ours, "primary", None)["spec"]["ingress"][0]["from"][0]
        assert not _selects(router["podSelector"], _pod_labels(theirs, "router"))

    def test_router_is_open_to_anyone_by_default(self, pmd: PizzaModelDeployment) -> None:
        (rule,) = build_network_policy(pmd, "router", OPERATOR)["spec"]["ingress"]
        assert "from" not in rule  # no peers: every source
        assert rule["ports"] == [{"protocol": "TCP", "port": 8001}]

    def test_router_from_restricts_and_still_lets_the_scrapers_in(
        self, body: dict[str, Any]
    ) -> None:
        pmd = _with_policy(body, routerFrom=[CLIENTS], prometheusFrom=[PROMETHEUS])
        (rule,) = build_network_policy(pmd, "router", OPERATOR)["spec"]["ingress"]
        assert rule["from"] == [CLIENTS, OPERATOR_PEER, PROMETHEUS]

    def test_operator_outside_the_cluster_needs_no_peer(self, pmd: PizzaModelDeployment) -> None:
        (rule,) = build_network_policy(pmd, "fallback", None)["spec"]["ingress"]
        assert len(rule["from"]) == 1  # the router only: a node's own traffic is let through

    def test_selectors_with_expressions_pass_through(self, body: dict[str, Any]) -> None:
        peer = {
            "namespaceSelector": {},
            "podSelector": {"matchExpressions": [{"key": "tier", "operator": "Exists"}]},
        }
        pmd = _with_policy(body, routerFrom=[peer])
        rule = build_network_policy(pmd, "router", None)["spec"]["ingress"][0]
        assert rule["from"] == [peer]

    def test_disabled_builds_none(self, body: dict[str, Any]) -> None:
        pmd = _with_policy(body, enabled=False)
        assert build_network_policies(pmd, OPERATOR) == []
        kinds = {c["kind"] for c in build_children(pmd, IMAGES, "primary", OPERATOR)}
        assert "NetworkPolicy" not in kinds

    def test_applied_before_any_pod_they_guard(self, pmd: PizzaModelDeployment) -> None:
        kinds = [c["kind"] for c in build_children(pmd, IMAGES, "primary", OPERATOR)]
        last_policy = max(i for i, k in enumerate(kinds) if k == "NetworkPolicy")
        assert last_policy < kinds.index("Deployment")
        assert kinds.count("NetworkPolicy") == 3

    def test_pure(self, pmd: PizzaModelDeployment) -> None:
        assert build_network_policies(pmd, OPERATOR) == build_network_policies(pmd, OPERATOR)


class TestOperatorPods:
    def test_namespace_from_the_service_account(self, tmp_path: Path) -> None:
        namespace_file = tmp_path / "namespace"
        namespace_file.write_text("pizza-system\n")
        pods = operator_pods({}, namespace_file)
        assert pods == OperatorPods("pizza-system", OPERATOR_POD_LABELS)

    def test_environment_overrides(self, tmp_path: Path) -> None:
        environ = {
            "PIZZA_OPERATOR_NAMESPACE": "ops",
            "PIZZA_OPERATOR_POD_LABELS": "app.kubernetes.io/name=op, app.kubernetes.io/instance=x",
        }
        pods = operator_pods(environ, tmp_path / "absent")
        assert pods == OperatorPods(
            "ops", {"app.kubernetes.io/name": "op", "app.kubernetes.io/instance": "x"}
        )

    def test_outside_a_cluster_there_are_none(self, tmp_path: Path) -> None:
        assert operator_pods({}, tmp_path / "absent") is None

    def test_bad_labels_are_refused(self) -> None:
        assert parse_labels("") == {}
        with pytest.raises(ValueError, match="key=value"):
            parse_labels("a=b,oops")
