"""Builds the FastAPI app around an `InferenceService` (same API for model server and router)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI

from pizza_inference import metrics
from pizza_inference.api.admission import AdmissionMiddleware
from pizza_inference.api.classify_asgi import ClassifyFastPath
from pizza_inference.api.observability import RequestMetricsMiddleware, build_metrics_router
from pizza_inference.api.oip import build_oip_router
from pizza_inference.api.prior import build_prior_router
from pizza_inference.errors import install_error_handlers
from pizza_inference.memory import MemoryLimits, MemoryPool
from pizza_inference.service import InferenceService

log = logging.getLogger(__name__)

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def build_app(
    service: InferenceService,
    *,
    title: str,
    limits: MemoryLimits,
    lifespan: Callable[[FastAPI], AsyncIterator[None]] | Lifespan | None = None,
    inner_middleware: list[tuple[type, dict[str, Any]]] | None = None,
    fast_classify: bool = True,
) -> FastAPI:
    """`inner_middleware` runs inside the request metrics (so e.g. its 429s are counted); the
    admission of request bodies (`api.admission`: each endpoint's body limit and the body pool
    of the memory budget `limits`) inside both, and the classify fast path (`api.classify_asgi`)
    innermost. `fast_classify=False` leaves the classify endpoints to FastAPI alone (only
    bench/inference/router_overhead.py does, to measure both in one run)."""
    app = FastAPI(
        title=title,
        version="0.1.0",
        description="Pizza image classifier: prior endpoints and the Open Inference Protocol v2.",
        lifespan=lifespan,  # type: ignore[arg-type]
    )
    app.state.service = service
    log.info(
        "memory limits role=%s %s",
        service.role,
        " ".join(f"{k}={v}" for k, v in limits.describe().items()),
    )
    app.state.memory_limits = limits
    bodies = limits.body_pool_bytes
    app.state.body_pool = MemoryPool(
        "bodies", bodies, metrics.memory_pool_observer("bodies", bodies)
    )
    app.include_router(build_prior_router())
    app.include_router(build_oip_router())
    app.include_router(build_metrics_router())
    install_error_handlers(app)
    if fast_classify:
        app.add_middleware(ClassifyFastPath, service=service)
    app.add_middleware(AdmissionMiddleware, limits=limits, pool=app.state.body_pool)
    for cls, options in inner_middleware or []:
        app.add_middleware(cls, **options)  # type: ignore[arg-type]
    app.add_middleware(RequestMetricsMiddleware, templates=lambda: list(app.openapi()["paths"]))
    return app
