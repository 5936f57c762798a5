"""The request-body limit, as ASGI middleware: it counts the bytes that actually arrive, so a
body sent in chunks (no Content-Length) cannot grow past the limit either, and a body over it
is refused before any route sees it."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from memalpha.server.errors import ErrorCode, error_response


class BodyLimit:
    """Refuse (413 `body_too_large`) an HTTP request whose body is over `most` bytes."""

    def __init__(self, app: ASGIApp, most: int) -> None:
        self.app, self.most = app, most

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.most:
            await self._refuse(scope, receive, send, f"body of {int(declared)} bytes")
            return
        body, complete = await self._read(receive)
        if body is None:
            await self._refuse(scope, receive, send, "chunked body")
            return
        if not complete:  # the client went away
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> tuple[bytes | None, bool]:
        """(the body, whether it arrived whole); (None, _) as soon as it passes the limit."""
        parts, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"".join(parts), False
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.most:
                return None, False
            parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts), True

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, what: str) -> None:
        response = error_response(413, ErrorCode.BODY_TOO_LARGE, f"{what} > {self.most} bytes")
        await response(scope, receive, send)
