"""The `cnn` backend: MicroPizzaNet on CPU, float32 or the real INT8 model (no silent fallback)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pizza_inference.backends.base import ModelBackend, ModelLoadError, check_probabilities
from pizza_inference.cnn.checkpoint import CNNCheckpoint, load_cnn
from pizza_inference.cnn.preprocess import images_to_tensor

CNN_PRECISIONS = ("float32", "int8")


class CNNBackend(ModelBackend):
    kind = "cnn"

    def __init__(self, path: Path, *, precision: str, device: str = "auto") -> None:
        super().__init__(path, precision=precision, device=device)
        self._checkpoint: CNNCheckpoint | None = None

    def load(self) -> None:
        if self.precision not in CNN_PRECISIONS:
            raise ModelLoadError(
                f"the cnn backend serves precision float32 or int8, not {self.precision!r}"
            )
        if self.requested_device == "cuda":
            raise ModelLoadError("the cnn backend runs on CPU only (INT8 kernels are CPU kernels)")
        # MicroPizzaNet is far too small to gain from intra-op threads; one thread leaves the other
        # cores to the HTTP server instead of spinning OpenMP workers against it.
        torch.set_num_threads(1)
        checkpoint = load_cnn(self.path, self.precision)
        if checkpoint.precision != self.precision:
            raise ModelLoadError(
                f"asked for {self.precision}, the loader returned {checkpoint.precision}"
            )
        self._checkpoint = checkpoint
        self.classes = tuple(checkpoint.classes)
        self.device = "cpu"
        self._loaded = True

    @property
    def checkpoint(self) -> CNNCheckpoint:
        if self._checkpoint is None:
            raise RuntimeError("model not loaded")
        return self._checkpoint

    def predict(self, images: Sequence[Image.Image]) -> np.ndarray:
        checkpoint = self.checkpoint
        batch = images_to_tensor(images, checkpoint.normalization, size=checkpoint.input_size)
        with torch.inference_mode():
            logits = checkpoint.model(batch)
            probabilities = torch.softmax(logits.float(), dim=1).numpy()
        return check_probabilities(probabilities, len(images), len(self.classes))

    def describe(self) -> dict[str, str]:
        info = super().describe()
        if self._checkpoint is not None:
            engine = self._checkpoint.metadata.get("quantization", {}).get("engine")
            if self.precision == "int8" and engine:
                info["quantized_engine"] = str(engine)
        return info
