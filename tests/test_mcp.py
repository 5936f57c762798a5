"""`memalpha mcp` end to end with the official SDK's own client over stdio: the command runs as
an MCP client would start it, on a real SQLite store (and, in the second test, in front of a
running memalpha service on 127.0.0.1)."""

from __future__ import annotations

import sys

import anyio
import pytest

mcp = pytest.importorskip("mcp")

from mcp import Client  # noqa: E402
from mcp.client.stdio import StdioServerParameters  # noqa: E402

from memalpha.server.process import serve_subprocess  # noqa: E402

TOOLS = {
    "memorize",
    "ask",
    "search",
    "list_sessions",
    "read_memory",
    "insert_entry",
    "update_entry",
    "delete_entry",
    "history",
}


def server_params(*args: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "memalpha.cli", "mcp", *args])


async def _tour(params: StdioServerParameters) -> dict:
    """Every tool once, as an assistant would use them."""
    seen: dict = {}
    async with Client(params, read_timeout_seconds=60) as client:
        seen["tools"] = {t.name for t in (await client.list_tools()).tools}

        async def call(name: str, **args):
            result = await client.call_tool(name, args)
            return result.structured_content, result.is_error

        chunks = ["Alice moved to Paris in 2019. She bakes bread at Le Pain. Bob lives in Lyon."]
        seen["memorize"], _ = await call("memorize", session="alice", chunks=chunks)
        seen["search"], _ = await call("search", session="alice", query="Where does Bob live?")
        seen["ask"], _ = await call("ask", session="alice", questions=["Where did Alice move?"])
        inserted, _ = await call(
            "insert_entry", session="alice", component="semantic", content="Alice likes jazz."
        )
        sid = inserted["call"]["entry_id"]
        await call(
            "update_entry", session="alice", component="semantic", entry_id=sid, content="Blues."
        )
        await call("delete_entry", session="alice", component="semantic", entry_id=sid)
        seen["history"], _ = await call("history", session="alice", entry_id=sid)
        seen["memory"], _ = await call("read_memory", session="alice")
        seen["sessions"], _ = await call("list_sessions")
        seen["unknown"], seen["unknown_is_error"] = await call("read_memory", session="nobody")
    return seen


def _check(seen: dict) -> None:
    assert seen["tools"] == TOOLS
    assert any(c["diff"] for c in seen["memorize"]["chunks"])
    assert "Lyon" in seen["search"]["results"][0]["content"]
    assert "Paris" in seen["ask"]["answers"][0]["answer"]
    ops = [(o["op"], o["source"]) for o in seen["history"]["operations"]]
    assert ops == [("insert", "crud"), ("update", "crud"), ("delete", "crud")]
    assert any("Paris" in e["content"] for e in seen["memory"]["semantic"])
    assert [s["name"] for s in seen["sessions"]["sessions"]] == ["alice"]
    assert seen["unknown_is_error"]


def test_mcp_over_stdio_on_a_store(tmp_path):
    seen = anyio.run(_tour, server_params("--store", str(tmp_path / "mem.db")))
    _check(seen)


def test_mcp_over_stdio_in_front_of_a_running_service(tmp_path):
    with serve_subprocess(tmp_path / "svc.db", startup_s=60) as url:
        seen = anyio.run(_tour, server_params("--url", url))
    _check(seen)
