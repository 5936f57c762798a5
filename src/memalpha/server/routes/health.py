"""Liveness, and which writer and reader the service runs."""

from __future__ import annotations

from fastapi import APIRouter

from memalpha.server.deps import Config, Service
from memalpha.server.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(service: Service, cfg: Config) -> Health:
    return Health(writer=service.writer_llm.name, reader=cfg.reader.kind)
