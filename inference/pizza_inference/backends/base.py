"""What every model backend offers: `load()`, `ready` and `predict()`, nothing about HTTP."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

PRECISIONS = ("float32", "float16", "bfloat16", "int8")
DEVICES = ("auto", "cpu", "cuda")


class ModelLoadError(RuntimeError):
    """The model cannot be loaded as configured (missing files, wrong precision, no CUDA...)."""


class ModelBackend(ABC):
    """A classifier over a fixed list of classes.

    `predict` takes decoded RGB images and returns an (N, C) float32 array of probabilities
    (rows sum to 1) computed from the model's output, in the order of `classes`.
    """

    kind: str = "base"

    def __init__(self, path: Path, *, precision: str, device: str = "auto") -> None:
        if precision not in PRECISIONS:
            raise ModelLoadError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}"
            )
        if device not in DEVICES:
            raise ModelLoadError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
        self.path = Path(path)
        self.precision = precision
        self.requested_device = device
        self.device = "cpu"
        self.classes: tuple[str, ...] = ()
        self._loaded = False

    @property
    def ready(self) -> bool:
        """True once `load()` has succeeded."""
        return self._loaded

    @abstractmethod
    def load(self) -> None:
        """Loads the weights; raises `ModelLoadError` (or the library's error) when it cannot."""

    @abstractmethod
    def predict(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(N, len(classes)) probabilities for N images."""

    def describe(self) -> dict[str, str]:
        return {
            "backend": self.kind,
            "precision": self.precision,
            "device": self.device,
            "path": str(self.path),
        }


def pick_device(requested: str) -> str:
    """'cuda' when asked for (error without CUDA) or when 'auto' finds it, else 'cpu'."""
    import torch  # noqa: PLC0415

    if requested == "cuda":
        if not torch.cuda.is_available():
            raise ModelLoadError("device cuda requested but CUDA is not available")
        return "cuda"
    if requested == "auto" and torch.cuda.is_available():
        return "cuda"
    return "cpu"


def check_probabilities(probabilities: np.ndarray, n: int, c: int) -> np.ndarray:
    """Checks the shape and that rows are finite probabilities; returns float32."""
    if probabilities.shape != (n, c):
        raise RuntimeError(f"model produced shape {probabilities.shape}, expected {(n, c)}")
    if not np.all(np.isfinite(probabilities)):
        raise RuntimeError("model produced non-finite probabilities")
    return probabilities.astype(np.float32, copy=False)
