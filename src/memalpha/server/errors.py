"""Errors as the HTTP API reports them: a stable code per failure (`ErrorCode`), chosen by the
type of the library error, never by its name or text. Every error body is
`{"error": {"code": CODE, "message": TEXT}}`; nothing internal (stack traces, the server's own
paths) reaches a client."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from enum import StrEnum
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from memalpha.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    ComponentDisabledError,
    ConfigError,
    DataError,
    DuplicateEntryError,
    LimitExceededError,
    MemalphaError,
    SessionExistsError,
    SessionNotFoundError,
    StoreError,
    UnknownEntryError,
)
from memalpha.memory import ToolResult

log = logging.getLogger("memalpha.server")


class ErrorCode(StrEnum):
    """Every code the API answers with; clients switch on these."""

    UNAUTHORIZED = "unauthorized"
    BODY_TOO_LARGE = "body_too_large"
    MALFORMED_JSON = "malformed_json"
    INVALID_REQUEST = "invalid_request"
    INVALID_SESSION_NAME = "invalid_session_name"
    TOO_MANY_CHUNKS = "too_many_chunks"
    CHUNK_TOO_LONG = "chunk_too_long"
    CONTENT_TOO_LONG = "content_too_long"
    TOO_MANY_QUESTIONS = "too_many_questions"
    QUESTION_TOO_LONG = "question_too_long"
    TOO_MANY_WRITES = "too_many_writes"
    SESSION_NOT_FOUND = "session_not_found"
    SESSION_EXISTS = "session_exists"
    UNKNOWN_ENTRY = "unknown_entry"
    DUPLICATE_ENTRY = "duplicate_entry"
    MEMORY_LIMIT_EXCEEDED = "memory_limit_exceeded"
    COMPONENT_DISABLED = "component_disabled"
    MEMORY_CALL_FAILED = "memory_call_failed"
    BACKEND_TIMEOUT = "backend_timeout"
    BACKEND_UNAVAILABLE = "backend_unavailable"
    BACKEND_ERROR = "backend_error"
    INVALID_DATA = "invalid_data"
    NOT_CONFIGURED = "not_configured"
    STORE_ERROR = "store_error"
    REFUSED = "refused"
    INTERNAL_ERROR = "internal_error"


class ApiError(Exception):
    """A request the HTTP layer itself refuses (limits, names, keys)."""

    def __init__(self, status: int, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# a library error's type → (status, code); most specific first
LIBRARY_ERRORS: tuple[tuple[type[Exception], int, ErrorCode], ...] = (
    (SessionNotFoundError, 404, ErrorCode.SESSION_NOT_FOUND),
    (SessionExistsError, 409, ErrorCode.SESSION_EXISTS),
    (BackendTimeout, 504, ErrorCode.BACKEND_TIMEOUT),
    (BackendUnavailable, 503, ErrorCode.BACKEND_UNAVAILABLE),
    (BackendError, 502, ErrorCode.BACKEND_ERROR),
    (DataError, 422, ErrorCode.INVALID_DATA),
    (ConfigError, 501, ErrorCode.NOT_CONFIGURED),
    (StoreError, 500, ErrorCode.STORE_ERROR),
)
# the type of the error that refused a CRUD call → (status, code)
REFUSED_CALLS: tuple[tuple[type[Exception], int, ErrorCode], ...] = (
    (UnknownEntryError, 404, ErrorCode.UNKNOWN_ENTRY),
    (DuplicateEntryError, 409, ErrorCode.DUPLICATE_ENTRY),
    (LimitExceededError, 413, ErrorCode.MEMORY_LIMIT_EXCEEDED),
    (ComponentDisabledError, 422, ErrorCode.COMPONENT_DISABLED),
)


def _lookup(
    kind: type[Exception] | None,
    table: tuple[tuple[type[Exception], int, ErrorCode], ...],
    default: tuple[int, ErrorCode],
) -> tuple[int, ErrorCode]:
    for known, status, code in table:
        if kind is not None and issubclass(kind, known):
            return status, code
    return default


def refused_call(result: ToolResult) -> ApiError:
    """The API error of a CRUD call the executor refused."""
    status, code = _lookup(result.error, REFUSED_CALLS, (422, ErrorCode.MEMORY_CALL_FAILED))
    return ApiError(status, code, result.message)


def error_response(status: int, code: ErrorCode, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code.value, "message": message}}, status_code=status)


async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.code, exc.message)


async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, ErrorCode.MALFORMED_JSON, "the request body is not valid JSON")
    where = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'body'}: {e.get('msg')}"
        for e in errors[:5]
    )
    return error_response(422, ErrorCode.INVALID_REQUEST, where)


async def _library_error(_: Request, exc: MemalphaError) -> JSONResponse:
    message = str(exc)
    path = getattr(exc, "path", None)
    if path:  # the server's own file names are not the client's business
        message = message.removeprefix(f"{path}: ")
    if isinstance(exc, SessionNotFoundError):  # no list of other tenants' sessions
        message = f"unknown session '{exc.session}'"
    status, code = _lookup(type(exc), LIBRARY_ERRORS, (422, ErrorCode.REFUSED))
    return error_response(status, code, message)


async def _internal(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error")
    return error_response(500, ErrorCode.INTERNAL_ERROR, "internal error; see the server log")


class ContainedRoute(APIRoute):
    """A route whose unexpected errors become a 500 answer inside the route. (A handler for
    `Exception` runs in Starlette's outermost middleware, which re-raises afterwards, and the
    server then drops the client's keep-alive connection.)"""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def contained(request: Request) -> Response:
            try:
                return await handler(request)
            except (ApiError, MemalphaError, HTTPException, RequestValidationError):
                raise  # answered by their own handlers
            except Exception:
                log.exception("unhandled error in %s %s", request.method, request.url.path)
                return error_response(
                    500, ErrorCode.INTERNAL_ERROR, "internal error; see the server log"
                )

        return contained


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(MemalphaError, _library_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _internal)
