"""/metrics (Prometheus text, or the prior JSON summary on `Accept: application/json`) and the
request-metrics ASGI middleware."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pizza_inference import metrics
from pizza_inference.api.prior import service_of

PROMETHEUS_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "text/plain": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        },
        "description": "Prometheus text exposition (JSON summary with Accept: application/json)",
    }
}


def wants_json(accept: str) -> bool:
    """True when the client prefers JSON over text (Prometheus sends text/plain or openmetrics)."""
    accept = accept.lower()
    return (
        "application/json" in accept and "text/plain" not in accept and "openmetrics" not in accept
    )


def build_metrics_router() -> APIRouter:
    router = APIRouter(tags=["metrics"])

    @router.get("/metrics", responses=PROMETHEUS_DOC, response_class=Response)
    async def metrics_endpoint(request: Request) -> Response:
        if wants_json(request.headers.get("accept", "")):
            return JSONResponse(asdict(service_of(request).metrics_summary()))
        body, content_type = metrics.render_prometheus()
        return Response(body, media_type=content_type)

    @router.get("/prometheus-metrics", responses=PROMETHEUS_DOC, response_class=Response)
    async def prometheus_metrics() -> Response:
        """Alias of /metrics (always the text format), kept from the prior system."""
        body, content_type = metrics.render_prometheus()
        return Response(body, media_type=content_type)

    return router


class RequestMetricsMiddleware:
    """Counts and times every HTTP request by method, route template and status code."""

    MAX_CACHE = 1024

    def __init__(self, app: ASGIApp, templates: Callable[[], list[str]]) -> None:
        self.app = app
        self._templates = templates
        self._patterns: list[tuple[re.Pattern[str], str]] | None = None
        self._endpoints: dict[str, str] = {}

    def endpoint(self, path: str) -> str:
        """The route template matching `path` (`unmatched` for unknown paths)."""
        cached = self._endpoints.get(path)
        if cached is not None:
            return cached
        if self._patterns is None:
            self._patterns = [
                (re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(t)) + "$"), t)
                for t in self._templates()
            ]
        endpoint = next((t for p, t in self._patterns if p.match(path)), "unmatched")
        if len(self._endpoints) < self.MAX_CACHE:
            self._endpoints[path] = endpoint
        return endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in metrics.METRICS_PATHS:
            await self.app(scope, receive, send)
            return
        status = 500
        endpoint = self.endpoint(scope["path"])

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        metrics.ACTIVE_CONNECTIONS.inc()
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_and_record)
        finally:
            metrics.ACTIVE_CONNECTIONS.dec()
            method: Any = scope["method"]
            metrics.REQUESTS.labels(method, endpoint, str(status)).inc()
            metrics.REQUEST_DURATION.labels(method, endpoint).observe(time.perf_counter() - start)
