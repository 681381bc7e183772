"""uvicorn's HTTP protocol (httptools) with bounds on what a connection may hold, and for how long.

uvicorn keeps a request line or a header in memory however long it grows, waits for a request's
head however long it takes (a connection that sends nothing is never closed before its first
request) and takes any number of connections, all before any ASGI code sees a request, so no
limit of the app can stop them. `BoundedProtocol` adds, per process:

- **head size**: past `MAX_HEAD_BYTES` of request line and headers, 431 with a JSON reason, and
  the connection is closed (a 200 MiB header took the router 394 MiB, measured).
- **head time**: a request's head must be complete within `HEAD_TIMEOUT_SECONDS` of the
  connection's start (or of the first byte of a later request on it; between requests uvicorn's
  keep-alive timeout, 5 s, closes an idle connection): else 408 with a JSON reason, and closed.
  The body's own deadline is the admission's (`api.admission.BODY_TIMEOUT_SECONDS`, 408).
- **the rest of a refused body**: a request answered before its body was read (413, 503) keeps
  its connection (uvicorn reads and drops the rest of the body), but only until the body's
  deadline; then the connection is closed, so a client trickling a body nobody reads cannot
  hold a connection forever.
- **requests in flight**: past `MAX_REQUESTS`, a request is answered 503 with `Retry-After` and
  a JSON reason, and its connection closed, before the app sees it; the kubelet's probes
  (`PROBE_PATHS`) are always served, so a crowd of slow clients cannot get a pod restarted by a
  failed liveness probe. These answers bypass the app's request metrics (they are counted in
  `pizza_api_overload_refused_total`), so they do not count against the component's error rate.
- **open connections**: past `MAX_CONNECTIONS`, a new connection is closed at once, before it
  can hold any memory (its head bytes included): the most memory connections hold between them
  is then about `MAX_CONNECTIONS * (MAX_HEAD_BYTES + CONNECTION_OVERHEAD_BYTES)`.

`pizza-serve` runs uvicorn with it (`cli.main`).
"""

from __future__ import annotations

import asyncio

import httptools
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from pizza_inference import metrics
from pizza_inference.api import admission
from pizza_inference.api.asgi import json_bytes, send_json
from pizza_inference.memory import RETRY_AFTER_SECONDS

MAX_HEAD_BYTES = 16 * 1024
"""The longest request line and headers together (clients send well under 2 KiB; Node.js's
default limit is the same)."""

HEAD_TIMEOUT_SECONDS = 10.0
"""The longest a request's head may take to arrive."""

MAX_REQUESTS = 256
"""Requests in flight in one process (the body and image pools of the memory budget bound what
they hold; this bounds the rest: tasks, upstream calls, small objects)."""

MAX_CONNECTIONS = 1024
"""Open connections of one process, idle ones included."""

CONNECTION_OVERHEAD_BYTES = 16 * 1024
"""About what an open connection holds besides its head bytes (transport, parser, scope;
measured, see docs/security.md)."""

PROBE_PATHS = frozenset({"/v2/health/live", "/v2/health/ready", "/health"})
"""Paths the kubelet's probes ask, served whatever the load."""


def _answer(status: str, error: str, detail: str, extra: bytes = b"") -> bytes:
    """A whole HTTP/1.1 answer with a JSON reason that closes its connection."""
    body = json_bytes({"error": error, "detail": detail})
    return (
        f"HTTP/1.1 {status}\r\n".encode()
        + b"content-type: application/json\r\n"
        + f"content-length: {len(body)}\r\n".encode()
        + extra
        + b"connection: close\r\n\r\n"
        + body
    )


def head_too_large_response() -> bytes:
    """The whole HTTP answer to a request whose head passed `MAX_HEAD_BYTES`."""
    return _answer(
        "431 Request Header Fields Too Large",
        "headers_too_large",
        f"the request line and headers passed {MAX_HEAD_BYTES} bytes",
    )


def head_timeout_response(timeout: float) -> bytes:
    """The whole HTTP answer to a connection whose request head did not come in time."""
    return _answer(
        "408 Request Timeout",
        "request_timeout",
        f"the request line and headers did not arrive within {timeout:g} s",
    )


async def too_many_requests(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI app that answers a request past `MAX_REQUESTS` (503, Retry-After, closed)."""
    metrics.OVERLOAD_REFUSED.labels("requests").inc()
    body = {
        "error": "server_busy",
        "detail": f"{MAX_REQUESTS} requests are in flight here: retry in {RETRY_AFTER_SECONDS} s",
        "retry_after_seconds": RETRY_AFTER_SECONDS,
    }
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS), "Connection": "close"}
    await send_json(send, 503, body, headers)


class BoundedProtocol(HttpToolsProtocol):
    """httptools with the bounds of the module doc: head size and time, requests in flight and
    open connections. The numbers are read when used (tests shorten them)."""

    _in_head = True
    _head_bytes = 0
    _head_timer: asyncio.TimerHandle | None = None
    _message_done = False
    _body_deadline = 0.0
    _drain_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # type: ignore[arg-type]
        if len(self.connections) > MAX_CONNECTIONS:
            metrics.OVERLOAD_REFUSED.labels("connections").inc()
            self.connections.discard(self)
            self.transport.abort()  # nothing read, nothing held; the client sees a reset
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        self._disarm_drain_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._message_done = False
        if self._head_timer is None:
            self._arm_head_timer()  # a later request on a kept-alive connection
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm_head_timer()
        self._body_deadline = self.loop.time() + admission.BODY_TIMEOUT_SECONDS
        busy = len(self.tasks) >= MAX_REQUESTS and httptools.parse_url(self.url).path not in _PROBES
        self.app = too_many_requests if busy else self.config.loaded_app
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._message_done = True
        self._disarm_drain_timer()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self._message_done and not self.transport.is_closing():
            left = max(0.0, self._body_deadline - self.loop.time())
            self._drain_timer = self.loop.call_later(left, self._drain_timed_out)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._in_head or self.transport.is_closing():
            return
        self._head_bytes += len(data)
        if self._head_bytes > MAX_HEAD_BYTES:
            self._close_with(head_too_large_response())

    def _arm_head_timer(self) -> None:
        timeout = HEAD_TIMEOUT_SECONDS
        self._head_timer = self.loop.call_later(timeout, self._head_timed_out, timeout)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self, timeout: float) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            metrics.SLOW_SENDERS.labels("head").inc()
            self._close_with(head_timeout_response(timeout))

    def _disarm_drain_timer(self) -> None:
        if self._drain_timer is not None:
            self._drain_timer.cancel()
            self._drain_timer = None

    def _drain_timed_out(self) -> None:
        self._drain_timer = None
        if not self._message_done and not self.transport.is_closing():
            metrics.SLOW_SENDERS.labels("body").inc()
            self.transport.close()  # answered already: nothing more to say

    def _close_with(self, answer: bytes) -> None:
        self._disarm_head_timer()
        self.transport.write(answer)
        self.transport.close()


_PROBES = frozenset(path.encode() for path in PROBE_PATHS)
