"""Open Inference Protocol v2 (KServe v2): health, model metadata and readiness, infer.

Tensor format of `POST /v2/models/{name}/infer`:
- input: one tensor (any name, e.g. `image`), datatype `BYTES`, shape `[N]`, N encoded JPEG/PNG
  files. JSON: `data` holds N base64 strings. Binary extension: header
  `Inference-Header-Content-Length: L`, the first L body bytes are the JSON request (the input has
  `parameters.binary_data_size`), the rest holds the elements, each a 4-byte little-endian length
  followed by the raw file bytes.
- outputs: `probabilities` FP32 `[N, C]` (row-major; class order in `parameters.classes`) and
  `predicted_class` BYTES `[N]`; `parameters.model_used` / `parameters.fallback_reason` per image.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import struct
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from pizza_inference.api.prior import ERRORS, service_of
from pizza_inference.api.schemas import (
    InferRequest,
    InferResponse,
    ModelMetadataResponse,
    ReadyResponse,
    Tensor,
    TensorMetadata,
)
from pizza_inference.errors import InvalidInputError, ModelNotFoundError
from pizza_inference.service import ImageUpload, ModelInfo, Target

BINARY_HEADER = "inference-header-content-length"
MAX_INFER_BATCH = 64


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema with its `$defs` references inlined (for openapi_extra)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.split("/")[-1]])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    result: dict[str, Any] = walk(schema)
    return result


INFER_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _inline(InferRequest.model_json_schema())},
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary"},
                "description": "binary tensor extension (Inference-Header-Content-Length)",
            },
        },
    }
}


def parse_infer_body(body: bytes, header_length: str | None) -> tuple[InferRequest, bytes]:
    """The JSON request and the binary tail (empty without the binary extension)."""
    if header_length is not None:
        try:
            length = int(header_length)
        except ValueError as exc:
            raise InvalidInputError(
                f"{BINARY_HEADER} must be an integer", reason="invalid_request"
            ) from exc
        if not 0 < length <= len(body):
            raise InvalidInputError(
                f"{BINARY_HEADER}={length} does not fit the body", reason="invalid_request"
            )
        head, tail = body[:length], body[length:]
    else:
        head, tail = body, b""
    if not head:
        raise InvalidInputError("empty request body", reason="invalid_request")
    try:
        document = json.loads(head)
        return InferRequest.model_validate(document), tail
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(
            f"the request is not valid JSON: {exc}", reason="invalid_request"
        ) from exc
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        raise InvalidInputError(
            f"invalid inference request: {fields}", reason="invalid_request"
        ) from exc


def _split_binary_bytes(raw: bytes) -> list[bytes]:
    items, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise InvalidInputError("truncated BYTES element length", reason="invalid_tensor")
        (n,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + n > len(raw):
            raise InvalidInputError("truncated BYTES element", reason="invalid_tensor")
        items.append(raw[offset : offset + n])
        offset += n
    return items


def _flatten(data: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in data:
        out.extend(_flatten(item) if isinstance(item, list) else [item])
    return out


def images_from_request(request: InferRequest, tail: bytes) -> list[bytes]:
    """The encoded images of the single BYTES input."""
    if len(request.inputs) != 1:
        raise InvalidInputError(
            "expected exactly one input tensor (the images)", reason="invalid_tensor"
        )
    tensor = request.inputs[0]
    if tensor.datatype != "BYTES":
        raise InvalidInputError(
            f"input {tensor.name} must be BYTES, got {tensor.datatype}", reason="invalid_tensor"
        )
    binary_size = (tensor.parameters or {}).get("binary_data_size")
    if binary_size is not None:
        if not isinstance(binary_size, int) or binary_size != len(tail):
            raise InvalidInputError(
                "binary_data_size does not match the binary body", reason="invalid_tensor"
            )
        images = _split_binary_bytes(tail)
    else:
        if tensor.data is None:
            raise InvalidInputError(f"input {tensor.name} has no data", reason="invalid_tensor")
        images = []
        for i, item in enumerate(_flatten(tensor.data)):
            if not isinstance(item, str):
                raise InvalidInputError(
                    f"element {i} must be a base64 string", reason="invalid_tensor"
                )
            try:
                images.append(base64.b64decode(item, validate=True))
            except (binascii.Error, ValueError) as exc:
                raise InvalidInputError(
                    f"element {i} is not valid base64", reason="invalid_tensor"
                ) from exc
    count = 1
    for dim in tensor.shape:
        count *= dim
    if not images or count != len(images):
        raise InvalidInputError(
            f"shape {tensor.shape} does not match the {len(images)} elements sent",
            reason="invalid_tensor",
        )
    if len(images) > MAX_INFER_BATCH:
        raise InvalidInputError(
            f"at most {MAX_INFER_BATCH} images per request", reason="invalid_tensor"
        )
    return images


async def find_model(request: Request, name: str) -> ModelInfo:
    for info in await service_of(request).models():
        if info.name == name:
            return info
    raise ModelNotFoundError(f"no model named {name!r} on this server")


def build_oip_router() -> APIRouter:
    router = APIRouter(prefix="/v2", tags=["open-inference-protocol-v2"])

    @router.get("/health/live", response_model=ReadyResponse)
    async def live() -> ReadyResponse:
        """Liveness: the process answers (no model work)."""
        return ReadyResponse(live=True)

    @router.get(
        "/health/ready", response_model=ReadyResponse, responses={503: {"model": ReadyResponse}}
    )
    async def ready(request: Request) -> JSONResponse:
        """Readiness: model loaded and warm-up passed (router: the fallback is ready)."""
        ok = await service_of(request).is_ready()
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    @router.get(
        "/models/{name}", response_model=ModelMetadataResponse, responses={404: ERRORS[400]}
    )
    async def metadata(request: Request, name: str) -> ModelMetadataResponse:
        info = await find_model(request, name)
        n_classes = len(info.classes) if info.classes else -1
        return ModelMetadataResponse(
            name=info.name,
            platform=info.platform,
            inputs=[TensorMetadata(name="image", datatype="BYTES", shape=[-1])],
            outputs=[
                TensorMetadata(name="probabilities", datatype="FP32", shape=[-1, n_classes]),
                TensorMetadata(name="predicted_class", datatype="BYTES", shape=[-1]),
            ],
            parameters={"classes": list(info.classes)},
        )

    @router.get(
        "/models/{name}/ready",
        response_model=ReadyResponse,
        responses={404: ERRORS[400], 503: {"model": ReadyResponse}},
    )
    async def model_ready(request: Request, name: str) -> JSONResponse:
        info = await find_model(request, name)
        return JSONResponse(
            {"name": name, "ready": info.ready}, status_code=200 if info.ready else 503
        )

    @router.post(
        "/models/{name}/infer",
        response_model=InferResponse,
        responses={**ERRORS, 404: ERRORS[400]},
        openapi_extra=INFER_BODY,
    )
    async def infer(request: Request, name: str) -> InferResponse:
        """Classifies N images given as one BYTES input (tensor format: see the module doc)."""
        await find_model(request, name)
        infer_request, tail = parse_infer_body(
            await request.body(), request.headers.get(BINARY_HEADER)
        )
        images = images_from_request(infer_request, tail)
        service = service_of(request)
        predictions = await asyncio.gather(
            *(
                service.classify(ImageUpload(data=d), target=Target.AUTO, ab_test_group=None)
                for d in images
            )
        )
        classes = list(predictions[0].probabilities)
        flat = [
            predictions_row for p in predictions for predictions_row in p.probabilities.values()
        ]
        return InferResponse(
            model_name=name,
            id=infer_request.id,
            parameters={
                "classes": classes,
                "model_used": [p.model_used for p in predictions],
                "fallback_reason": [p.fallback_reason for p in predictions],
            },
            outputs=[
                Tensor(
                    name="probabilities",
                    shape=[len(predictions), len(classes)],
                    datatype="FP32",
                    data=flat,
                ),
                Tensor(
                    name="predicted_class",
                    shape=[len(predictions)],
                    datatype="BYTES",
                    data=[p.predicted_class for p in predictions],
                ),
            ],
        )

    return router
