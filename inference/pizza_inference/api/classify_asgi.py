"""The prior classify endpoints (/classify, /predict/spatial, /predict/standard) served straight
from ASGI, for the forms every client sends.

The router answers every request with a few hundred microseconds of its own CPU, and at
concurrency a batch of model-server answers arrives at once and queues behind it; FastAPI's
streaming form parser, its dependency resolution and pydantic's response model were most of that
CPU. This middleware sits innermost (the request metrics and the rate limit still see every
request), reads the body once (bounded, 413 before a byte is read when Content-Length is too
big), reads the form with `api.multipart` and calls the service itself; its answers are built by
the same `schemas.classify_fields` and the same errors as the FastAPI route. A form it does not
know for sure (see `api.multipart`; an unknown field, a value pydantic would have to judge) goes
on to the FastAPI route with the body replayed, which answers as it always did: the fast path can
only be faster, never answer differently. The routes stay in FastAPI for the OpenAPI document.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from pizza_inference.api.admission import admission_of
from pizza_inference.api.asgi import read_bounded, receive_chunks, replaying, send_json
from pizza_inference.api.multipart import boundary_of, is_multipart, parse_simple_form
from pizza_inference.api.schemas import classify_fields
from pizza_inference.errors import InferenceError, unexpected_error_body
from pizza_inference.images import check_content_type, check_size
from pizza_inference.service import ImageUpload, InferenceService, Target

ROUTES: dict[str, tuple[Target | None, frozenset[str]]] = {
    "/classify": (
        None,
        frozenset({"file", "use_spatial", "return_probabilities", "ab_test_group"}),
    ),
    "/predict/spatial": (Target.PRIMARY, frozenset({"file", "return_probabilities"})),
    "/predict/standard": (Target.FALLBACK, frozenset({"file", "return_probabilities"})),
}
"""Path: (its target, None for /classify where `use_spatial` decides; the form fields it takes)."""

_BOOLEANS = {
    **dict.fromkeys(("1", "on", "t", "true", "y", "yes"), True),
    **dict.fromkeys(("0", "off", "f", "false", "n", "no"), False),
}
"""The strings pydantic reads as a bool (any case); any other value is left to FastAPI (422)."""


@dataclass(frozen=True)
class ClassifyForm:
    upload: ImageUpload
    target: Target
    return_probabilities: bool
    ab_test_group: str | None


def _flag(fields: dict[str, str], name: str) -> bool | None:
    return _BOOLEANS.get(fields.get(name, "true").lower())


def read_form(path: str, body: bytes, content_type: str, *, keep_raw: bool) -> ClassifyForm | None:
    """The classify request in `body`, or None when FastAPI must judge it (see the module)."""
    boundary = boundary_of(content_type)
    parts = parse_simple_form(body, boundary) if boundary is not None else None
    if parts is None or "file" not in parts:
        return None
    target, allowed = ROUTES[path]
    file = parts.pop("file")
    if not file.filename or not parts.keys() <= allowed:
        return None
    fields: dict[str, str] = {}
    for name, part in parts.items():
        if part.filename is not None or part.content_type is not None:
            return None
        try:
            fields[name] = part.data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    use_spatial = _flag(fields, "use_spatial")
    return_probabilities = _flag(fields, "return_probabilities")
    group = fields.get("ab_test_group")
    if use_spatial is None or return_probabilities is None:
        return None
    if group is not None and group not in ("A", "B", "a", "b"):
        return None
    if target is None:
        target = Target.AUTO if use_spatial else Target.FALLBACK
    upload = ImageUpload(
        data=file.data,
        content_type=file.content_type,
        filename=file.filename,
        raw=body if keep_raw else None,
        raw_content_type=content_type if keep_raw else None,
    )
    return ClassifyForm(upload, target, return_probabilities, group and group.upper())


class ClassifyFastPath:
    """ASGI middleware: the classify endpoints' common requests, answered without FastAPI."""

    def __init__(self, app: ASGIApp, service: InferenceService) -> None:
        self.app = app
        self.service = service
        self.keep_raw = bool(getattr(service, "forwards_raw_body", False))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path not in ROUTES or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        content_type = declared = ""
        for key, value in scope["headers"]:
            if key == b"content-type":
                content_type = value.decode("latin-1")
            elif key == b"content-length":
                declared = value.decode("latin-1")
        if not is_multipart(content_type):
            await self.app(scope, receive, send)
            return
        admission = admission_of(scope)
        try:
            body = await read_bounded(
                receive_chunks(receive), declared, admission.limit, admission.too_large
            )
            form = read_form(path, body, content_type, keep_raw=self.keep_raw)
            if form is None:
                await self.app(scope, replaying(body, receive), send)
                return
            check_content_type(form.upload.content_type)
            check_size(len(form.upload.data))
            prediction = await self.service.classify(
                form.upload, target=form.target, ab_test_group=form.ab_test_group
            )
        except InferenceError as exc:
            await send_json(send, exc.status_code, exc.body(), exc.headers())
            return
        except Exception as exc:  # the same answer as the app's handler of the unexpected
            await send_json(send, 500, unexpected_error_body(exc))
            return
        await send_json(send, 200, classify_fields(prediction, form.return_probabilities))
