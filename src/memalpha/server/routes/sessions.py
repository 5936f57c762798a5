"""Sessions: create, list, delete; memorize chunks into one; ask it questions."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from memalpha.server.deps import (
    Authorized,
    Config,
    Service,
    cap,
    cap_each,
    timed,
    valid_session_name,
)
from memalpha.server.errors import ContainedRoute, ErrorCode
from memalpha.server.schemas import (
    AnswerOut,
    Answers,
    AskRequest,
    CallOut,
    ChunkOut,
    CreateSession,
    Deleted,
    MemorizeRequest,
    MemorizeResponse,
    SessionInfo,
    SessionList,
    SessionName,
    changes,
)

router = APIRouter(tags=["sessions"], route_class=ContainedRoute)


@router.post("/sessions", status_code=201)
async def create_session(
    body: CreateSession, service: Service, cfg: Config, caller: Authorized
) -> SessionName:
    name = valid_session_name(body.name, cfg.limits)
    await run_in_threadpool(service.create_session, caller.scope(name))
    return SessionName(name=name)


@router.get("/sessions")
async def list_sessions(service: Service, caller: Authorized) -> SessionList:
    """The caller's sessions (a tenant key sees only its namespace's, by their short names)."""
    infos = await run_in_threadpool(service.sessions)
    mine = [(caller.visible(s.name), s) for s in infos]
    return SessionList(
        sessions=[
            SessionInfo.model_validate(s).model_copy(update={"name": name})
            for name, s in mine
            if name is not None
        ]
    )


@router.delete("/sessions/{name}")
async def delete_session(name: str, service: Service, caller: Authorized) -> Deleted:
    await run_in_threadpool(service.delete_session, caller.scope(name))
    return Deleted(deleted=name)


@router.post("/sessions/{name}/memorize")
async def memorize(
    name: str, body: MemorizeRequest, service: Service, cfg: Config, caller: Authorized
) -> MemorizeResponse:
    """The writer reads the chunks in order; per chunk, its calls and what they changed."""
    limits = cfg.limits
    cap(len(body.chunks), limits.max_chunks, ErrorCode.TOO_MANY_CHUNKS, "chunks per request")
    most = limits.max_chunk_chars
    cap_each(body.chunks, most, ErrorCode.CHUNK_TOO_LONG, "characters in a chunk")
    per_chunk = await timed(cfg, service.memorize, caller.scope(name), body.chunks)
    return MemorizeResponse(
        chunks=[
            ChunkOut(calls=[CallOut.of(r) for r in results], diff=changes(results))
            for results in per_chunk
        ]
    )


@router.post("/sessions/{name}/ask")
async def ask(
    name: str, body: AskRequest, service: Service, cfg: Config, caller: Authorized
) -> Answers:
    """Answers from the session's memory alone, with the entries retrieved for each."""
    limits = cfg.limits
    cap(len(body.questions), limits.max_questions, ErrorCode.TOO_MANY_QUESTIONS, "questions")
    most = limits.max_question_chars
    cap_each(body.questions, most, ErrorCode.QUESTION_TOO_LONG, "characters in a question")
    answers = await timed(cfg, service.ask, caller.scope(name), body.questions, body.data_source)
    return Answers(answers=[AnswerOut.of(a) for a in answers])
