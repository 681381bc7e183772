"""Certificates of the node pieces, signed by the launcher's CA.

* kubelet client: CN=system:node:NAME, O=system:nodes (bound to ClusterRole system:node);
* kubelet serving: the bridge IP (what the apiserver dials, `--kubelet-preferred-address-types=
  InternalIP`) and the node name;
* kube-proxy: CN=system:kube-proxy (the bootstrap system:node-proxier binding);
* CoreDNS: CN=pizza-coredns (its own read-only ClusterRole, see manifests.py);
* the NetworkPolicy engine: CN=pizza-netpol (read-only too).
The apiserver's kubelet client certificate is made with the cluster PKI (certs.CLIENTS).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..certs import KeyPair, Pki, issue_client_cert, issue_serving_cert
from ..kubeconfig import build_kubeconfig, write_kubeconfig
from .layout import RealNode

KUBE_PROXY_USER = "system:kube-proxy"
COREDNS_USER = "pizza-coredns"
NETPOL_USER = "pizza-netpol"


def _write_pair(directory: Path, name: str, pair: KeyPair) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    cert.write_bytes(pair.cert_pem)
    key.write_bytes(pair.key_pem)
    key.chmod(0o600)
    return cert, key


def _client_kubeconfig(pki: Pki, server: str, directory: Path, name: str, pair: KeyPair) -> Path:
    cert, key = _write_pair(directory, name, pair)
    return write_kubeconfig(
        directory / f"{name}.kubeconfig", build_kubeconfig(server, pki.ca_cert, cert, key)
    )


def load_ca(pki: Pki) -> KeyPair:
    return KeyPair(pki.ca_cert.read_bytes(), pki.ca_key.read_bytes())


def write_node_pki(pki: Pki, server: str, node: RealNode) -> Path:
    """Serving pair and client kubeconfig of one kubelet; returns the kubeconfig."""
    ca = load_ca(pki)
    directory = node.state_dir / "pki"
    _write_pair(directory, "kubelet-serving", issue_serving_cert(ca, (node.ip, node.name)))
    client = issue_client_cert(ca, f"system:node:{node.name}", ("system:nodes",))
    return _client_kubeconfig(pki, server, directory, "kubelet", client)


def write_host_pki(pki: Pki, server: str, directory: Path) -> dict[str, Path]:
    """Kubeconfigs of the shared host pieces (kube-proxy, CoreDNS, the NetworkPolicy engine)."""
    ca = load_ca(pki)
    return {
        "kube-proxy": _client_kubeconfig(
            pki, server, directory, "kube-proxy", issue_client_cert(ca, KUBE_PROXY_USER)
        ),
        "coredns": _client_kubeconfig(
            pki, server, directory, "coredns", issue_client_cert(ca, COREDNS_USER)
        ),
        "netpol": _client_kubeconfig(
            pki, server, directory, "netpol", issue_client_cert(ca, NETPOL_USER)
        ),
    }


def node_names(nodes: Sequence[RealNode]) -> list[str]:
    return [n.name for n in nodes]
