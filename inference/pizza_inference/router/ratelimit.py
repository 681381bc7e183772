"""Per-client rate limit (token bucket per client address) and its ASGI middleware."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from pizza_inference import metrics
from pizza_inference.api.asgi import send_json
from pizza_inference.errors import RateLimitedError

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


class RateLimitMiddleware:
    """Answers 429 with `Retry-After` and a JSON reason when a client exceeds its rate."""

    def __init__(self, app: ASGIApp, limiter: TokenBucketLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in LIMITED_METHODS:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        key = client[0] if client else "unknown"
        retry_after = self.limiter.acquire(key)
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
