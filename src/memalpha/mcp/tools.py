"""The MCP server of `memalpha mcp`. Every tool goes through the typed client
(`memalpha.client.AsyncMemalphaClient`): to a running service over HTTP, or to a store file
through the service's own app in this process, so both modes run the same checks, limits and
errors. Tools return the service's response models as JSON; a refused request is a tool error
with the service's code and message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import httpx
from mcp.server.mcpserver import MCPServer

from memalpha.client import AsyncMemalphaClient
from memalpha.errors import ServiceConflict
from memalpha.server import MemoryService, ServerConfig, create_app

INSTRUCTIONS = (
    "A durable long-term memory in three parts: core (one paragraph), semantic (facts) and "
    "episodic (timestamped events), kept per session. `memorize` lets the memory writer store "
    "what matters from text; `search` finds entries; `ask` answers from the memory alone; the "
    "entry tools edit it directly; `history` shows every change."
)
Component = Literal["core", "semantic", "episodic"]


@asynccontextmanager
async def memory_client(
    *, url: str | None = None, api_key: str | None = None, config: ServerConfig | None = None
) -> AsyncIterator[AsyncMemalphaClient]:
    """A client of the service at `url`, or of an in-process service over `config.store`."""
    if url is not None:
        async with AsyncMemalphaClient(url, api_key=api_key) as client:
            yield client
        return
    cfg = config or ServerConfig()
    service = MemoryService(cfg)
    try:
        transport = httpx.ASGITransport(app=create_app(cfg, service))  # no socket
        async with AsyncMemalphaClient("http://memalpha.local", transport=transport) as client:
            yield client
    finally:
        service.close()


def build_mcp_server(client: AsyncMemalphaClient) -> MCPServer:
    """The MCP server whose tools call `client`."""
    server = MCPServer("memalpha", instructions=INSTRUCTIONS)

    def dump(model: Any) -> dict[str, Any]:
        return model.model_dump(mode="json")

    @server.tool()
    async def memorize(session: str, chunks: list[str]) -> dict[str, Any]:
        """Let the memory writer read the chunks in order and store what matters (the session
        is created if it does not exist). Returns each chunk's tool calls and changes."""
        try:
            await client.create_session(session)
        except ServiceConflict:
            pass
        return dump(await client.memorize(session, chunks))

    @server.tool()
    async def ask(session: str, questions: list[str]) -> dict[str, Any]:
        """Answer questions from the session's memory alone, with the entries used."""
        return dump(await client.ask(session, questions))

    @server.tool()
    async def search(session: str, query: str, k: int = 10) -> dict[str, Any]:
        """The entries that best match the query (BM25 scores; no LLM)."""
        return dump(await client.search(session, query, k))

    @server.tool()
    async def list_sessions() -> dict[str, Any]:
        """The sessions (memories) in the store, with their sizes."""
        return dump(await client.sessions())

    @server.tool()
    async def read_memory(session: str) -> dict[str, Any]:
        """The session's whole memory: core, semantic and episodic entries with their ids."""
        return dump(await client.memory(session))

    @server.tool()
    async def insert_entry(session: str, component: Component, content: str) -> dict[str, Any]:
        """Add a semantic or episodic entry (for core: replace the paragraph)."""
        return dump(await client.insert(session, component, content))

    @server.tool()
    async def update_entry(
        session: str, component: Component, entry_id: str, content: str
    ) -> dict[str, Any]:
        """Replace the content of entry `entry_id` (e.g. s3); its id is kept."""
        return dump(await client.update(session, component, entry_id, content))

    @server.tool()
    async def delete_entry(session: str, component: Component, entry_id: str) -> dict[str, Any]:
        """Remove entry `entry_id` (for core: clear the paragraph)."""
        return dump(await client.delete(session, component, entry_id))

    @server.tool()
    async def history(session: str, entry_id: str | None = None) -> dict[str, Any]:
        """Every change to the session (or to one entry): when, by whom, before and after."""
        return dump(await client.history(session, entry_id))

    return server
