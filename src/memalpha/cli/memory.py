"""`memalpha memory show|export|import|stats`, `memalpha tools schema`, `memalpha demo`."""

from __future__ import annotations

import json
import time
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from memalpha.cli.common import (
    ConfigOpt,
    SessionOpt,
    SetOpt,
    StoreOpt,
    app,
    err,
    friendly,
    memory_config,
    open_existing,
    out,
)
from memalpha.memory import (
    CallStatus,
    Component,
    SqliteStore,
    ToolCall,
    ToolExecutor,
    ToolRegistry,
    check_limits,
    read_json,
    snapshot_to_dict,
    write_json,
)
from memalpha.tokens import make_token_counter

memory_app = typer.Typer(help="Inspect, export and import stored memories.", no_args_is_help=True)
tools_app = typer.Typer(help="The memory tools offered to the writer.", no_args_is_help=True)
app.add_typer(memory_app, name="memory")
app.add_typer(tools_app, name="tools")


@tools_app.command("schema")
@friendly
def tools_schema(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    functions_only: Annotated[
        bool,
        typer.Option(
            "--functions", help="Print only the function parts (what qwen-agent renders)."
        ),
    ] = False,
) -> None:
    """Print the memory tool specs as OpenAI JSON.

    Example: memalpha tools schema --set 'disabled=[episodic]'
    """
    registry = ToolRegistry(memory_config(config, set_).disabled)
    specs = registry.functions() if functions_only else registry.openai()
    typer.echo(json.dumps(specs, indent=2, ensure_ascii=False))


@memory_app.command("stats")
@friendly
def memory_stats(
    store: StoreOpt,
    session: Annotated[str | None, typer.Option("--session", help="Only this session.")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Entries and tokens per component for every session (or one).

    Example: memalpha memory stats --store mem.db
    """
    cfg = memory_config(config, set_)
    counter = make_token_counter(cfg.tokenizer)
    with open_existing(store) as db:
        names = [session] if session else [s.name for s in db.sessions()]
        table = Table(title=f"{store} ({len(names)} sessions, tokens: {counter.name})")
        for col in (
            "session",
            "core tokens",
            "semantic",
            "sem. tokens",
            "episodic",
            "epi. tokens",
            "total tokens",
        ):
            table.add_column(col, justify="left" if col == "session" else "right")
        for name in names:
            stats = db.open_memory(name, cfg, counter).stats()
            row = [stats.get(c) for c in Component]
            table.add_row(
                name,
                *(_num(s, "tokens") for s in row[:1]),
                *(x for s in row[1:] for x in (_num(s, "entries"), _num(s, "tokens"))),
                str(sum(s.tokens for s in row if s)),
            )
    out.print(table)


def _num(stats: Any, field: str) -> str:
    return "-" if stats is None else str(getattr(stats, field))


@memory_app.command("show")
@friendly
def memory_show(
    store: StoreOpt,
    session: SessionOpt,
    limit: Annotated[int, typer.Option(help="Newest entries shown per list (0: all).")] = 20,
) -> None:
    """Print a session's core paragraph and its newest entries.

    Example: memalpha memory show --store mem.db --session demo --limit 5
    """
    with open_existing(store) as db:
        snap = db.read(session)
    out.rule(f"[bold]{session}[/]")
    out.print("[bold]core[/]", highlight=False)
    out.print(snap.core or "[dim](empty)[/]", highlight=False)
    for component, entries in (("semantic", snap.semantic), ("episodic", snap.episodic)):
        shown = entries[-limit:] if limit else entries
        out.print(f"\n[bold]{component}[/] ({len(shown)} of {len(entries)})")
        for e in shown:
            out.print(f"  [cyan]\\[{e.id}][/] {e.content}", highlight=False)


@memory_app.command("history")
@friendly
def memory_history(
    store: StoreOpt,
    session: SessionOpt,
    entry: Annotated[str | None, typer.Option(help="One entry's history, e.g. s3.")] = None,
) -> None:
    """Every operation applied to a session, in order: when, by whom, before and after.

    Example: memalpha memory history --store mem.db --session demo --entry s1
    """
    with open_existing(store) as db:
        records = db.history(session, entry)
    table = Table(title=f"history of {session}" + (f" / {entry}" if entry else ""))
    for col in ("#", "time (UTC)", "source", "op", "entry", "before", "after"):
        table.add_column(col, overflow="fold")
    for r in records:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.at))
        table.add_row(str(r.seq), when, r.source, r.op, r.entry_id, r.before or "", r.after or "")
    out.print(table)


@memory_app.command("export")
@friendly
def memory_export(
    store: StoreOpt,
    session: SessionOpt,
    out_path: Annotated[
        Path | None, typer.Option("--out", help="JSON file (stdout if absent).")
    ] = None,
) -> None:
    """Export a session as JSON (a lossless round trip with `memory import`).

    Example: memalpha memory export --store mem.db --session demo --out demo.json
    """
    with open_existing(store) as db:
        snap = db.read(session)
    if out_path is None:
        typer.echo(json.dumps(snapshot_to_dict(snap), ensure_ascii=False, indent=1))
    else:
        write_json(snap, out_path)
        err.print(f"wrote {out_path}")


@memory_app.command("import")
@friendly
def memory_import(
    store: StoreOpt,
    session: SessionOpt,
    input_path: Annotated[
        Path,
        typer.Option(
            "--input", help="JSON from `memory export` (or a published agent_state.json)."
        ),
    ],
    replace: Annotated[bool, typer.Option(help="Overwrite an existing session.")] = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Import a JSON memory as a session (created; existing only with --replace). It must fit
    the memory config's caps (--config/--set), as the writer's own memories do.

    Example: memalpha memory import --store mem.db --session copy --input demo.json
    """
    snap = read_json(input_path)
    cfg = memory_config(config, set_)
    check_limits(snap, cfg, make_token_counter(cfg.tokenizer), source=str(input_path))
    with SqliteStore(store) as db:
        db.write(session, snap, replace=replace)
    err.print(
        f"imported {len(snap.semantic)} semantic and {len(snap.episodic)} episodic entries "
        f"into '{session}'"
    )


@app.command("demo")
@friendly
def demo(
    store: StoreOpt = Path("memalpha-demo.db"),
    session: SessionOpt = "demo",
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Run a scripted sequence of tool calls (good and bad) into a durable session and show it.

    Example: memalpha demo --store demo.db
    """
    cfg = memory_config(config, set_)
    calls = json.loads(files("memalpha.examples").joinpath("demo_calls.json").read_text("utf-8"))
    executor = ToolExecutor(ToolRegistry(cfg.disabled))
    with SqliteStore(store) as db:
        db.create_session(session, exist_ok=True)
        memory = db.open_memory(session, cfg, make_token_counter(cfg.tokenizer))
        table = Table(title=f"tool calls → {store} / {session}")
        for col in ("#", "tool", "status", "entry", "message"):
            table.add_column(col)
        style = {CallStatus.OK: "green", CallStatus.SKIPPED: "yellow", CallStatus.ERROR: "red"}
        for i, raw in enumerate(calls, 1):
            result = executor.execute(memory, ToolCall(raw["name"], raw["arguments"]))
            table.add_row(
                str(i),
                raw["name"],
                f"[{style[result.status]}]{result.status}[/]",
                result.entry_id or "",
                result.message,
            )
    out.print(table)
    out.print(
        f"memory: {memory.total_tokens} tokens; inspect with "
        f"[bold]memalpha memory show --store {store} --session {session}[/]"
    )
