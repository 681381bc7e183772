"""uvicorn's HTTP protocol (httptools) with a bound on each request's head.

httptools keeps a request line or a header in memory however long it grows, before any ASGI code
sees the request (a 200 MiB header took the router 394 MiB, measured), so no limit of the app
can stop it. `BoundedHeadProtocol` counts the bytes received while a request's head (request
line and headers) is incomplete and, past `MAX_HEAD_BYTES`, answers 431 with a JSON reason and
closes the connection. `pizza-serve` runs uvicorn with it.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from pizza_inference.api.asgi import json_bytes

MAX_HEAD_BYTES = 64 * 1024
"""The longest request line and headers together (clients send well under 2 KiB)."""


def head_too_large_response() -> bytes:
    """The whole HTTP answer to a request whose head passed `MAX_HEAD_BYTES`."""
    body = json_bytes(
        {
            "error": "headers_too_large",
            "detail": f"the request line and headers passed {MAX_HEAD_BYTES} bytes",
        }
    )
    return (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        b"content-type: application/json\r\n"
        + f"content-length: {len(body)}\r\n".encode()
        + b"connection: close\r\n\r\n"
        + body
    )


class BoundedHeadProtocol(HttpToolsProtocol):
    """httptools, and 431 + close once a request's head passes `MAX_HEAD_BYTES` (what httptools
    holds of it is then at most that plus one read from the socket)."""

    _in_head = True
    _head_bytes = 0

    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._in_head or self.transport.is_closing():
            return
        self._head_bytes += len(data)
        if self._head_bytes > MAX_HEAD_BYTES:
            self.transport.write(head_too_large_response())
            self.transport.close()
