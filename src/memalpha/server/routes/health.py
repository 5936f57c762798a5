"""Liveness, and which writer and reader the service runs."""

from __future__ import annotations

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from memalpha.server.deps import Config, Service
from memalpha.server.errors import ContainedRoute
from memalpha.server.schemas import Health

router = APIRouter(tags=["health"], route_class=ContainedRoute)


@router.get("/health", responses={503: {"model": Health}})
async def health(service: Service, cfg: Config, response: Response) -> Health:
    """ok, or degraded with a 503 when a model backend does not answer (a probe of each
    served model, a short one, and calls stuck past the deadline)."""
    backends = await run_in_threadpool(service.health)
    degraded = any(problem is not None for problem in backends.values())
    if degraded:
        response.status_code = 503
    return Health(
        status="degraded" if degraded else "ok",
        writer=service.writer_llm.name,
        reader=cfg.reader.kind,
        backends=backends,
    )
