"""The model server's data plane: load + warm-up, then classify through the dynamic batcher."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from pizza_inference import metrics
from pizza_inference.backends.base import ModelBackend
from pizza_inference.batching import DynamicBatcher
from pizza_inference.errors import (
    InferenceFailedError,
    ModelNotReadyError,
    PayloadTooLargeError,
    ServerBusyError,
)
from pizza_inference.images import load_image, open_image
from pizza_inference.memory import (
    DEFAULT_MODEL_BUDGET_BYTES,
    IMAGE_WAIT_SECONDS,
    RETRY_AFTER_SECONDS,
    MemoryPool,
    image_cost,
    memory_limits,
)
from pizza_inference.service import (
    Health,
    HealthState,
    ImageUpload,
    MetricsSummary,
    ModelInfo,
    Prediction,
    ServiceStatus,
    Target,
)

log = logging.getLogger(__name__)

HEALTH_OF_STATE: dict[str, HealthState] = {"ready": "healthy", "loading": "loading"}
"""The health a model state shows (failed: unhealthy)."""

INLINE_DECODE_BYTES = 256 * 1024
INLINE_DECODE_PIXELS = 1_000_000
"""Images up to both sizes (encoded bytes, pixels) are decoded on the event loop; bigger ones on
a thread."""


def warmup_image() -> Image.Image:
    """A deterministic 64x64 RGB gradient used for the warm-up inference."""
    ramp = np.linspace(0, 255, 64, dtype=np.uint8)
    array = np.stack(
        [np.tile(ramp, (64, 1)), np.tile(ramp[:, None], (1, 64)), np.full((64, 64), 128, np.uint8)],
        axis=-1,
    )
    return Image.fromarray(array, "RGB")


@dataclass
class ModelStats:
    inferences: int = 0
    total_seconds: float = 0.0
    errors: int = 0

    def as_dict(self) -> dict[str, Any]:
        mean = self.total_seconds / self.inferences if self.inferences else None
        return {
            "inference_count": self.inferences,
            "mean_latency_seconds": mean,
            "errors": self.errors,
        }


class ModelDataPlane:
    """One model behind a dynamic batcher; ready only after load and a passing warm-up."""

    role = "model"

    def __init__(
        self,
        loader: Callable[[], ModelBackend],
        *,
        model_name: str,
        backend_kind: str,
        source: str,
        max_batch_size: int = 32,
        batch_timeout_s: float = 0.002,
        image_memory_bytes: int | None = None,
    ) -> None:
        """`image_memory_bytes`: the image pool of the memory budget (`memory.MemoryLimits`);
        None: the default budget's."""
        self._loader = loader
        self.model_name = model_name
        self.backend_kind = backend_kind
        self.source = source
        self.backend: ModelBackend | None = None
        self.state = "loading"
        self.error: str | None = None
        self.started = time.time()
        self.stats = ModelStats()
        self._arriving = 0
        """Requests between arrival and joining the batch queue (the batcher waits for them)."""
        self.batcher: DynamicBatcher[Image.Image, np.ndarray] = DynamicBatcher(
            self._predict_batch,
            max_batch_size=max_batch_size,
            timeout_s=batch_timeout_s,
            arriving=lambda: self._arriving,
        )
        if image_memory_bytes is None:
            defaults = memory_limits(
                DEFAULT_MODEL_BUDGET_BYTES, decodes_images=True, batch_images=max_batch_size
            )
            image_memory_bytes = defaults.image_pool_bytes
        self.images = MemoryPool(
            "images",
            image_memory_bytes,
            metrics.memory_pool_observer("images", image_memory_bytes),
        )
        """Decoded images in flight, from just before decoding until their prediction is done
        (those waiting in the batcher's queue included)."""

    # -- lifecycle -------------------------------------------------------------------------
    def load(self) -> None:
        """Loads the model and runs the warm-up; never raises (the state says what happened)."""
        try:
            backend = self._loader()
            if not backend.ready:
                backend.load()
        except Exception as exc:
            self._fail("load", exc)
            return
        try:
            probabilities = backend.predict([warmup_image()])
            if probabilities.shape != (1, len(backend.classes)) or not np.isclose(
                float(probabilities.sum()), 1.0, atol=1e-3
            ):
                raise RuntimeError(f"warm-up produced invalid probabilities {probabilities!r}")
        except Exception as exc:
            self._fail("warmup", exc)
            return
        self.backend = backend
        self.state = "ready"
        log.info(
            "model ready name=%s backend=%s source=%s %s",
            self.model_name,
            self.backend_kind,
            self.source,
            " ".join(f"{k}={v}" for k, v in backend.describe().items()),
        )

    def load_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.load, name="model-load", daemon=True)
        thread.start()
        return thread

    def _fail(self, stage: str, exc: Exception) -> None:
        self.state = "failed"
        self.error = f"{stage} failed: {type(exc).__name__}: {exc}"
        metrics.MODEL_ERRORS.labels(self.model_name, stage).inc()
        log.error(
            "model NOT ready name=%s backend=%s source=%s stage=%s error=%s",
            self.model_name,
            self.backend_kind,
            self.source,
            stage,
            self.error,
        )

    async def stop(self) -> None:
        await self.batcher.stop()

    # -- inference -------------------------------------------------------------------------
    def _predict_batch(self, images: list[Image.Image]) -> Sequence[np.ndarray]:
        assert self.backend is not None
        return list(self.backend.predict(images))

    def _require_ready(self) -> ModelBackend:
        if self.state != "ready" or self.backend is None:
            detail = self.error or "the model is still loading"
            raise ModelNotReadyError(f"model {self.model_name} is not ready: {detail}")
        return self.backend

    async def decode(self, image: Image.Image, encoded_bytes: int) -> Image.Image:
        """The pixels of an opened image (`images.open_image`); big ones on a thread."""
        width, height = image.size
        if encoded_bytes <= INLINE_DECODE_BYTES and width * height <= INLINE_DECODE_PIXELS:
            return load_image(image)
        return await asyncio.to_thread(load_image, image)

    async def hold_image_memory(self, image: Image.Image) -> int:
        """Takes room in the image pool for decoding `image` (waiting behind earlier images at
        most `IMAGE_WAIT_SECONDS`) and returns it; 413 when the pool can never hold it, 503 when
        the wait runs out."""
        width, height = image.size
        cost = image_cost(width, height)
        capacity = self.images.capacity
        if cost > capacity:
            raise PayloadTooLargeError(
                f"the image is {width}x{height} pixels: decoding it takes {cost} bytes, more than"
                f" this server's memory for images ({capacity} bytes) can hold",
                reason="image_too_large",
            )
        if not await self.images.acquire(cost, IMAGE_WAIT_SECONDS):
            metrics.MEMORY_SHED.labels(self.images.name).inc()
            raise ServerBusyError(
                f"the memory for decoded images ({capacity} bytes) stayed in use by the images"
                f" in flight for {IMAGE_WAIT_SECONDS:g} s: retry in {RETRY_AFTER_SECONDS} s",
                retry_after_s=RETRY_AFTER_SECONDS,
            )
        return cost

    async def predict_image(self, image: Image.Image, start: float) -> Prediction:
        backend = self._require_ready()
        try:
            row = await self.batcher.submit(image)
        except Exception as exc:
            self.stats.errors += 1
            metrics.MODEL_ERRORS.labels(self.model_name, "inference").inc()
            log.exception("inference failed model=%s", self.model_name)
            raise InferenceFailedError(
                f"model {self.model_name} failed: {type(exc).__name__}: {exc}"
            ) from exc
        elapsed = time.perf_counter() - start
        self.stats.inferences += 1
        self.stats.total_seconds += elapsed
        metrics.INFERENCES.labels(self.model_name).inc()
        metrics.INFERENCE_DURATION.labels(self.model_name).observe(elapsed)
        return Prediction.from_probabilities(
            backend.classes, row, model_used=self.model_name, inference_time=elapsed
        )

    async def classify(
        self, upload: ImageUpload, *, target: Target = Target.AUTO, ab_test_group: str | None = None
    ) -> Prediction:
        """Classifies one upload. A model server has one model, so `target` does not change it.

        The image's header is read first; its decoded size is held in the image pool from then
        until its prediction is done."""
        start = time.perf_counter()
        self._require_ready()
        opened = open_image(upload.data, upload.content_type)
        cost = await self.hold_image_memory(opened)
        try:
            self._arriving += 1
            try:
                image = await self.decode(opened, len(upload.data))
            finally:
                self._arriving -= 1
            del opened  # its pixels before the conversion to RGB, if it had to be converted
            prediction = await self.predict_image(image, start)
        finally:
            self.images.release(cost)
        prediction.ab_test_group = ab_test_group
        return prediction

    # -- state -----------------------------------------------------------------------------
    async def is_ready(self) -> bool:
        return self.state == "ready"

    def _model_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "available": self.state == "ready",
            "state": self.state,
            "error": self.error,
            "backend": self.backend_kind,
            "source": self.source,
            **self.stats.as_dict(),
        }
        if self.backend is not None:
            entry.update(self.backend.describe())
            entry["classes"] = list(self.backend.classes)
        return entry

    async def health(self) -> Health:
        ready = self.state == "ready"
        return Health(
            ready=ready,
            status=HEALTH_OF_STATE.get(self.state, "unhealthy"),
            role=self.role,
            models={self.model_name: {"loaded": ready, "state": self.state, "error": self.error}},
        )

    async def status(self) -> ServiceStatus:
        return ServiceStatus(
            role=self.role,
            uptime_seconds=time.time() - self.started,
            models={self.model_name: self._model_entry()},
            batching={
                "max_batch_size": self.batcher.max_batch_size,
                "timeout_ms": self.batcher.timeout_s * 1000,
                "image_memory_bytes": self.images.capacity,
                "image_memory_in_use_bytes": self.images.in_use,
            },
        )

    async def models(self) -> list[ModelInfo]:
        backend = self.backend
        return [
            ModelInfo(
                name=self.model_name,
                platform=f"pizza-{self.backend_kind}",
                ready=self.state == "ready",
                classes=backend.classes if backend is not None else (),
                details=self._model_entry(),
            )
        ]

    def metrics_summary(self) -> MetricsSummary:
        return MetricsSummary(
            role=self.role,
            uptime_seconds=time.time() - self.started,
            models={self.model_name: self.stats.as_dict()},
            memory_usage_bytes=metrics.resident_memory_bytes(),
            gpu_memory_usage_bytes=metrics.gpu_memory_bytes(),
        )
