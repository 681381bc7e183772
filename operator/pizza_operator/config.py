"""Operator settings, from the command line."""

from __future__ import annotations

import dataclasses

CPU_IMAGE = "pizza-serve-cpu:0.1.0"
"""The light server (ONNX Runtime, no torch): the router and models with backend onnx."""
GPU_IMAGE = "pizza-serve-gpu:0.1.0"
"""The torch + transformers server: models with backends cnn, vlm and image-classifier."""
DEFAULT_RESYNC_SECONDS = 60.0


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
