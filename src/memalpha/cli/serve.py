"""`memalpha serve`: the memory service over HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from memalpha.cli.common import SetOpt, app, err, friendly
from memalpha.config import load_config


@app.command("serve")
@friendly
def serve(
    store: Annotated[
        Path | None, typer.Option("--store", help="SQLite store file (default: the config's).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="ServerConfig YAML (configs/serve/…).")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: the config's; 0: any).")] = None,
    set_: SetOpt = None,
) -> None:
    """Serve memories over HTTP: sessions, memorize, ask, CRUD, export/import (OpenAPI at /docs).

    Example: memalpha serve --store mem.db --port 8750
    """
    import uvicorn

    from memalpha.server import ServerConfig, create_app

    given = {"store": str(store) if store else None, "host": host, "port": port}
    overrides = [f"{k}={json.dumps(v)}" for k, v in given.items() if v is not None]
    cfg = load_config(ServerConfig, config, overrides + (set_ or []))
    app_ = create_app(cfg)
    err.print(
        f"memalpha: serving {cfg.store} on http://{cfg.host}:{cfg.port} "
        f"(writer: {cfg.writer.kind}, reader: {cfg.reader.kind})"
    )
    uvicorn.run(
        app_, host=cfg.host, port=cfg.port, log_level="warning", timeout_graceful_shutdown=5
    )
