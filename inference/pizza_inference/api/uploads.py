"""Reading a multipart upload once, with the size limit checked before the bytes are read.

The router also keeps the request's whole body (`keep_raw_body`), so that it can forward the
client's form to a model server as it came instead of encoding a new one.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request, UploadFile

from pizza_inference.api import asgi
from pizza_inference.api.admission import admission_of
from pizza_inference.api.multipart import is_multipart
from pizza_inference.errors import PayloadTooLargeError
from pizza_inference.images import MAX_IMAGE_BYTES, check_content_type, check_size
from pizza_inference.service import ImageUpload

RAW_BODY_STATE = "pizza_raw_body"
"""`request.state` attribute holding the kept (body, Content-Type) of a multipart request."""


async def read_bounded(
    request: Request, limit: int, too_large: Callable[[int | None], PayloadTooLargeError]
) -> bytes:
    """`request`'s whole body, at most `limit` bytes (see `api.asgi.read_bounded`)."""
    declared = request.headers.get("content-length", "")
    return await asgi.read_bounded(request.stream(), declared, limit, too_large)


async def keep_raw_body(request: Request) -> Request:
    """Reads a multipart request's body into memory once and returns a request that replays it
    (for FastAPI's form parsing); the body and its Content-Type go to `request.state`.

    A declared Content-Length over the endpoint's limit (`api.admission`: an image of at most
    10 MB and its form) is refused (413) before a byte is read; a body without one (chunked) is
    refused as soon as it passes the limit. Other content types are left alone (FastAPI then
    answers 422: the form has no file)."""
    content_type = request.headers.get("content-type", "")
    if not is_multipart(content_type):
        return request
    admission = admission_of(request.scope)
    body = await read_bounded(request, admission.limit, admission.too_large)
    setattr(request.state, RAW_BODY_STATE, (body, content_type))
    return Request(request.scope, asgi.replaying(body, request.receive))


async def read_upload(file: UploadFile, request: Request | None = None) -> ImageUpload:
    """The upload's bytes, checked; with the raw body `keep_raw_body` kept for `request`, if any."""
    check_content_type(file.content_type)
    if file.size is not None and file.size > MAX_IMAGE_BYTES:
        check_size(file.size)
    data = await file.read()
    check_size(len(data))
    kept = getattr(request.state, RAW_BODY_STATE, None) if request is not None else None
    raw, raw_content_type = kept if kept is not None else (None, None)
    return ImageUpload(
        data=data,
        content_type=file.content_type,
        filename=file.filename,
        raw=raw,
        raw_content_type=raw_content_type,
    )
