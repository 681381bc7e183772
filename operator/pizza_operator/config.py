"""Operator settings, from the command line."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

CPU_IMAGE = "pizza-serve-cpu:0.1.0"
"""The light server (ONNX Runtime, no torch): the router and models with backend onnx."""
GPU_IMAGE = "pizza-serve-gpu:0.1.0"
"""The torch + transformers server: models with backends cnn, vlm and image-classifier."""
DEFAULT_RESYNC_SECONDS = 60.0
OPERATOR_POD_LABELS = {
    "app.kubernetes.io/name": "pizza-operator",
    "app.kubernetes.io/component": "operator",
}
"""The labels of the operator's pods (chart and manifests) unless PIZZA_OPERATOR_POD_LABELS
says otherwise."""
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


@dataclasses.dataclass(frozen=True)
class OperatorPods:
    """Where the operator's own pods run: the NetworkPolicies let them scrape every component."""

    namespace: str
    labels: Mapping[str, str]


def parse_labels(text: str) -> dict[str, str]:
    """`k=v,k2=v2` as a dict (blank items ignored); ValueError on an item without `=`."""
    labels = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"not a label key=value: {item!r}")
        labels[key.strip()] = value.strip()
    return labels


def operator_pods(
    environ: Mapping[str, str] = os.environ, namespace_file: Path = SERVICE_ACCOUNT_NAMESPACE
) -> OperatorPods | None:
    """The operator's pods, when it runs in a pod: the namespace from PIZZA_OPERATOR_NAMESPACE or
    the service account's namespace file, the labels from PIZZA_OPERATOR_POD_LABELS (`k=v,...`)
    or `OPERATOR_POD_LABELS`. None outside a cluster: the operator then connects from a node,
    which a NetworkPolicy engine lets through (node-local traffic)."""
    namespace = environ.get("PIZZA_OPERATOR_NAMESPACE", "").strip()
    if not namespace:
        try:
            namespace = namespace_file.read_text().strip()
        except OSError:
            return None
    if not namespace:
        return None
    labels = parse_labels(environ.get("PIZZA_OPERATOR_POD_LABELS", "")) or OPERATOR_POD_LABELS
    return OperatorPods(namespace=namespace, labels=dict(labels))


@dataclasses.dataclass(frozen=True)
class OperatorConfig:
    """What the reconcile loop needs to know beyond the resource itself."""

    cpu_image: str = CPU_IMAGE
    gpu_image: str = GPU_IMAGE
    default_image: str = ""  # one image for every component; overrides cpu_image and gpu_image
    resync_seconds: float = DEFAULT_RESYNC_SECONDS
    status_coalesce_seconds: float = 0.3  # child events within this window: one status refresh
    endpoints_settle_seconds: float = 2.0
    """How long Ready still waits once every Service lists a ready endpoint: kube-proxy's
    `minSyncPeriod` (1 s by default), within which each node starts programming a slice change,
    and 1 s for that sync itself (measured on the local cluster: up to 1.2 s from the slices to
    the rules, docs/operator.md)."""
    operator_pods: OperatorPods | None = dataclasses.field(default_factory=operator_pods)
    """The operator's own pods (allowed by the NetworkPolicies); read where it runs by default."""
