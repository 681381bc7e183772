"""API objects the real nodes need (pure builders): RBAC, kube-dns, the apiserver endpoint."""

from __future__ import annotations

from typing import Any

from ..certs import CLIENTS
from .layout import APISERVER_FORWARD_PORT, DNS_SERVICE_IP, RealNode
from .pki import COREDNS_USER, NETPOL_USER

MANAGED_BY = "pizza-devcluster"


def _binding(name: str, role: str, kind: str, subject: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": subject}],
    }


def rbac() -> list[tuple[str, dict[str, Any]]]:
    """(collection path, object) pairs. The apiserver authorizes with RBAC only (no Node
    authorizer), so the node group gets the bootstrap system:node role."""
    kubelet_client_user = CLIENTS["apiserver-kubelet-client"][0]
    coredns_role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "pizza-coredns"},
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["endpoints", "services", "pods", "namespaces"],
                "verbs": ["list", "watch"],
            },
            {
                "apiGroups": ["discovery.k8s.io"],
                "resources": ["endpointslices"],
                "verbs": ["list", "watch"],
            },
        ],
    }
    netpol_role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "pizza-netpol"},
        "rules": [
            {"apiGroups": [""], "resources": ["pods", "namespaces"], "verbs": ["list", "watch"]},
            {
                "apiGroups": ["networking.k8s.io"],
                "resources": ["networkpolicies"],
                "verbs": ["list", "watch"],
            },
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]},
        ],
    }
    roles = "/apis/rbac.authorization.k8s.io/v1/clusterroles"
    bindings = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"
    return [
        (bindings, _binding("pizza-system-nodes", "system:node", "Group", "system:nodes")),
        (roles, coredns_role),
        (bindings, _binding("pizza-coredns", "pizza-coredns", "User", COREDNS_USER)),
        (roles, netpol_role),
        (bindings, _binding("pizza-netpol", "pizza-netpol", "User", NETPOL_USER)),
        (
            bindings,
            _binding(
                "pizza-apiserver-kubelet-client",
                "system:kubelet-api-admin",
                "User",
                kubelet_client_user,
            ),
        ),
    ]


def _slice(
    name: str, namespace: str, service: str, address: str, ports: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "kubernetes.io/service-name": service,
                "endpointslice.kubernetes.io/managed-by": MANAGED_BY,
            },
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        "ports": ports,
    }


def services(first: RealNode) -> list[tuple[str, dict[str, Any]]]:
    """kube-dns (10.0.0.10) backed by the host CoreDNS, and the `kubernetes` Service backed by
    the forwarder on the first bridge (the apiserver itself listens on 127.0.0.1 only and
    reconciles no endpoints)."""
    dns_ports = [
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
    ]
    kube_dns = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system"},
        "spec": {
            "clusterIP": DNS_SERVICE_IP,
            "ports": [{**p, "targetPort": 53} for p in dns_ports],
        },
    }
    slices = "/apis/discovery.k8s.io/v1/namespaces/{}/endpointslices"
    return [
        ("/api/v1/namespaces/kube-system/services", kube_dns),
        (
            slices.format("kube-system"),
            _slice("kube-dns-host", "kube-system", "kube-dns", first.ip, dns_ports),
        ),
        (
            slices.format("default"),
            _slice(
                "kubernetes-host",
                "default",
                "kubernetes",
                first.ip,
                [{"name": "https", "port": APISERVER_FORWARD_PORT, "protocol": "TCP"}],
            ),
        ),
    ]


def gpu_capacity_patch(node: RealNode) -> list[dict[str, str]]:
    """JSON patch for /api/v1/nodes/NAME/status advertising the node's extended resources
    ("Advertise Extended Resources for a Node"); the kubelet copies them into allocatable."""
    return [
        {"op": "add", "path": f"/status/capacity/{name.replace('/', '~1')}", "value": value}
        for name, value in node.extended.items()
    ]
