"""The router app: the shared API over `RouterPlane`, with the per-client rate limit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from pizza_inference.api.app import build_app
from pizza_inference.config import RouterConfig
from pizza_inference.router.plane import RouterPlane
from pizza_inference.router.ratelimit import RateLimitMiddleware, TokenBucketLimiter


def create_router_app(config: RouterConfig, *, plane: RouterPlane | None = None) -> FastAPI:
    router_plane = plane or RouterPlane(config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await router_plane.stop()

    limiter = TokenBucketLimiter(config.rate_limit_per_minute)
    app = build_app(
        router_plane,
        title="pizza router",
        lifespan=lifespan,
        inner_middleware=[(RateLimitMiddleware, {"limiter": limiter})],
    )
    app.state.limiter = limiter
    return app
