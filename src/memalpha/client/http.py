"""The memory service over HTTP, as typed calls: every request body and response is the
server's own pydantic model, every error answer is raised as the `ServiceError` subclass of its
status (with the service's stable code), and every call has a deadline.

    with MemalphaClient("http://127.0.0.1:8750", api_key="k1") as client:
        client.create_session("alice")
        client.memorize("alice", ["Alice moved to Paris in 2019."])
        print(client.ask("alice", ["Where did Alice move?"]).answers[0].answer)

`AsyncMemalphaClient` has the same methods, to be awaited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from memalpha.errors import (
    BackendTimeout,
    BackendUnavailable,
    ServiceBackendError,
    ServiceConflict,
    ServiceError,
    ServiceNotFound,
    ServiceRequestError,
    ServiceUnauthorized,
)
from memalpha.server import schemas

M = TypeVar("M", bound=BaseModel)
ListName = Literal["semantic", "episodic"]
ComponentName = Literal["core", "semantic", "episodic"]
DEFAULT_TIMEOUT_S = 130.0  # the service's default model deadline (120 s) plus a margin
_BY_STATUS: dict[int, type[ServiceError]] = {
    401: ServiceUnauthorized,
    404: ServiceNotFound,
    409: ServiceConflict,
    400: ServiceRequestError,
    413: ServiceRequestError,
    422: ServiceRequestError,
    502: ServiceBackendError,
    503: ServiceBackendError,
    504: ServiceBackendError,
}


@dataclass(frozen=True, slots=True)
class _Call(Generic[M]):
    """One request: method, path, JSON body or query, and the model of its answer."""

    method: str
    path: str
    model: type[M]
    body: BaseModel | None = None
    params: dict[str, str] = field(default_factory=dict)
    accept: tuple[int, ...] = ()  # error statuses whose body is still a `model` (/health)


def _raise_for(response: httpx.Response) -> None:
    """The typed error of a refused request.

    Raises:
        ServiceError (a subclass by status).
    """
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        code, message = "unexpected_answer", response.text[:200]
    kind = _BY_STATUS.get(response.status_code, ServiceError)
    raise kind(response.status_code, code, message)


def _parse(call: _Call[M], response: httpx.Response) -> M:
    if response.is_error and response.status_code not in call.accept:
        _raise_for(response)
    try:
        return call.model.model_validate_json(response.content)
    except ValidationError as exc:
        raise ServiceError(response.status_code, "unexpected_answer", str(exc)) from None


def _transport_error(base_url: str, exc: httpx.HTTPError) -> Exception:
    if isinstance(exc, httpx.TimeoutException):
        return BackendTimeout(f"{base_url}: no answer within the client's deadline")
    return BackendUnavailable(f"no memalpha service at {base_url} ({type(exc).__name__})")


class _Endpoints:
    """Every call of the service, once; the sync and async clients differ only in `_send`."""

    def _send(self, call: _Call[Any]) -> Any:
        raise NotImplementedError

    def health(self) -> schemas.Health:
        """ok, or degraded (the service answers 503) when a model backend does not answer."""
        return self._send(_Call("GET", "/health", schemas.Health, accept=(503,)))

    def create_session(self, name: str) -> schemas.SessionName:
        return self._send(
            _Call("POST", "/sessions", schemas.SessionName, schemas.CreateSession(name=name))
        )

    def sessions(self) -> schemas.SessionList:
        return self._send(_Call("GET", "/sessions", schemas.SessionList))

    def delete_session(self, name: str) -> schemas.Deleted:
        return self._send(_Call("DELETE", f"/sessions/{_q(name)}", schemas.Deleted))

    def memorize(self, name: str, chunks: list[str]) -> schemas.MemorizeResponse:
        body = schemas.MemorizeRequest(chunks=chunks)
        return self._send(
            _Call("POST", f"/sessions/{_q(name)}/memorize", schemas.MemorizeResponse, body)
        )

    def ask(self, name: str, questions: list[str], data_source: str = "") -> schemas.Answers:
        body = schemas.AskRequest(questions=questions, data_source=data_source)
        return self._send(_Call("POST", f"/sessions/{_q(name)}/ask", schemas.Answers, body))

    def search(
        self,
        name: str,
        query: str,
        k: int = 10,
        memory_types: list[ListName] | None = None,
    ) -> schemas.SearchResults:
        body = schemas.SearchRequest(
            query=query, k=k, memory_types=memory_types or ["semantic", "episodic"]
        )
        path = f"/sessions/{_q(name)}/search"
        return self._send(_Call("POST", path, schemas.SearchResults, body))

    def history(self, name: str, entry: str | None = None) -> schemas.History:
        params = {"entry": entry} if entry else {}
        path = f"/sessions/{_q(name)}/history"
        return self._send(_Call("GET", path, schemas.History, params=params))

    def memory(self, name: str) -> schemas.MemoryView:
        return self._send(_Call("GET", f"/sessions/{_q(name)}/memory", schemas.MemoryView))

    def insert(self, name: str, component: ComponentName, content: str) -> schemas.CallResponse:
        """Insert into semantic/episodic; for core, replace the paragraph."""
        body = schemas.ContentBody(content=content)
        path = f"/sessions/{_q(name)}/memory/{component}"
        return self._send(_Call("POST", path, schemas.CallResponse, body))

    def update(
        self, name: str, component: ComponentName, entry_id: str, content: str
    ) -> schemas.CallResponse:
        body = schemas.ContentBody(content=content)
        path = f"/sessions/{_q(name)}/memory/{component}/{_q(entry_id)}"
        return self._send(_Call("PUT", path, schemas.CallResponse, body))

    def delete(self, name: str, component: ComponentName, entry_id: str) -> schemas.CallResponse:
        path = f"/sessions/{_q(name)}/memory/{component}/{_q(entry_id)}"
        return self._send(_Call("DELETE", path, schemas.CallResponse))

    def export(self, name: str) -> schemas.MemoryRecord:
        return self._send(_Call("GET", f"/sessions/{_q(name)}/export", schemas.MemoryRecord))

    def import_memory(
        self, name: str, memory: dict[str, Any], *, replace: bool = False
    ) -> schemas.Imported:
        body = schemas.ImportRequest(memory=memory, replace=replace)
        return self._send(_Call("POST", f"/sessions/{_q(name)}/import", schemas.Imported, body))


def _q(name: str) -> str:
    """A session name as one URL path segment."""
    return quote(name, safe="")


def _request(call: _Call[Any]) -> dict[str, Any]:
    content = call.body.model_dump_json().encode() if call.body is not None else None
    headers = {"content-type": "application/json"} if content is not None else {}
    return {"content": content, "headers": headers, "params": call.params}


def _headers(api_key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {api_key}"} if api_key else {}


class MemalphaClient(_Endpoints):
    """The memory service at `base_url` (from config; e.g. http://127.0.0.1:8750).

    Args:
        api_key: sent as `Authorization: Bearer KEY`.
        timeout_s: the deadline of each call (the service's model deadline plus a margin).

    Raises (from every call):
        ServiceError subclasses for refused requests; BackendUnavailable (no service there);
        BackendTimeout (no answer within `timeout_s`).
    """

    def __init__(
        self, base_url: str, *, api_key: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url, headers=_headers(api_key), timeout=timeout_s
        )

    def __enter__(self) -> MemalphaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: _Call[M]) -> M:
        try:
            response = self._http.request(call.method, call.path, **_request(call))
        except httpx.HTTPError as exc:
            raise _transport_error(self.base_url, exc) from None
        return _parse(call, response)


class AsyncMemalphaClient(_Endpoints):
    """`MemalphaClient` for asyncio: the same methods and errors, awaited. `transport` replaces
    the network (e.g. `httpx.ASGITransport(app)`: the service's app in this process)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=_headers(api_key),
            timeout=timeout_s,
            transport=transport,
        )

    async def __aenter__(self) -> AsyncMemalphaClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _send(self, call: _Call[M]) -> M:  # type: ignore[override]
        try:
            response = await self._http.request(call.method, call.path, **_request(call))
        except httpx.HTTPError as exc:
            raise _transport_error(self.base_url, exc) from None
        return _parse(call, response)
