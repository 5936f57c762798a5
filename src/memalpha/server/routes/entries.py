"""A session's memory: read it whole, search it, see its history, insert/update/delete
entries through the writer's own executor (so the same checks apply), export and import it."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from memalpha.memory import Component, MemoryRecord, ToolCall
from memalpha.server.deps import Authorized, Config, Service, cap, valid_session_name
from memalpha.server.errors import ContainedRoute, ErrorCode, refused_call
from memalpha.server.schemas import (
    CallOut,
    CallResponse,
    ComponentName,
    ContentBody,
    History,
    HistoryEntry,
    Hit,
    Imported,
    ImportRequest,
    MemoryView,
    SearchRequest,
    SearchResults,
    changes,
)

router = APIRouter(tags=["memory"], route_class=ContainedRoute)


async def _call(service: Service, name: str, call: ToolCall) -> CallResponse:
    """Run one call on stored session `name`; a refused call is an API error with the
    refusal's own code."""
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
async def get_memory(name: str, service: Service, caller: Authorized) -> MemoryView:
    return MemoryView.model_validate(await run_in_threadpool(service.snapshot, caller.scope(name)))


@router.post("/sessions/{name}/memory/{component}", status_code=201)
async def insert_entry(
    name: str,
    component: ComponentName,
    body: ContentBody,
    service: Service,
    cfg: Config,
    caller: Authorized,
) -> CallResponse:
    """Insert into semantic/episodic; for core, replace the paragraph."""
    content, kind = _content(body, cfg), f"{component}_memory"
    call = (
        ToolCall("memory_update", {"memory_type": kind, "new_content": content})
        if component == "core"
        else ToolCall("new_memory_insert", {"memory_type": kind, "content": content})
    )
    return await _call(service, caller.scope(name), call)


@router.put("/sessions/{name}/memory/{component}/{entry_id}")
async def update_entry(
    name: str,
    component: ComponentName,
    entry_id: str,
    body: ContentBody,
    service: Service,
    cfg: Config,
    caller: Authorized,
) -> CallResponse:
    args = {"memory_type": f"{component}_memory", "new_content": _content(body, cfg)}
    call = ToolCall("memory_update", {**args, "memory_id": entry_id})
    return await _call(service, caller.scope(name), call)


@router.delete("/sessions/{name}/memory/{component}/{entry_id}")
async def delete_entry(
    name: str, component: ComponentName, entry_id: str, service: Service, caller: Authorized
) -> CallResponse:
    args = {"memory_type": f"{component}_memory", "memory_id": entry_id}
    return await _call(service, caller.scope(name), ToolCall("memory_delete", args))


@router.post("/sessions/{name}/search")
async def search(
    name: str, body: SearchRequest, service: Service, caller: Authorized
) -> SearchResults:
    """The entries BM25 ranks highest for the query, with their scores; no LLM answer."""
    components = [Component(t) for t in body.memory_types]
    scoped = caller.scope(name)
    hits = await run_in_threadpool(service.search, scoped, body.query, body.k, components)
    return SearchResults(
        results=[
            Hit(component=c.value, id=e.id, content=e.content, score=score) for c, e, score in hits
        ]
    )


@router.get("/sessions/{name}/history")
async def history(
    name: str, service: Service, caller: Authorized, entry: str | None = None
) -> History:
    """Every operation applied to the session, in order, from the durable store: time,
    source (writer, crud, import), content before and after; `?entry=s3` for one entry."""
    records = await run_in_threadpool(service.history, caller.scope(name), entry)
    return History(session=name, operations=[HistoryEntry.model_validate(r) for r in records])


@router.get("/sessions/{name}/export")
async def export(name: str, service: Service, caller: Authorized) -> MemoryRecord:
    data = await run_in_threadpool(service.snapshot, caller.scope(name))
    data.pop("tokens", None)
    return MemoryRecord.model_validate(data)


@router.post("/sessions/{name}/import")
async def import_memory(
    name: str, body: ImportRequest, service: Service, cfg: Config, caller: Authorized
) -> Imported:
    name = valid_session_name(name, cfg.limits)
    scoped = caller.scope(name)
    await run_in_threadpool(service.import_memory, scoped, body.memory, replace=body.replace)
    return Imported(imported=name)
