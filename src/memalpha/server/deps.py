"""What every route depends on, as FastAPI dependencies: the service and the config (held by
the app, built in its lifespan), the API-key check, session names, request caps, and model
calls bounded by the backend deadline."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from memalpha.server.config import ApiKey, LimitsConfig, ServerConfig
from memalpha.server.errors import ApiError, ErrorCode
from memalpha.server.service import MemoryService


def get_service(request: Request) -> MemoryService:
    return request.app.state.service


def get_config(request: Request) -> ServerConfig:
    return request.app.state.config


Service = Annotated[MemoryService, Depends(get_service)]
Config = Annotated[ServerConfig, Depends(get_config)]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking: an admin (no namespace; every session, by its stored name) or a
    tenant, whose session names are scoped to its namespace."""

    namespace: str | None = None

    def scope(self, name: str) -> str:
        """The stored name of the caller's session `name`."""
        return name if self.namespace is None else f"{self.namespace}:{name}"

    def visible(self, stored: str) -> str | None:
        """The caller's name for a stored session, or None when it is not the caller's."""
        if self.namespace is None:
            return stored
        prefix = f"{self.namespace}:"
        return stored[len(prefix) :] if stored.startswith(prefix) else None


def authorize(request: Request) -> Caller:
    """Accept the request if the server has no keys or it carries one of them
    (`Authorization: Bearer KEY` or `X-API-Key: KEY`); who the key belongs to.

    Raises:
        ApiError: 401, missing or wrong key.
    """
    keys: list[ApiKey] = request.app.state.api_keys
    if not keys:
        return Caller()
    given = request.headers.get("authorization", "")
    token = given[7:] if given.lower().startswith("bearer ") else ""
    token = token or request.headers.get("x-api-key", "")
    # bytes: compare_digest refuses str with non-ASCII characters (a 500 instead of a 401)
    sent = token.encode("utf-8")
    matches = [k for k in keys if secrets.compare_digest(sent, k.key.encode())]
    if not token or not matches:
        raise ApiError(
            401, ErrorCode.UNAUTHORIZED, "missing or wrong API key (Authorization: Bearer)"
        )
    return Caller(matches[0].namespace)


Authorized = Annotated[Caller, Depends(authorize)]


UNADDRESSABLE = set("/\\?#%")  # a session with one of these could never be named in a URL path


def valid_session_name(name: str, limits: LimitsConfig) -> str:
    """Raises: ApiError 422, a name that is empty, blank, too long, or that no URL path could
    address (a `/`, `?`, `#`, `%` or backslash, or a control character)."""
    addressable = name.isprintable() and not (set(name) & UNADDRESSABLE)
    if len(name) > limits.max_session_chars or not name.strip() or not addressable:
        raise ApiError(
            422,
            ErrorCode.INVALID_SESSION_NAME,
            f"session names are 1–{limits.max_session_chars} printable characters without "
            "/ \\ ? # %",
        )
    return name


def cap(n: int, most: int, code: ErrorCode, what: str) -> None:
    """Raises: ApiError 413 when `n` exceeds `most`."""
    if n > most:
        raise ApiError(413, code, f"{what}: {n} > {most}")


def cap_each(texts: list[str], most: int, code: ErrorCode, what: str) -> None:
    """Raises: ApiError 413 when any of `texts` is longer than `most` characters."""
    for text in texts:
        cap(len(text), most, code, what)


async def timed(cfg: ServerConfig, fn: Callable[..., Any], *args: Any) -> Any:
    """Run a model-bound call in a worker thread, within the backend deadline.

    Raises:
        ApiError: 504 when it takes longer than `backend_timeout_s`.
    """
    try:
        return await asyncio.wait_for(run_in_threadpool(fn, *args), cfg.backend_timeout_s)
    except TimeoutError:
        raise ApiError(
            504, ErrorCode.BACKEND_TIMEOUT, f"no result within {cfg.backend_timeout_s:g} s"
        ) from None
