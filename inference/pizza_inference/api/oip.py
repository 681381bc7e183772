"""Open Inference Protocol v2 (KServe v2 / Triton "predict protocol v2"), the whole REST surface.

Endpoints (`[/versions/{version}]`: also served with the version; the one version is `1`):
- `GET /v2`: server metadata (name, version, extensions: `binary_tensor_data`).
- `GET /v2/health/live`, `GET /v2/health/ready` (not ready: 503).
- `GET /v2/models/{name}[/versions/{version}]`: model metadata.
- `GET /v2/models/{name}[/versions/{version}]/ready` (not ready: 503).
- `POST /v2/models/{name}[/versions/{version}]/infer`.
Errors are JSON `{"error": reason, "detail": message}`: unknown model or version 404, a bad
request or tensor 400.

Tensor format of `infer`:
- input: one tensor (any name, e.g. `image`), datatype `BYTES`, shape `[N]` (or any shape of N
  elements), N encoded JPEG/PNG files. JSON: `data` holds N base64 strings. Binary extension: header
  `Inference-Header-Content-Length: L`, the first L body bytes are the JSON request (the input has
  `parameters.binary_data_size`), the rest holds the elements, each a 4-byte little-endian length
  followed by the raw file bytes (as tritonclient sends a BYTES tensor). The body may be
  `Content-Encoding: gzip` or `deflate`: it is inflated as it arrives, and the endpoint's body
  limit (`api.admission`, from the memory budget) holds for it as sent and inflated.
- outputs: `probabilities` FP32 `[N, C]` (row-major; class order in `parameters.classes`) and
  `predicted_class` BYTES `[N]`; `parameters.model_used` / `parameters.fallback_reason` per image.
  `outputs` in the request picks some of them; an output is sent in binary when its
  `parameters.binary_data` is true, or by default when the request's
  `parameters.binary_data_output` is: the response is then the JSON header (its length in the
  `Inference-Header-Content-Length` response header; each binary output has
  `parameters.binary_data_size` and no `data`) followed by the outputs' bytes in output order
  (FP32 little-endian; BYTES length-prefixed).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import importlib.metadata
import json
import struct
import zlib
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from pizza_inference.api.admission import admission_of
from pizza_inference.api.prior import ERRORS, service_of
from pizza_inference.api.schemas import (
    InferRequest,
    InferResponse,
    ModelMetadataResponse,
    ReadyResponse,
    ServerMetadataResponse,
    Tensor,
    TensorMetadata,
)
from pizza_inference.api.uploads import read_bounded
from pizza_inference.errors import (
    InvalidInputError,
    ModelNotFoundError,
    UnsupportedMediaTypeError,
)
from pizza_inference.service import ImageUpload, ModelInfo, Prediction, Target

BINARY_HEADER = "inference-header-content-length"
MAX_INFER_BATCH = 64
MODEL_VERSION = "1"
"""The one version of every model served here (`versions` in the model metadata)."""
EXTENSIONS = ("binary_tensor_data",)
OUTPUTS = ("probabilities", "predicted_class")
INFLATE_PIECE_BYTES = 1024 * 1024
"""The most a compressed body is inflated by at a time (so a bomb's chunk never goes far past
the limit in memory)."""
SERVER_NAMES = {"model": "pizza-model-server", "router": "pizza-router"}
UNSUPPORTED_PARAMETERS = {
    "shared_memory_region": "the shared memory extension is not supported",
    "classification": "the classification extension is not supported",
}


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
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: ERRORS[400]}
INFER_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the inference response; with binary outputs (application/octet-stream)"
        " its JSON header, Inference-Header-Content-Length bytes, then the outputs' bytes",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
    **ERRORS,
    **NOT_FOUND,
}


def parse_infer_body(
    body: bytes | bytearray, header_length: str | None
) -> tuple[InferRequest, memoryview]:
    """The JSON request and the binary tail (empty without the binary extension); the tail is a
    view of `body`, not a copy."""
    view = memoryview(body)
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
        head: bytes | bytearray = bytes(view[:length])
        tail = view[length:]
    else:
        head, tail = body, view[:0]
    if not head:
        raise InvalidInputError("empty request body", reason="invalid_request")
    try:
        document = json.loads(head)
        return InferRequest.model_validate(document), tail
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidInputError(  # RecursionError: nested deeper than the decoder goes
            f"the request is not valid JSON: {exc}", reason="invalid_request"
        ) from exc
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        raise InvalidInputError(
            f"invalid inference request: {fields}", reason="invalid_request"
        ) from exc


def inflate_into(buffer: bytearray, inflater: Any, data: bytes, limit: int) -> bool:
    """Inflates `data` onto `buffer`, at most `INFLATE_PIECE_BYTES` at a time; False as soon as
    `buffer` passes `limit` (the rest of `data` is never inflated)."""
    while data and not inflater.eof:
        buffer += inflater.decompress(data, min(INFLATE_PIECE_BYTES, limit + 1 - len(buffer)))
        if len(buffer) > limit:
            return False
        data = inflater.unconsumed_tail
    return True


async def read_infer_body(request: Request) -> bytes | bytearray:
    """The request body, within the endpoint's limit (`api.admission`) as sent and after
    decompression (gzip, deflate): inflated chunk by chunk as it arrives, refused (413) as soon
    as the inflated bytes pass the limit, and held in the memory budget as they grow."""
    admission = admission_of(request.scope)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return await read_bounded(request, admission.limit, admission.too_large)
    if encoding not in ("gzip", "deflate"):
        raise UnsupportedMediaTypeError(
            f"Content-Encoding {encoding!r} is not supported (gzip, deflate)",
            reason="unsupported_content_encoding",
        )
    # gzip: RFC 1952 framing; deflate: zlib framing (what HTTP means by deflate and what
    # tritonclient sends)
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
    body = bytearray()
    try:
        async for chunk in request.stream():
            if not inflate_into(body, inflater, chunk, admission.limit):
                raise admission.too_large(decompressed=True)
            admission.hold(len(body))
    except zlib.error as exc:
        raise InvalidInputError(
            f"the body is not valid {encoding} data: {exc}", reason="invalid_request"
        ) from exc
    if not inflater.eof:
        raise InvalidInputError(f"truncated {encoding} body", reason="invalid_request")
    return body


def _split_binary_bytes(raw: memoryview) -> list[bytes]:
    items: list[bytes] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise InvalidInputError("truncated BYTES element length", reason="invalid_tensor")
        (n,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + n > len(raw):
            raise InvalidInputError("truncated BYTES element", reason="invalid_tensor")
        items.append(bytes(raw[offset : offset + n]))
        offset += n
    return items


def _flatten(data: list[Any]) -> list[Any]:
    """The elements of nested lists in row-major order (without recursion: any depth)."""
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            out.append(item)
        else:
            stack.pop()
    return out


def _check_parameters(where: str, parameters: dict[str, Any] | None) -> None:
    for key, message in UNSUPPORTED_PARAMETERS.items():
        if key in (parameters or {}):
            raise InvalidInputError(f"{where}: {message}", reason="invalid_request")


def images_from_request(request: InferRequest, tail: memoryview) -> list[bytes]:
    """The encoded images of the single BYTES input."""
    if len(request.inputs) != 1:
        raise InvalidInputError(
            "expected exactly one input tensor (the images)", reason="invalid_tensor"
        )
    tensor = request.inputs[0]
    _check_parameters(f"input {tensor.name}", tensor.parameters)
    if tensor.datatype != "BYTES":
        raise InvalidInputError(
            f"input {tensor.name} must be BYTES, got {tensor.datatype}", reason="invalid_tensor"
        )
    if any(dim < 0 for dim in tensor.shape):
        raise InvalidInputError(
            f"input {tensor.name} has a negative dimension in shape {tensor.shape}",
            reason="invalid_tensor",
        )
    binary_size = (tensor.parameters or {}).get("binary_data_size")
    if binary_size is not None:
        if (
            not isinstance(binary_size, int)
            or isinstance(binary_size, bool)
            or binary_size != len(tail)
        ):
            raise InvalidInputError(
                "binary_data_size does not match the binary body", reason="invalid_tensor"
            )
        if tensor.data is not None:
            raise InvalidInputError(
                f"input {tensor.name} has both data and binary_data_size", reason="invalid_tensor"
            )
        images = _split_binary_bytes(tail)
    else:
        if tail:
            raise InvalidInputError(
                f"{len(tail)} bytes of binary data follow the JSON header, but no input has"
                " binary_data_size",
                reason="invalid_tensor",
            )
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


def _flag(where: str, parameters: dict[str, Any] | None, key: str, default: bool) -> bool:
    value = (parameters or {}).get(key, default)
    if not isinstance(value, bool):
        raise InvalidInputError(f"{where}: {key} must be a boolean", reason="invalid_request")
    return value


def requested_outputs(request: InferRequest) -> list[tuple[str, bool]]:
    """(output name, in binary) for each output to send, in the order to send them."""
    default_binary = _flag("request", request.parameters, "binary_data_output", False)
    if request.outputs is None:
        return [(name, default_binary) for name in OUTPUTS]
    chosen: list[tuple[str, bool]] = []
    for output in request.outputs:
        if output.name not in OUTPUTS:
            raise InvalidInputError(
                f"unknown output {output.name!r} (outputs: {', '.join(OUTPUTS)})",
                reason="invalid_request",
            )
        if any(output.name == name for name, _ in chosen):
            raise InvalidInputError(
                f"output {output.name!r} requested twice", reason="invalid_request"
            )
        _check_parameters(f"output {output.name}", output.parameters)
        binary = _flag(f"output {output.name}", output.parameters, "binary_data", default_binary)
        chosen.append((output.name, binary))
    return chosen


def serialize_bytes(items: list[bytes]) -> bytes:
    """A BYTES tensor in binary: each element a 4-byte little-endian length, then its bytes."""
    return b"".join(struct.pack("<I", len(item)) + item for item in items)


def _output(name: str, predictions: list[Prediction], classes: list[str]) -> tuple[Tensor, bytes]:
    """The output tensor in JSON and its bytes in binary."""
    if name == "probabilities":
        flat = [float(p.probabilities[c]) for p in predictions for c in classes]
        shape = [len(predictions), len(classes)]
        return (
            Tensor(name=name, shape=shape, datatype="FP32", data=flat),
            struct.pack(f"<{len(flat)}f", *flat),
        )
    labels = [p.predicted_class for p in predictions]
    return (
        Tensor(name=name, shape=[len(predictions)], datatype="BYTES", data=labels),
        serialize_bytes([label.encode() for label in labels]),
    )


def infer_response(response: InferResponse, binary: dict[str, bytes]) -> Response:
    """JSON; with binary outputs, the JSON header then the bytes (`BINARY_HEADER`: its length)."""
    if not binary:
        return JSONResponse(response.model_dump(mode="json"))
    for tensor in response.outputs:
        if tensor.name in binary:
            tensor.data = None
            tensor.parameters = {"binary_data_size": len(binary[tensor.name])}
    header = json.dumps(
        response.model_dump(mode="json", exclude_none=True), separators=(",", ":")
    ).encode()
    tail = b"".join(binary[t.name] for t in response.outputs if t.name in binary)
    return Response(
        header + tail,
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(header))},
    )


async def find_model(request: Request, name: str, version: str | None = None) -> ModelInfo:
    for info in await service_of(request).models():
        if info.name == name:
            if version is not None and version != MODEL_VERSION:
                raise ModelNotFoundError(
                    f"model {name!r} has no version {version!r} (versions: {MODEL_VERSION})",
                    reason="model_version_not_found",
                )
            return info
    raise ModelNotFoundError(f"no model named {name!r} on this server")


def server_version(request: Request) -> str:
    try:
        return importlib.metadata.version("pizza-operator")
    except importlib.metadata.PackageNotFoundError:
        return str(request.app.version)


def model_metadata(info: ModelInfo) -> ModelMetadataResponse:
    n_classes = len(info.classes) if info.classes else -1
    return ModelMetadataResponse(
        name=info.name,
        versions=[MODEL_VERSION],
        platform=info.platform,
        inputs=[TensorMetadata(name="image", datatype="BYTES", shape=[-1])],
        outputs=[
            TensorMetadata(name="probabilities", datatype="FP32", shape=[-1, n_classes]),
            TensorMetadata(name="predicted_class", datatype="BYTES", shape=[-1]),
        ],
        parameters={"classes": list(info.classes)},
    )


def model_ready_response(info: ModelInfo) -> JSONResponse:
    return JSONResponse(
        {"name": info.name, "ready": info.ready}, status_code=200 if info.ready else 503
    )


async def run_infer(request: Request, name: str, version: str | None) -> Response:
    await find_model(request, name, version)
    infer_request, tail = parse_infer_body(
        await read_infer_body(request), request.headers.get(BINARY_HEADER)
    )
    with tail:  # the body goes when its images are cut out of it
        images = images_from_request(infer_request, tail)
    chosen = requested_outputs(infer_request)
    service = service_of(request)
    predictions = list(
        await asyncio.gather(
            *(
                service.classify(ImageUpload(data=d), target=Target.AUTO, ab_test_group=None)
                for d in images
            )
        )
    )
    classes = list(predictions[0].probabilities)
    tensors: dict[str, Tensor] = {}
    binary: dict[str, bytes] = {}
    for output_name, in_binary in chosen:
        tensor, raw = _output(output_name, predictions, classes)
        tensors[output_name] = tensor
        if in_binary:
            binary[output_name] = raw
    response = InferResponse(
        model_name=name,
        model_version=MODEL_VERSION,
        id=infer_request.id,
        parameters={
            "classes": classes,
            "model_used": [p.model_used for p in predictions],
            "fallback_reason": [p.fallback_reason for p in predictions],
        },
        outputs=[tensors[n] for n, _ in chosen],
    )
    return infer_response(response, binary)


def build_oip_router() -> APIRouter:
    router = APIRouter(prefix="/v2", tags=["open-inference-protocol-v2"])

    @router.get("", response_model=ServerMetadataResponse)
    async def server_metadata(request: Request) -> ServerMetadataResponse:
        """Server metadata: name, version and the protocol extensions served."""
        role = service_of(request).role
        return ServerMetadataResponse(
            name=SERVER_NAMES.get(role, f"pizza-{role}"),
            version=server_version(request),
            extensions=list(EXTENSIONS),
        )

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

    @router.get("/models/{name}", response_model=ModelMetadataResponse, responses=NOT_FOUND)
    async def metadata(request: Request, name: str) -> ModelMetadataResponse:
        return model_metadata(await find_model(request, name))

    @router.get(
        "/models/{name}/versions/{version}",
        response_model=ModelMetadataResponse,
        responses=NOT_FOUND,
    )
    async def version_metadata(request: Request, name: str, version: str) -> ModelMetadataResponse:
        return model_metadata(await find_model(request, name, version))

    ready_responses: dict[int | str, dict[str, Any]] = {
        **NOT_FOUND,
        503: {"model": ReadyResponse},
    }

    @router.get("/models/{name}/ready", response_model=ReadyResponse, responses=ready_responses)
    async def model_ready(request: Request, name: str) -> JSONResponse:
        return model_ready_response(await find_model(request, name))

    @router.get(
        "/models/{name}/versions/{version}/ready",
        response_model=ReadyResponse,
        responses=ready_responses,
    )
    async def version_ready(request: Request, name: str, version: str) -> JSONResponse:
        return model_ready_response(await find_model(request, name, version))

    @router.post(
        "/models/{name}/infer",
        response_model=InferResponse,
        responses=INFER_RESPONSES,
        openapi_extra=INFER_BODY,
    )
    async def infer(request: Request, name: str) -> Response:
        """Classifies N images given as one BYTES input (tensor format: see the module doc)."""
        return await run_infer(request, name, None)

    @router.post(
        "/models/{name}/versions/{version}/infer",
        response_model=InferResponse,
        responses=INFER_RESPONSES,
        openapi_extra=INFER_BODY,
    )
    async def version_infer(request: Request, name: str, version: str) -> Response:
        """The same as `/v2/models/{name}/infer`, for the model's version `1`."""
        return await run_infer(request, name, version)

    return router
