"""The `image-classifier` backend: any transformers `AutoModelForImageClassification` folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from pizza_inference.backends.base import (
    ModelBackend,
    ModelLoadError,
    check_probabilities,
    pick_device,
)

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class ImageClassifierBackend(ModelBackend):
    kind = "image-classifier"

    def __init__(self, path: Path, *, precision: str, device: str = "auto") -> None:
        super().__init__(path, precision=precision, device=device)
        self._model: Any = None
        self._processor: Any = None
        self._dtype = torch.float32

    def load(self) -> None:
        from transformers import AutoImageProcessor, AutoModelForImageClassification  # noqa: PLC0415

        if self.precision not in DTYPES:
            raise ModelLoadError(
                "the image-classifier backend serves float32, float16 or bfloat16,"
                f" not {self.precision!r}"
            )
        device = pick_device(self.requested_device)
        dtype = DTYPES[self.precision]
        if device == "cpu" and dtype != torch.float32:
            raise ModelLoadError(f"{self.precision} needs CUDA; use float32 on CPU")
        processor = AutoImageProcessor.from_pretrained(self.path)  # type: ignore[no-untyped-call]
        model = AutoModelForImageClassification.from_pretrained(self.path, dtype=dtype)
        model.to(device).eval()
        id2label = model.config.id2label
        self.classes = tuple(str(id2label[i]) for i in range(len(id2label)))
        self._model, self._processor = model, processor
        self._dtype, self.device = dtype, device
        self._loaded = True

    def predict(self, images: Sequence[Image.Image]) -> np.ndarray:
        if self._model is None:
            raise RuntimeError("model not loaded")
        inputs = self._processor(images=list(images), return_tensors="pt")
        pixel_values = inputs["pixel_values"].to(self.device, self._dtype)
        with torch.inference_mode():
            logits = self._model(pixel_values=pixel_values).logits
            probabilities = torch.softmax(logits.float(), dim=-1).cpu().numpy()
        return check_probabilities(probabilities, len(images), len(self.classes))
