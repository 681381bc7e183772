"""Admission of request bodies: each endpoint's size limit and the memory budget, in one place.

An ASGI middleware (inside the request metrics and the router's rate limit, outside everything
that reads a body) gives every HTTP request an `Admission`: the most body bytes its endpoint
takes (`body_limit`, from `memory.MemoryLimits`) and its `Reservation` in the budget's body pool.

- A declared Content-Length over the limit: 413 before a byte is read.
- The declared body is reserved (`BODY_COPIES` times) on arrival; one that does not fit: 503
  with `Retry-After` before a byte is read.
- Every chunk the app reads is counted: past the limit, 413; the reservation grows with it, and
  when it does not fit, 503. This holds for any reader (the classify fast path, FastAPI's form
  parser, the infer route) and any content type or transfer encoding. The readers also check
  the limit themselves and say so; the middleware is what no reader can forget.
- The infer route grows the same reservation with the bytes it inflates (`Admission.hold`).
- The whole body must arrive within `BODY_TIMEOUT_SECONDS` of the request's head: a client that
  trickles it (a slow sender, holding its reservation and its connection) gets 408 and the
  connection is closed. The time counts only while the app waits for body bytes.

The reservation is released when the app has answered. When the middleware itself cut a body
off, its 413 or 503 is the answer (FastAPI would have called the failed read a 400).
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pizza_inference import metrics
from pizza_inference.api.asgi import send_json
from pizza_inference.errors import (
    InferenceError,
    PayloadTooLargeError,
    RequestTimeoutError,
    ServerBusyError,
)
from pizza_inference.memory import (
    BODY_COPIES,
    RETRY_AFTER_SECONDS,
    MemoryLimits,
    MemoryPool,
    Reservation,
)

UPLOAD_PATHS = frozenset({"/classify", "/predict/spatial", "/predict/standard", "/ab-test/compare"})
"""The endpoints that take a multipart image upload."""

INFER_PATH = re.compile(r"/v2/models/[^/]+(?:/versions/[^/]+)?/infer")

ADMISSION = "pizza.admission"
"""The scope key of a request's `Admission`."""

BODY_TIMEOUT_SECONDS = 60.0
"""The longest a request's body may take to arrive, from its head on: a 10 MB upload at
1.4 Mbit/s. Read when each request starts (tests shorten it)."""


@dataclass(frozen=True)
class BodyLimit:
    """An endpoint's body limit, the reason of its 413 and what the limit is made of."""

    limit: int
    reason: str
    holds: str


def body_limit(limits: MemoryLimits, path: str) -> BodyLimit:
    """The body limit of the endpoint at `path`."""
    if path in UPLOAD_PATHS:
        return BodyLimit(
            limits.upload_bytes, "file_too_large", "one image of at most 10 MB and its form"
        )
    if INFER_PATH.fullmatch(path):
        return BodyLimit(
            limits.infer_bytes,
            "request_too_large",
            "the images of one request, as sent and decompressed, sized by this server's memory"
            " budget: send fewer or smaller images per request",
        )
    return BodyLimit(limits.other_bytes, "request_too_large", "this endpoint reads no body")


@dataclass
class Admission:
    """What one request may read (`body.limit`) and the body memory it holds (`reservation`)."""

    body: BodyLimit
    reservation: Reservation

    @property
    def limit(self) -> int:
        return self.body.limit

    def too_large(
        self, size: int | None = None, *, decompressed: bool = False
    ) -> PayloadTooLargeError:
        """413: a body of `size` declared bytes, or (None) one that passed the limit."""
        what = "the request body" + (", decompressed," if decompressed else "")
        sent = f"has {size} bytes, more than" if size is not None else "passed"
        return PayloadTooLargeError(
            f"{what} {sent} the {self.limit} bytes this endpoint takes here ({self.body.holds})",
            reason=self.body.reason,
        )

    def hold(self, size: int) -> None:
        """Holds memory for `size` body bytes (`BODY_COPIES` each); 503 when it does not fit."""
        if not self.reservation.grow_to(BODY_COPIES * size):
            pool = self.reservation.pool
            metrics.MEMORY_SHED.labels(pool.name).inc()
            raise ServerBusyError(
                f"the memory budget for request bodies ({pool.capacity} bytes) is in use by"
                f" the requests in flight: retry in {RETRY_AFTER_SECONDS} s",
                retry_after_s=RETRY_AFTER_SECONDS,
            )


def admission_of(scope: Scope) -> Admission:
    """The request's `Admission` (every app from `api.app.build_app` has the middleware)."""
    admission = scope.get(ADMISSION)
    if not isinstance(admission, Admission):
        raise RuntimeError("no admission for this request: the app lacks AdmissionMiddleware")
    return admission


def declared_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


class AdmissionMiddleware:
    """ASGI middleware: every request's body within its endpoint's limit and the budget."""

    def __init__(self, app: ASGIApp, limits: MemoryLimits, pool: MemoryPool) -> None:
        self.app = app
        self.limits = limits
        self.pool = pool

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        admission = Admission(body_limit(self.limits, scope["path"]), Reservation(self.pool))
        declared = declared_length(scope)
        try:
            if declared is not None and declared > admission.limit:
                raise admission.too_large(declared)
            admission.hold(declared or 0)
        except InferenceError as exc:
            await send_json(send, exc.status_code, exc.body(), exc.headers())
            return
        scope[ADMISSION] = admission
        try:
            await self._admitted(scope, receive, send, admission)
        finally:
            admission.reservation.release()

    async def _admitted(
        self, scope: Scope, receive: Receive, send: Send, admission: Admission
    ) -> None:
        received = 0
        cut_off: InferenceError | None = None
        started = False
        body_done = False
        timeout = BODY_TIMEOUT_SECONDS
        deadline = time.monotonic() + timeout

        async def timed_receive() -> Message:
            """The next message; while the body is incomplete, no later than the deadline."""
            nonlocal body_done
            if body_done:
                return await receive()  # after the body: the client's disconnect, whenever
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    message = await receive()
            except TimeoutError:
                metrics.SLOW_SENDERS.labels("body").inc()
                raise RequestTimeoutError(
                    f"the request body did not arrive within {timeout:g} s ({received} bytes"
                    " came): send it faster, or fewer bytes"
                ) from None
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        async def counting_receive() -> Message:
            nonlocal received, cut_off
            try:
                message = await timed_receive()
            except RequestTimeoutError as exc:
                cut_off = exc
                raise
            if message["type"] == "http.request" and message.get("body"):
                received += len(message["body"])
                try:
                    if received > admission.limit:
                        raise admission.too_large()
                    admission.hold(received)
                except InferenceError as exc:
                    cut_off = exc
                    raise
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if cut_off is not None:
                return  # the app's answer to a body cut off: ours goes instead
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except InferenceError as exc:
            if exc is not cut_off:
                raise
        if cut_off is not None and not started:
            await send_json(send, cut_off.status_code, cut_off.body(), cut_off.headers())
