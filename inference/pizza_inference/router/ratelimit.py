"""Per-client rate limit (token bucket per client) and the router's client middleware.

The middleware names each request's client (`router.clients.identify`: the peer, or a trusted
proxy's `X-Forwarded-For`), makes it the `CURRENT_CLIENT` of the request (the plane reads it to
keep the client within its share of the primary), and rate-limits inference requests per client.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from pizza_inference import metrics
from pizza_inference.api.asgi import send_json
from pizza_inference.errors import RateLimitedError
from pizza_inference.router.clients import CURRENT_CLIENT, TrustedProxies, identify

LIMITED_METHODS = frozenset({"POST"})
"""Inference requests are POSTs; probes, status and metrics are not limited."""


class TokenBucketLimiter:
    """`per_minute` requests a minute per client, with bursts up to `per_minute`."""

    MAX_CLIENTS = 100_000

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, client: str) -> float | None:
        """None when admitted, else the seconds until the client may retry."""
        if self.per_minute <= 0:
            return None
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                return None
            self._buckets[client] = (tokens, now)
            if len(self._buckets) > self.MAX_CLIENTS:
                self._prune(now)
            return (1.0 - tokens) / self.rate

    def _prune(self, now: float) -> None:
        full_after = self.capacity / self.rate
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}


def client_of(scope: Scope, trusted: TrustedProxies) -> str:
    """The client of an HTTP request's scope (`router.clients.identify`)."""
    peer = scope.get("client")
    forwarded = (
        [
            value.decode("latin-1")
            for name, value in scope.get("headers") or ()
            if name.lower() == b"x-forwarded-for"
        ]
        if trusted.networks
        else []
    )
    return identify(peer[0] if peer else None, forwarded, trusted)


class RateLimitMiddleware:
    """Names the client of every request (`CURRENT_CLIENT`); answers 429 with `Retry-After` and
    a JSON reason when a client exceeds its rate."""

    def __init__(
        self,
        app: ASGIApp,
        limiter: TokenBucketLimiter,
        trusted: TrustedProxies | None = None,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.trusted = trusted or TrustedProxies()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key = client_of(scope, self.trusted)
        token = CURRENT_CLIENT.set(key)
        try:
            await self._limited(key, scope, receive, send)
        finally:
            CURRENT_CLIENT.reset(token)

    async def _limited(self, key: str, scope: Scope, receive: Receive, send: Send) -> None:
        retry_after = self.limiter.acquire(key) if scope["method"] in LIMITED_METHODS else None
        if retry_after is None:
            await self.app(scope, receive, send)
            return
        metrics.RATE_LIMITED.inc()
        seconds = max(1, math.ceil(retry_after))
        error = RateLimitedError(
            f"more than {self.limiter.per_minute} requests a minute from {key}",
            retry_after_s=seconds,
        )
        await send_json(send, 429, error.body(), error.headers())
