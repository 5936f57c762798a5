"""`memalpha mcp`: the memory as Model Context Protocol tools, over stdio or streamable HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer

from memalpha.cli.common import SetOpt, app, friendly
from memalpha.config import load_config
from memalpha.errors import ConfigError


@app.command("mcp")
@friendly
def mcp(
    store: Annotated[
        Path | None, typer.Option("--store", help="SQLite store to serve (in this process).")
    ] = None,
    url: Annotated[
        str | None, typer.Option("--url", help="A running memalpha service instead of a store.")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", help="The service's key (with --url).")
    ] = None,
    transport: Annotated[
        Literal["stdio", "streamable-http"],
        typer.Option(help="stdio (an MCP client starts this command) or streamable-http."),
    ] = "stdio",
    host: Annotated[str, typer.Option(help="Bind address for streamable-http.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for streamable-http.")] = 8765,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="ServerConfig YAML: writer, reader, limits (with --store)."),
    ] = None,
    set_: SetOpt = None,
) -> None:
    """Serve memorize, ask, search, entries and history as MCP tools, on a store or a service.

    Example: memalpha mcp --store mem.db
    """
    import anyio

    from memalpha.server import ServerConfig

    try:
        from memalpha.mcp import build_mcp_server, memory_client
    except ImportError as exc:
        raise ConfigError(
            f"memalpha mcp needs the MCP SDK ({exc.name} is missing): pip install 'memalpha[mcp]'"
        ) from None

    if (store is None) == (url is None):
        raise ConfigError("give exactly one of --store FILE or --url http://HOST:PORT")
    cfg = None
    if store is not None:
        cfg = load_config(ServerConfig, config, [f"store={json.dumps(str(store))}", *(set_ or [])])

    async def serve() -> None:
        async with memory_client(url=url, api_key=api_key, config=cfg) as client:
            server = build_mcp_server(client)
            if transport == "stdio":
                await server.run_stdio_async()
            else:
                await server.run_streamable_http_async(host=host, port=port)

    anyio.run(serve)
