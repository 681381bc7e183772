"""The router app: the shared API over `RouterPlane`, with its client middleware (who the client
is, the per-client rate limit)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from pizza_inference import metrics
from pizza_inference.api.app import build_app
from pizza_inference.api.oip import MAX_INFER_BATCH
from pizza_inference.config import ModeWatchConfig, RouterConfig
from pizza_inference.memory import MemoryLimits, memory_limits
from pizza_inference.router.clients import CLIENT_GROUPS
from pizza_inference.router.modewatch import ModeWatcher
from pizza_inference.router.plane import RouterPlane
from pizza_inference.router.ratelimit import RateLimitMiddleware, TokenBucketLimiter


def router_memory_limits(config: RouterConfig) -> MemoryLimits:
    """The router's limits: all its budget for bodies (it decodes no image), infer bodies sized
    for the most images a request may carry."""
    return memory_limits(
        config.memory_budget_bytes, decodes_images=False, batch_images=MAX_INFER_BATCH
    )


def create_router_app(
    config: RouterConfig,
    *,
    plane: RouterPlane | None = None,
    mode_watch: ModeWatchConfig | None = None,
    fast_classify: bool = True,
) -> FastAPI:
    """`mode_watch` None: from the environment (on only with `PIZZA_ROUTER_MODE_CONFIGMAP`)."""
    router_plane = plane or RouterPlane(config)
    metrics.expose_fallback_reasons()
    metrics.expose_client_groups(CLIENT_GROUPS)
    metrics.expose_upstreams()
    watch_config = mode_watch or ModeWatchConfig.from_env()
    watcher = ModeWatcher(watch_config, router_plane) if watch_config is not None else None
    router_plane.mode_watcher = watcher

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = (
            asyncio.create_task(watcher.run(), name="pizza-router-mode-watch")
            if watcher is not None
            else None
        )
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await router_plane.stop()

    limiter = TokenBucketLimiter(config.rate_limit_per_minute)
    app = build_app(
        router_plane,
        title="pizza router",
        limits=router_memory_limits(config),
        lifespan=lifespan,
        inner_middleware=[
            (RateLimitMiddleware, {"limiter": limiter, "trusted": config.trusted_proxies})
        ],
        fast_classify=fast_classify,
    )
    app.state.limiter = limiter
    app.state.mode_watcher = watcher
    return app
