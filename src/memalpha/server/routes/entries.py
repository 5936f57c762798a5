"""A session's memory: read it whole, insert/update/delete entries through the writer's own
executor (so the same checks apply), export and import it."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from memalpha.memory import MemoryRecord, ToolCall
from memalpha.server.deps import Config, Service, cap, valid_session_name
from memalpha.server.errors import ContainedRoute, ErrorCode, refused_call
from memalpha.server.schemas import (
    CallOut,
    CallResponse,
    ComponentName,
    ContentBody,
    Imported,
    ImportRequest,
    MemoryView,
    changes,
)

router = APIRouter(tags=["memory"], route_class=ContainedRoute)


async def _call(service: Service, name: str, call: ToolCall) -> CallResponse:
    """Run one call; a refused call is an API error with the refusal's own code."""
    result = await run_in_threadpool(service.execute, name, call)
    if not result.ok:
        raise refused_call(result)
    return CallResponse(call=CallOut.of(result), diff=changes([result]))


def _content(body: ContentBody, cfg: Config) -> str:
    cap(
        len(body.content), cfg.limits.max_content_chars, ErrorCode.CONTENT_TOO_LONG, "content chars"
    )
    return body.content


@router.get("/sessions/{name}/memory")
async def get_memory(name: str, service: Service) -> MemoryView:
    return MemoryView.model_validate(await run_in_threadpool(service.snapshot, name))


@router.post("/sessions/{name}/memory/{component}", status_code=201)
async def insert_entry(
    name: str, component: ComponentName, body: ContentBody, service: Service, cfg: Config
) -> CallResponse:
    """Insert into semantic/episodic; for core, replace the paragraph."""
    content, kind = _content(body, cfg), f"{component}_memory"
    call = (
        ToolCall("memory_update", {"memory_type": kind, "new_content": content})
        if component == "core"
        else ToolCall("new_memory_insert", {"memory_type": kind, "content": content})
    )
    return await _call(service, name, call)


@router.put("/sessions/{name}/memory/{component}/{entry_id}")
async def update_entry(
    name: str,
    component: ComponentName,
    entry_id: str,
    body: ContentBody,
    service: Service,
    cfg: Config,
) -> CallResponse:
    args = {"memory_type": f"{component}_memory", "new_content": _content(body, cfg)}
    return await _call(service, name, ToolCall("memory_update", {**args, "memory_id": entry_id}))


@router.delete("/sessions/{name}/memory/{component}/{entry_id}")
async def delete_entry(
    name: str, component: ComponentName, entry_id: str, service: Service
) -> CallResponse:
    args = {"memory_type": f"{component}_memory", "memory_id": entry_id}
    return await _call(service, name, ToolCall("memory_delete", args))


@router.get("/sessions/{name}/export")
async def export(name: str, service: Service) -> MemoryRecord:
    data = await run_in_threadpool(service.snapshot, name)
    data.pop("tokens", None)
    return MemoryRecord.model_validate(data)


@router.post("/sessions/{name}/import")
async def import_memory(name: str, body: ImportRequest, service: Service, cfg: Config) -> Imported:
    name = valid_session_name(name, cfg.limits)
    await run_in_threadpool(service.import_memory, name, body.memory, replace=body.replace)
    return Imported(imported=name)
