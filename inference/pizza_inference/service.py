"""The operations the HTTP layer calls, independent of protocol, and the typed results they give.

Both the model server's `ModelDataPlane` and the router's `RouterPlane` implement
`InferenceService`, which is why the router serves the same API as a model server. Only the router
has more than one model, so only it implements `ABTesting` (compare the models, the A/B split);
the API answers those endpoints for a one-model server itself. The planes return the dataclasses
below; the API layer (`api/`) alone turns them into HTTP answers (schemas, status codes, time
stamps).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol, runtime_checkable


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


HealthState = Literal["healthy", "loading", "unhealthy", "degraded"]


@dataclass(frozen=True)
class Health:
    """`ready`: a request can be answered now (the API answers 200, else 503)."""

    ready: bool
    status: HealthState
    role: str
    models: dict[str, dict[str, Any]]
    """Per model (the router: per upstream, `primary` and `fallback`), its readiness."""
    mode: str | None = None
    """The router's serving mode; None for a model server."""


@dataclass(frozen=True)
class ServiceStatus:
    role: str
    uptime_seconds: float
    models: dict[str, dict[str, Any]]
    """Per model: available, inference_count, mean_latency_seconds, errors, ..."""
    batching: dict[str, Any] | None = None
    router: dict[str, Any] | None = None


@dataclass(frozen=True)
class ABStatus:
    enabled: bool
    detail: str
    mode: str | None = None
    primary_percent: float | None = None
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)


ONE_MODEL_AB_STATUS = ABStatus(
    enabled=False, detail="a model server serves one model; A/B splits are made by the router"
)
"""What a service without `ABTesting` (a model server) says of A/B testing."""


@dataclass(frozen=True)
class Comparison:
    """Every model's answer to one image; `agreement` only when two or more answered."""

    results: list[Prediction]
    errors: dict[str, str] = field(default_factory=dict)
    agreement: bool | None = None


@dataclass(frozen=True)
class MetricsSummary:
    """The prior system's JSON summary of `/metrics` (`Accept: application/json`)."""

    role: str
    uptime_seconds: float
    models: dict[str, dict[str, Any]]
    memory_usage_bytes: float
    gpu_memory_usage_bytes: float | None = None
    mode: str | None = None


class InferenceService(Protocol):
    role: str

    async def classify(
        self, upload: ImageUpload, *, target: Target, ab_test_group: str | None
    ) -> Prediction: ...

    async def is_ready(self) -> bool: ...

    async def health(self) -> Health: ...

    async def status(self) -> ServiceStatus: ...

    async def models(self) -> list[ModelInfo]: ...

    def metrics_summary(self) -> MetricsSummary: ...


@runtime_checkable
class ABTesting(Protocol):
    """A service with more than one model behind it (the router)."""

    async def compare(self, upload: ImageUpload) -> Comparison: ...

    def ab_status(self) -> ABStatus: ...
