"""The HTTP API (FastAPI): sessions, memorize, ask, memory CRUD, export/import, health, and the
batch reader/judge endpoints the training reward can call on a separate machine.

Every error body is `{"error": {"code": STABLE_CODE, "message": TEXT}}`; clients switch on the
code. Nothing internal (stack traces, paths of the server) reaches a client.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from memalpha.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    ConfigError,
    DataError,
    MemalphaError,
    SessionExistsError,
    SessionNotFoundError,
    StoreError,
)
from memalpha.memory import Change, ToolCall, ToolResult
from memalpha.reader import Answer
from memalpha.server.config import ServerConfig, check_exposure
from memalpha.server.service import MemoryService

log = logging.getLogger("memalpha.server")
KEYS_ENV = "MEMALPHA_API_KEYS"
ComponentName = Literal["core", "semantic", "episodic"]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# ------------------------------------------------------------------ request / response models


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateSession(_Body):
    name: str = Field(min_length=1)


class MemorizeRequest(_Body):
    chunks: list[str] = Field(min_length=1, description="Chunks, memorized in order.")


class AskRequest(_Body):
    questions: list[str] = Field(min_length=1)
    data_source: str = Field("", description="Selects the published query prompt, if any.")


class ContentBody(_Body):
    content: str = Field(min_length=1)


class ImportRequest(_Body):
    memory: dict[str, Any] = Field(description="An exported memory (GET …/export).")
    replace: bool = False


class QAItem(_Body):
    memory: dict[str, Any]
    question: str
    data_source: str = ""


class BatchQARequest(_Body):
    items: list[QAItem] = Field(min_length=1)


class JudgedWrite(_Body):
    memory_type: str
    content: str


class JudgeRequest(_Body):
    writes: list[JudgedWrite] = Field(min_length=1)


def _change(c: Change) -> dict[str, Any]:
    return {
        "op": c.op,
        "component": c.component.value,
        "id": c.entry.id,
        "content": c.entry.content,
    }


def _call(r: ToolResult) -> dict[str, Any]:
    return {
        "name": r.call.name,
        "arguments": r.call.arguments,
        "status": r.status.value,
        "entry_id": r.entry_id,
        "message": r.message,
    }


def _answer(a: Answer) -> dict[str, Any]:
    return {"answer": a.text, "evidence": [{"id": e.id, "content": e.content} for e in a.evidence]}


# ------------------------------------------------------------------ errors

_STATUS: list[tuple[type[Exception], int, str]] = [  # most specific first
    (SessionNotFoundError, 404, "session_not_found"),
    (SessionExistsError, 409, "session_exists"),
    (BackendTimeout, 504, "backend_timeout"),
    (BackendUnavailable, 503, "backend_unavailable"),
    (BackendError, 502, "backend_error"),
    (DataError, 422, "invalid_data"),
    (ConfigError, 501, "not_configured"),
    (StoreError, 500, "store_error"),
]
_CALL_ERRORS = {  # a refused CRUD call: its executor error → (status, code)
    "UnknownEntryError": (404, "unknown_entry"),
    "DuplicateEntryError": (409, "duplicate_entry"),
    "LimitExceededError": (413, "memory_limit_exceeded"),
    "ComponentDisabledError": (422, "component_disabled"),
}


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return _error(400, "malformed_json", "the request body is not valid JSON")
        where = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'body'}: {e.get('msg')}"
            for e in errors[:5]
        )
        return _error(422, "invalid_request", where)

    @app.exception_handler(MemalphaError)
    async def memalpha_error(_: Request, exc: MemalphaError) -> JSONResponse:
        message = str(exc)
        path = getattr(exc, "path", None)
        if path:  # the server's own file names are not the client's business
            message = message.removeprefix(f"{path}: ")
        if isinstance(exc, SessionNotFoundError):  # no list of other tenants' sessions
            message = f"unknown session '{exc.session}'"
        for kind, status, code in _STATUS:
            if isinstance(exc, kind):
                return _error(status, code, message)
        return _error(422, "refused", message)

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return _error(500, "internal_error", "internal error; see the server log")


# ------------------------------------------------------------------ the app


def api_keys(cfg: ServerConfig) -> list[str]:
    env = [k.strip() for k in os.environ.get(KEYS_ENV, "").split(",") if k.strip()]
    return [*cfg.api_keys, *env]


def create_app(cfg: ServerConfig, service: MemoryService | None = None) -> FastAPI:
    """The app for `cfg` (the service is built at startup unless given).

    Raises:
        ConfigError: no API keys on a non-loopback host.
    """
    keys = api_keys(cfg)
    check_exposure(cfg, keys)
    limits = cfg.limits

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.service = service or await run_in_threadpool(MemoryService, cfg)
        try:
            yield
        finally:
            await run_in_threadpool(app.state.service.close)

    app = FastAPI(
        title="memalpha memory service",
        version="1",
        lifespan=lifespan,
        description="Durable three-part memories written by a trained memory agent.",
    )
    _install_error_handlers(app)

    @app.middleware("http")
    async def body_limit(request: Request, call_next: Callable[[Request], Awaitable[Any]]):
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > limits.max_body_bytes:
            return _error(413, "body_too_large", f"body of {size} bytes > {limits.max_body_bytes}")
        return await call_next(request)

    def authorize(request: Request) -> None:
        if not keys:
            return
        given = request.headers.get("authorization", "")
        token = given[7:] if given.lower().startswith("bearer ") else ""
        token = token or request.headers.get("x-api-key", "")
        if not any(secrets.compare_digest(token, k) for k in keys):
            raise ApiError(401, "unauthorized", "missing or wrong API key (Authorization: Bearer)")

    def svc(request: Request) -> MemoryService:
        return request.app.state.service

    def session_name(name: str) -> str:
        if len(name) > limits.max_session_chars or not name.strip():
            raise ApiError(
                422, "invalid_session_name", f"session names are 1–{limits.max_session_chars} chars"
            )
        return name

    def cap(n: int, most: int, code: str, what: str) -> None:
        if n > most:
            raise ApiError(413, code, f"{what}: {n} > {most}")

    async def timed(fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return await asyncio.wait_for(run_in_threadpool(fn, *args), cfg.backend_timeout_s)
        except TimeoutError:
            raise ApiError(
                504, "backend_timeout", f"no result within {cfg.backend_timeout_s:g} s"
            ) from None

    guard = [Depends(authorize)]

    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        s = svc(request)
        return {"status": "ok", "writer": s.writer_llm.name, "reader": cfg.reader.kind}

    @app.post("/sessions", status_code=201, dependencies=guard)
    async def create_session(body: CreateSession, request: Request) -> dict[str, str]:
        name = session_name(body.name)
        await run_in_threadpool(svc(request).create_session, name)
        return {"name": name}

    @app.get("/sessions", dependencies=guard)
    async def list_sessions(request: Request) -> dict[str, Any]:
        return {"sessions": await run_in_threadpool(svc(request).sessions)}

    @app.delete("/sessions/{name}", dependencies=guard)
    async def delete_session(name: str, request: Request) -> dict[str, str]:
        await run_in_threadpool(svc(request).delete_session, name)
        return {"deleted": name}

    @app.post("/sessions/{name}/memorize", dependencies=guard)
    async def memorize(name: str, body: MemorizeRequest, request: Request) -> dict[str, Any]:
        cap(len(body.chunks), limits.max_chunks, "too_many_chunks", "chunks per request")
        for chunk in body.chunks:
            cap(len(chunk), limits.max_chunk_chars, "chunk_too_long", "characters in a chunk")
        outcomes = await timed(svc(request).memorize, name, body.chunks)
        return {
            "chunks": [
                {"calls": [_call(r) for r in o.calls], "diff": [_change(c) for c in o.changes]}
                for o in outcomes
            ]
        }

    @app.post("/sessions/{name}/ask", dependencies=guard)
    async def ask(name: str, body: AskRequest, request: Request) -> dict[str, Any]:
        cap(len(body.questions), limits.max_questions, "too_many_questions", "questions")
        for q in body.questions:
            cap(len(q), limits.max_question_chars, "question_too_long", "characters in a question")
        answers = await timed(svc(request).ask, name, body.questions, body.data_source)
        return {"answers": [_answer(a) for a in answers]}

    @app.get("/sessions/{name}/memory", dependencies=guard)
    async def get_memory(name: str, request: Request) -> dict[str, Any]:
        return await run_in_threadpool(svc(request).snapshot, name)

    async def crud(name: str, call: ToolCall, request: Request) -> dict[str, Any]:
        result, changes = await run_in_threadpool(svc(request).execute, name, call)
        if not result.ok:
            status, code = _CALL_ERRORS.get(result.error or "", (422, "memory_call_failed"))
            raise ApiError(status, code, result.message)
        return {"call": _call(result), "diff": [_change(c) for c in changes]}

    @app.post("/sessions/{name}/memory/{component}", status_code=201, dependencies=guard)
    async def insert_entry(
        name: str, component: ComponentName, body: ContentBody, request: Request
    ) -> dict[str, Any]:
        """Insert into semantic/episodic; for core, replace the paragraph."""
        cap(len(body.content), limits.max_content_chars, "content_too_long", "content chars")
        kind = f"{component}_memory"
        call = (
            ToolCall("memory_update", {"memory_type": kind, "new_content": body.content})
            if component == "core"
            else ToolCall("new_memory_insert", {"memory_type": kind, "content": body.content})
        )
        return await crud(name, call, request)

    @app.put("/sessions/{name}/memory/{component}/{entry_id}", dependencies=guard)
    async def update_entry(
        name: str, component: ComponentName, entry_id: str, body: ContentBody, request: Request
    ) -> dict[str, Any]:
        cap(len(body.content), limits.max_content_chars, "content_too_long", "content chars")
        args = {"memory_type": f"{component}_memory", "new_content": body.content}
        return await crud(name, ToolCall("memory_update", {**args, "memory_id": entry_id}), request)

    @app.delete("/sessions/{name}/memory/{component}/{entry_id}", dependencies=guard)
    async def delete_entry(
        name: str, component: ComponentName, entry_id: str, request: Request
    ) -> dict[str, Any]:
        args = {"memory_type": f"{component}_memory", "memory_id": entry_id}
        return await crud(name, ToolCall("memory_delete", args), request)

    @app.get("/sessions/{name}/export", dependencies=guard)
    async def export(name: str, request: Request) -> dict[str, Any]:
        data = await run_in_threadpool(svc(request).snapshot, name)
        data.pop("tokens", None)
        return data

    @app.post("/sessions/{name}/import", dependencies=guard)
    async def import_memory(name: str, body: ImportRequest, request: Request) -> dict[str, str]:
        name = session_name(name)
        await run_in_threadpool(svc(request).import_memory, name, body.memory, replace=body.replace)
        return {"imported": name}

    @app.post("/v1/reader/answer", dependencies=guard)
    async def batch_answer(body: BatchQARequest, request: Request) -> dict[str, Any]:
        """Answer questions over given memories (r1 of the training reward, as a service)."""
        cap(len(body.items), limits.max_questions, "too_many_questions", "items")
        items = [(i.memory, i.question, i.data_source) for i in body.items]
        answers = await timed(svc(request).answer_batch, items)
        return {"answers": [_answer(a) for a in answers]}

    @app.post("/v1/judge", dependencies=guard)
    async def batch_judge(body: JudgeRequest, request: Request) -> dict[str, Any]:
        """Content validity of writes (r4 of the training reward, as a service)."""
        cap(len(body.writes), limits.max_questions, "too_many_writes", "writes")
        for w in body.writes:
            cap(len(w.content), limits.max_content_chars, "content_too_long", "content chars")
        writes = [(w.memory_type, w.content) for w in body.writes]
        return {"scores": await timed(svc(request).judge_batch, writes)}

    return app
