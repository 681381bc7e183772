"""The operations the HTTP layer calls, independent of protocol.

Both the model server's `ModelDataPlane` and the router's `RouterPlane` implement
`InferenceService`, which is why the router serves the same API as a model server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class Target(StrEnum):
    """Which model a request asks for: `auto` lets the router decide (primary with fallback)."""

    AUTO = "auto"
    PRIMARY = "primary"
    FALLBACK = "fallback"


@dataclass(frozen=True)
class ImageUpload:
    """The uploaded bytes as received (never copied on the way to a model or a model server)."""

    data: bytes
    content_type: str | None = None
    filename: str | None = None
    raw: bytes | None = None
    """The whole request body the image came in (a multipart form), when it is kept: the router
    forwards it to a model server as it came instead of encoding a new form. None for uploads
    built from decoded bytes (the Open Inference Protocol route); those are sent as a new form."""
    raw_content_type: str | None = None
    """The request's own Content-Type header for `raw`, multipart boundary included."""


@dataclass
class Prediction:
    predicted_class: str
    confidence: float
    probabilities: dict[str, float]
    model_used: str
    inference_time: float
    """Seconds from receiving the image to having its probabilities (batching wait included)."""
    fallback_reason: str | None = None
    ab_test_group: str | None = None

    @classmethod
    def from_probabilities(
        cls, classes: tuple[str, ...], row: Any, *, model_used: str, inference_time: float
    ) -> Prediction:
        probabilities = {c: float(p) for c, p in zip(classes, row, strict=True)}
        best = max(probabilities, key=probabilities.__getitem__)
        return cls(
            predicted_class=best,
            confidence=probabilities[best],
            probabilities=probabilities,
            model_used=model_used,
            inference_time=inference_time,
        )


@dataclass
class ModelInfo:
    name: str
    platform: str
    ready: bool
    classes: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)


class InferenceService(Protocol):
    role: str

    async def classify(
        self, upload: ImageUpload, *, target: Target, ab_test_group: str | None
    ) -> Prediction: ...

    async def compare(self, upload: ImageUpload) -> dict[str, Any]: ...

    async def is_ready(self) -> bool: ...

    async def health(self) -> tuple[bool, dict[str, Any]]: ...

    async def status(self) -> dict[str, Any]: ...

    def ab_status(self) -> dict[str, Any]: ...

    async def models(self) -> list[ModelInfo]: ...

    def metrics_summary(self) -> dict[str, Any]: ...
