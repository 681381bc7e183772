"""The model server: one backend behind the data plane, served by the shared API."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from pizza_inference.api.app import build_app
from pizza_inference.backends import create_backend
from pizza_inference.backends.base import ModelBackend
from pizza_inference.config import ModelServerConfig
from pizza_inference.memory import MemoryLimits, memory_limits
from pizza_inference.model_server.plane import ModelDataPlane
from pizza_inference.sources import resolve

log = logging.getLogger(__name__)


def make_loader(config: ModelServerConfig) -> ModelBackend:
    """Resolves the source and loads the backend (runs on the loading thread)."""
    path = resolve(config.source)
    log.info(
        "loading model name=%s backend=%s source=%s path=%s precision=%s",
        config.model_name,
        config.backend,
        config.source,
        path,
        config.precision,
    )
    backend = create_backend(
        config.backend,
        path,
        precision=config.precision,
        device=config.device,
        threads=config.threads,
    )
    backend.load()
    return backend


def model_memory_limits(config: ModelServerConfig) -> MemoryLimits:
    """A model server's limits: its budget, infer bodies sized for its max batch size."""
    return memory_limits(
        config.memory_budget_bytes, decodes_images=True, batch_images=config.max_batch_size
    )


def create_model_app(config: ModelServerConfig, *, plane: ModelDataPlane | None = None) -> FastAPI:
    """The app; the model loads on a background thread at startup (liveness answers meanwhile).

    A `plane` given keeps its own image pool; the body limits come from `config`."""
    limits = model_memory_limits(config)
    model_plane = plane or ModelDataPlane(
        lambda: make_loader(config),
        model_name=config.model_name,
        backend_kind=config.backend,
        source=config.source,
        max_batch_size=config.max_batch_size,
        batch_timeout_s=config.batch_timeout_ms / 1000.0,
        image_memory_bytes=limits.image_pool_bytes,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if model_plane.state == "loading" and model_plane.backend is None:
            model_plane.load_in_background()
        yield
        await model_plane.stop()

    return build_app(
        model_plane,
        title=f"pizza model server ({config.model_name})",
        limits=limits,
        lifespan=lifespan,
    )
