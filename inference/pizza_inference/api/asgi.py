"""Plain ASGI pieces shared by the middlewares and the fast classify path: JSON answers and a
bounded body reader."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.types import Message, Receive, Send

from pizza_inference.errors import PayloadTooLargeError


def json_bytes(body: Any) -> bytes:
    """`body` as Starlette's JSONResponse writes it (compact, UTF-8, no NaN)."""
    return json.dumps(
        body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


async def send_json(
    send: Send, status: int, body: Any, headers: dict[str, str] | None = None
) -> None:
    payload = json_bytes(body)
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


async def receive_chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The request body's chunks as an ASGI server delivers them."""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return  # http.disconnect: the client went away mid-body
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


def replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives `body` (already read from `receive`) as the whole request, then
    whatever `receive` gives next (the client's disconnect)."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def read_bounded(
    chunks: AsyncIterator[bytes],
    declared_length: str,
    limit: int,
    too_large: Callable[[int | None], PayloadTooLargeError],
) -> bytes:
    """The whole body, at most `limit` bytes: a declared Content-Length over it is refused before
    a byte is read (`too_large(length)`), a body without one (chunked) as soon as it passes it
    (`too_large(None)`)."""
    if declared_length.isdigit() and int(declared_length) > limit:
        raise too_large(int(declared_length))
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise too_large(None)
        parts.append(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)
