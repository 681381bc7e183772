"""Pydantic request/response models of the HTTP API (they make the OpenAPI schema)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from pizza_inference.service import Prediction


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


class ErrorResponse(BaseModel):
    error: str = Field(description="machine-readable reason, e.g. not_an_image, file_too_large")
    detail: str = Field(description="human-readable explanation")


class ClassifyResponse(BaseModel):
    """The prior system's response fields, plus `fallback_reason` when the router fell back."""

    predicted_class: str
    confidence: float = Field(description="probability of predicted_class, from the model output")
    probabilities: dict[str, float] | None = Field(
        default=None, description="probability per class (when return_probabilities is true)"
    )
    model_used: str = Field(
        description="name of the model that answered, e.g. spatial-mllm, standard-cnn"
    )
    inference_time: float = Field(description="seconds spent on this image (queueing included)")
    ab_test_group: str | None = None
    timestamp: str
    fallback_reason: str | None = Field(
        default=None,
        description="why the router answered from the fallback: error, timeout, circuit_open, "
        "unavailable, mode_stable, mode_emergency, ab_test, requested",
    )

    @classmethod
    def from_prediction(
        cls, p: Prediction, *, return_probabilities: bool = True
    ) -> ClassifyResponse:
        return cls(**classify_fields(p, return_probabilities))


def classify_fields(p: Prediction, return_probabilities: bool = True) -> dict[str, Any]:
    """A classify answer's fields in `ClassifyResponse`'s order (also the fast path's answer)."""
    return {
        "predicted_class": p.predicted_class,
        "confidence": p.confidence,
        "probabilities": p.probabilities if return_probabilities else None,
        "model_used": p.model_used,
        "inference_time": p.inference_time,
        "ab_test_group": p.ab_test_group,
        "timestamp": now_iso(),
        "fallback_reason": p.fallback_reason,
    }


class HealthResponse(BaseModel):
    status: Literal["healthy", "loading", "unhealthy", "degraded"]
    role: str
    models: dict[str, dict[str, Any]]
    timestamp: str
    mode: str | None = None


class StatusResponse(BaseModel):
    role: str
    uptime_seconds: float
    models: dict[str, dict[str, Any]] = Field(
        description="per model: available, inference_count, mean_latency_seconds, errors, ..."
    )
    timestamp: str
    batching: dict[str, Any] | None = None
    router: dict[str, Any] | None = None


class ABTestStatusResponse(BaseModel):
    enabled: bool
    mode: str | None = None
    primary_percent: float | None = None
    groups: dict[str, dict[str, Any]] = Field(default_factory=dict)
    detail: str | None = None


class CompareResponse(BaseModel):
    results: list[ClassifyResponse]
    errors: dict[str, str] = Field(default_factory=dict)
    agreement: bool | None = Field(
        default=None, description="true when every model that answered predicted the same class"
    )
    timestamp: str


# --- Open Inference Protocol v2 ------------------------------------------------------------
class Tensor(BaseModel):
    """An input or output tensor. `data` is row-major (flat or nested); it is left out of a
    tensor sent in binary (`parameters.binary_data_size` then gives its byte size)."""

    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[Any] | None = None


class RequestedOutput(BaseModel):
    """An output the client asks for; `parameters.binary_data: true` asks for it in binary."""

    name: str
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    """One input named `image` (any name accepted), datatype BYTES, shape [N]: N encoded images.

    In JSON, each element is the base64 of a JPEG/PNG file. With the binary extension
    (`Inference-Header-Content-Length`), the raw bytes follow the JSON header, each element
    prefixed by its 4-byte little-endian length. `outputs` (optional) picks the outputs and, per
    output, `parameters.binary_data`; `parameters.binary_data_output: true` makes binary the
    default for every output.
    """

    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[Tensor] = Field(min_length=1)
    outputs: list[RequestedOutput] | None = None


class InferResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[Tensor]


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadataResponse(BaseModel):
    name: str
    versions: list[str] = Field(default_factory=list)
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    parameters: dict[str, Any] | None = None


class ServerMetadataResponse(BaseModel):
    name: str
    version: str
    extensions: list[str] = Field(description="protocol extensions served, e.g. binary_tensor_data")


class ReadyResponse(BaseModel):
    live: bool | None = None
    ready: bool | None = None
    name: str | None = None
