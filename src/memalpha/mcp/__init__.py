"""memalpha's memory as Model Context Protocol tools (the official `mcp` SDK): memorize, ask,
search, entries and history, on a store file or a running memalpha service."""

from memalpha.mcp.tools import build_mcp_server, memory_client

__all__ = ["build_mcp_server", "memory_client"]
