"""The HTTP API (FastAPI): `create_app(config)` assembles the routers of `server/routes/`, the
service (built in the lifespan, reached through `Depends`), the API-key check, the body-size
limit and the error handlers of `server/errors.py`."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.concurrency import run_in_threadpool

from memalpha.server.config import ApiKey, ServerConfig, check_exposure
from memalpha.server.deps import authorize
from memalpha.server.errors import install_error_handlers
from memalpha.server.limits import BodyLimit
from memalpha.server.routes import entries, health, reward, sessions
from memalpha.server.service import MemoryService

KEYS_ENV = "MEMALPHA_API_KEYS"


def api_keys(cfg: ServerConfig) -> list[ApiKey]:
    return cfg.keys(os.environ.get(KEYS_ENV, ""))


def _lifespan(cfg: ServerConfig, service: MemoryService | None):
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.service = service or await run_in_threadpool(MemoryService, cfg)
        try:
            yield
        finally:
            await run_in_threadpool(app.state.service.close)

    return lifespan


def create_app(cfg: ServerConfig, service: MemoryService | None = None) -> FastAPI:
    """The app for `cfg` (the service is built at startup unless given).

    Raises:
        ConfigError: no API keys on a non-loopback host.
    """
    keys = api_keys(cfg)
    check_exposure(cfg, keys)
    app = FastAPI(
        title="memalpha memory service",
        version="1",
        lifespan=_lifespan(cfg, service),
        description="Durable three-part memories written by a trained memory agent.",
    )
    app.state.config, app.state.api_keys = cfg, keys
    if service is not None:  # usable at once, also where no lifespan runs (in-process ASGI)
        app.state.service = service
    install_error_handlers(app)
    app.add_middleware(BodyLimit, most=cfg.limits.max_body_bytes)
    app.include_router(health.router)
    for routes in (sessions, entries, reward):
        app.include_router(routes.router, dependencies=[Depends(authorize)])
    return app
