"""NetworkPolicies: who may connect to each component's pods (ingress only, the serving port).

* primary and fallback (NAME-primary, NAME-fallback): their own router's pods, the operator's
  pods and `spec.networkPolicy.prometheusFrom`;
* router (NAME-router): anyone when `routerFrom` is empty, else `routerFrom`, the operator's
  pods and `prometheusFrom` (the analysis scrapes the router's /metrics).

Egress is not restricted. Traffic from a node itself (kubelet probes, a host process) is let
through by the policy engines; `docs/security.md` says what is left to a mesh.
"""

from __future__ import annotations

from typing import Any

from pizza_operator.api.v1alpha1 import NetworkPeer, PizzaModelDeployment
from pizza_operator.builders.naming import (
    COMPONENTS,
    PORT,
    Component,
    child_name,
    labels,
    selector_labels,
)
from pizza_operator.config import OperatorPods

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
"""Set by the API server on every namespace: selects one namespace by name."""


def operator_peer(pods: OperatorPods) -> dict[str, Any]:
    """The operator's pods: their labels in their namespace."""
    return {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: pods.namespace}},
        "podSelector": {"matchLabels": dict(pods.labels)},
    }


def _peers(peers: list[NetworkPeer]) -> list[dict[str, Any]]:
    return [peer.to_wire() for peer in peers]


def scrapers(pmd: PizzaModelDeployment, operator: OperatorPods | None) -> list[dict[str, Any]]:
    """Who reads /metrics: the operator's pods (None: it runs outside the cluster, on a node)
    and the resource's prometheusFrom."""
    own = [operator_peer(operator)] if operator is not None else []
    return [*own, *_peers(pmd.spec.network_policy.prometheus_from)]


def allowed_from(
    pmd: PizzaModelDeployment, component: Component, operator: OperatorPods | None
) -> list[dict[str, Any]] | None:
    """The peers that may connect to `component`'s pods; None: anyone."""
    if component == "router":
        router_from = pmd.spec.network_policy.router_from
        if not router_from:
            return None
        return [*_peers(router_from), *scrapers(pmd, operator)]
    router = {"podSelector": {"matchLabels": selector_labels(pmd, "router")}}
    return [router, *scrapers(pmd, operator)]


def build_network_policy(
    pmd: PizzaModelDeployment, component: Component, operator: OperatorPods | None
) -> dict[str, Any]:
    """Ingress to `component`'s pods on the serving port, from `allowed_from` only."""
    rule: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": PORT}]}
    peers = allowed_from(pmd, component, operator)
    if peers is not None:
        rule["from"] = peers
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": child_name(pmd, component),
            "namespace": pmd.metadata.namespace,
            "labels": labels(pmd, component),
        },
        "spec": {
            "podSelector": {"matchLabels": selector_labels(pmd, component)},
            "policyTypes": ["Ingress"],
            "ingress": [rule],
        },
    }


def build_network_policies(
    pmd: PizzaModelDeployment, operator: OperatorPods | None
) -> list[dict[str, Any]]:
    """One NetworkPolicy per component; none when `spec.networkPolicy.enabled` is false."""
    if not pmd.spec.network_policy.enabled:
        return []
    return [build_network_policy(pmd, component, operator) for component in COMPONENTS]
