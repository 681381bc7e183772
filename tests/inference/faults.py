"""A real backend wrapped so a test can make it fail or slow down (to exercise the router)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from pizza_inference.backends.base import ModelBackend
from pizza_inference.backends.cnn import CNNBackend


class ControllableBackend(ModelBackend):
    """Delegates to a real INT8 CNN; `mode` = ok | fail | slow (sleeps `delay_s` first) | wrong
    (answers confidently and wrongly: the real probabilities shifted by one class, so the
    predicted class is never the one the real model gives)."""

    kind = "cnn"

    def __init__(self, checkpoint: Path) -> None:
        super().__init__(checkpoint, precision="int8", device="cpu")
        self.inner = CNNBackend(checkpoint, precision="int8", device="cpu")
        self.mode = "ok"
        self.delay_s = 0.0
        self.calls = 0

    def load(self) -> None:
        self.inner.load()
        self.classes = self.inner.classes
        self._loaded = True

    def predict(self, images: Sequence[Image.Image]) -> np.ndarray:
        self.calls += len(images)
        if self.mode == "fail":
            raise RuntimeError("injected model failure")
        if self.mode == "slow":
            time.sleep(self.delay_s)
        if self.mode == "wrong":
            return np.roll(self.inner.predict(images), 1, axis=1)
        return self.inner.predict(images)
