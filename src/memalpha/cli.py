"""`memalpha ...`: thin commands that parse, load config, call one library function, render.

Only this module (and the server) turns `MemalphaError`s into messages and exit codes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress, TextColumn
from rich.table import Table

from memalpha import __version__
from memalpha.agent import MemoryAgent, RuleWriterLLM
from memalpha.config import load_config
from memalpha.data import BUILDERS, BuildConfig, chunk_text, read_instances, write_instances
from memalpha.data import build as build_instances
from memalpha.errors import ConfigError, MemalphaError
from memalpha.llm import FORMATS
from memalpha.llm.protocol import LLM, SamplingParams
from memalpha.llm.registry import ModelConfig, make_llm
from memalpha.memory import (
    CallStatus,
    Component,
    MemoryConfig,
    SqliteStore,
    ToolCall,
    ToolExecutor,
    ToolRegistry,
    read_json,
    snapshot_to_dict,
    write_json,
)
from memalpha.reader import ExtractiveReader, Question, RagReader, query_prompt
from memalpha.tokens import make_token_counter

app = typer.Typer(
    help="memalpha: RL-trained agents that build their own long-term memory.", no_args_is_help=True
)
memory_app = typer.Typer(help="Inspect, export and import stored memories.", no_args_is_help=True)
tools_app = typer.Typer(help="The memory tools offered to the writer.", no_args_is_help=True)
app.add_typer(memory_app, name="memory")
app.add_typer(tools_app, name="tools")

out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

StoreOpt = Annotated[Path, typer.Option("--store", help="SQLite store file, e.g. mem.db.")]
SessionOpt = Annotated[str, typer.Option("--session", help="Session (memory) name in the store.")]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="MemoryConfig YAML, e.g. configs/memory/default.yaml."),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config key: --set core_max_tokens=256."),
]


def friendly(fn: F) -> F:
    """Print a memalpha error as one line and exit 1 (2 for config errors), no traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MemalphaError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(2 if isinstance(exc, ConfigError) else 1) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        out.print(f"memalpha {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """memalpha: RL-trained agents that build their own long-term memory."""


def _memory_config(config: Path | None, overrides: list[str] | None) -> MemoryConfig:
    return load_config(MemoryConfig, config, overrides or [])


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
    registry = ToolRegistry(_memory_config(config, set_).disabled)
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
    cfg = _memory_config(config, set_)
    counter = make_token_counter(cfg.tokenizer)
    with _open_existing(store) as db:
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
    with _open_existing(store) as db:
        snap = db.read(session)
    out.rule(f"[bold]{session}[/]")
    out.print("[bold]core[/]", highlight=False)
    out.print(snap.core or "[dim](empty)[/]", highlight=False)
    for component, entries in (("semantic", snap.semantic), ("episodic", snap.episodic)):
        shown = entries[-limit:] if limit else entries
        out.print(f"\n[bold]{component}[/] ({len(shown)} of {len(entries)})")
        for e in shown:
            out.print(f"  [cyan]\\[{e.id}][/] {e.content}", highlight=False)


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
    with _open_existing(store) as db:
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
) -> None:
    """Import a JSON memory as a session (created; existing only with --replace).

    Example: memalpha memory import --store mem.db --session copy --input demo.json
    """
    snap = read_json(input_path)
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
    cfg = _memory_config(config, set_)
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


def _open_existing(path: Path) -> SqliteStore:
    """Open a store that must already exist (reading never creates an empty file)."""
    if not path.is_file():
        raise ConfigError(
            f"no store at '{path}'; create one with `memalpha demo --store {path}` "
            "or `memalpha memory import`"
        )
    return SqliteStore(path)


data_app = typer.Typer(help="Build, inspect and summarise instance files.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("build")
@friendly
def data_build(
    source: Annotated[str, typer.Option(help="Builder: " + ", ".join(BUILDERS) + ".")],
    out_path: Annotated[Path, typer.Option("--out", help="Output .jsonl or .parquet file.")],
    split: Annotated[str, typer.Option(help="train, validation or test.")] = "train",
    instances: Annotated[int, typer.Option(help="Instances to build.")] = 4,
    max_tokens: Annotated[int, typer.Option(help="Input tokens per instance.")] = 8000,
    chunk_tokens: Annotated[int, typer.Option(help="Tokens per chunk, at most.")] = 1024,
    questions: Annotated[int, typer.Option(help="Questions per instance, at most.")] = 20,
    seed: Annotated[int, typer.Option(help="Sampling seed (splits never depend on it).")] = 0,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Raw data folder (../shared/data layout); "
            "default: the sample shipped in the package."
        ),
    ] = None,
    set_: SetOpt = None,
) -> None:
    """Build instances deterministically from raw data or a synthetic generator.

    Example: memalpha data build --source squad --split test --max-tokens 4000 --out squad.jsonl
    """
    fields = {
        "source": source,
        "split": split,
        "instances": instances,
        "max_tokens": max_tokens,
        "chunk_tokens": chunk_tokens,
        "questions": questions,
        "seed": seed,
        "data_dir": str(data_dir) if data_dir else None,
    }
    cfg = load_config(
        BuildConfig, None, [f"{k}={json.dumps(v)}" for k, v in fields.items()] + (set_ or [])
    )
    with err.status(f"building {cfg.instances} {cfg.source} instances…"):
        built = build_instances(cfg, make_token_counter())
    write_instances(built, out_path)
    err.print(f"wrote {len(built)} instances to {out_path}")


@data_app.command("stats")
@friendly
def data_stats(
    paths: Annotated[list[Path], typer.Argument(help="Instance files (.jsonl/.parquet).")],
) -> None:
    """Instances, chunks, tokens and questions per source and competency.

    Example: memalpha data stats squad.jsonl trec.jsonl
    """
    counter = make_token_counter()
    rows: dict[tuple[str, str], list[int]] = {}
    for path in paths:
        for inst in read_instances(path, counter=counter):
            tokens = sum(counter.count_many(inst.chunks))
            row = rows.setdefault((inst.competency.value, inst.data_source), [0, 0, 0, 0, 0])
            for i, v in enumerate((1, len(inst.chunks), tokens, len(inst.questions))):
                row[i] += v
            row[4] = max(row[4], tokens)
    table = Table(title=f"{', '.join(map(str, paths))}")
    for col in (
        "competency",
        "source",
        "instances",
        "chunks",
        "tokens",
        "max tokens/inst.",
        "questions",
    ):
        table.add_column(col, justify="left" if col in ("competency", "source") else "right")
    for (comp, source), (n, chunks, tokens, qs, biggest) in sorted(rows.items()):
        table.add_row(comp, source, str(n), str(chunks), f"{tokens:,}", f"{biggest:,}", str(qs))
    out.print(table)


@data_app.command("show")
@friendly
def data_show(
    path: Annotated[Path, typer.Argument(help="Instance file (.jsonl/.parquet).")],
    index: Annotated[int, typer.Option(help="Which instance (0-based).")] = 0,
    chars: Annotated[int, typer.Option(help="Characters shown per chunk (0: all).")] = 400,
) -> None:
    """Print one instance: its chunks (abridged) and its questions with gold answers.

    Example: memalpha data show squad.jsonl --index 0
    """
    instances = read_instances(path, counter=make_token_counter())
    if not 0 <= index < len(instances):
        raise ConfigError(
            f"--index {index} is out of range; the file has {len(instances)} instances"
        )
    inst = instances[index]
    out.rule(f"[bold]{inst.id}[/] {inst.data_source} ({inst.competency.value}, {inst.metric})")
    for i, chunk in enumerate(inst.chunks):
        text = chunk if not chars or len(chunk) <= chars else chunk[:chars] + " …"
        out.print(f"[bold cyan]chunk {i}[/]\n{text}", highlight=False)
    out.rule("questions")
    for q in inst.questions:
        out.print(
            f"[bold]{q.id}[/] {q.question}\n   gold: {q.answers}  evidence: "
            f"{q.evidence_chunks or '-'}",
            highlight=False,
        )


PolicyOpt = Annotated[
    str,
    typer.Option(
        "--policy",
        help="'rule' (the rule-based writer) or a model: registry name "
        "(smollm2-135m-instruct), HF folder or .gguf file; with --base-url, a served model name.",
    ),
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option("--base-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1."),
]


def _model(name: str, base_url: str | None) -> LLM:
    cfg = ModelConfig(
        model=name, backend="openai" if base_url else "transformers", base_url=base_url
    )
    with err.status(f"loading {name}…"):
        return make_llm(cfg)


@app.command("memorize")
@friendly
def memorize(
    store: StoreOpt,
    session: SessionOpt,
    input_path: Annotated[
        Path | None, typer.Option("--input", help="A text file to memorize.")
    ] = None,
    instance: Annotated[
        Path | None, typer.Option(help="An instance file (.jsonl/.parquet).")
    ] = None,
    index: Annotated[int, typer.Option(help="Which instance of --instance.")] = 0,
    policy: PolicyOpt = "rule",
    base_url: BaseUrlOpt = None,
    fmt: Annotated[
        str,
        typer.Option("--format", help="Tool-call format: hermes or qwen (qwen for Memalpha-4B)."),
    ] = "hermes",
    chunk_tokens: Annotated[int, typer.Option(help="Chunk size for --input.")] = 1024,
    max_new_tokens: Annotated[int, typer.Option(help="Writer's token budget per chunk.")] = 1024,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Memorize a text or an instance into a durable session, one generation per chunk.

    Example: memalpha memorize --instance squad.jsonl --store mem.db --session s1 --policy rule
    """
    cfg = _memory_config(config, set_)
    counter = make_token_counter(cfg.tokenizer)
    if (input_path is None) == (instance is None):
        raise ConfigError("give exactly one of --input FILE or --instance PATH")
    if input_path is not None:
        if not input_path.is_file():
            raise ConfigError(f"no such file: {input_path}")
        chunks = chunk_text(input_path.read_text("utf-8"), chunk_tokens, counter)
    else:
        instances = read_instances(instance, counter=counter)
        if not 0 <= index < len(instances):
            raise ConfigError(f"--index {index} is out of range ({len(instances)} instances)")
        chunks = instances[index].chunks
    if fmt not in FORMATS:
        raise ConfigError(f"unknown --format '{fmt}' (known: {', '.join(FORMATS)})")
    llm = RuleWriterLLM(FORMATS[fmt]) if policy == "rule" else _model(policy, base_url)
    agent = MemoryAgent(
        llm,
        FORMATS[fmt],
        ToolExecutor(ToolRegistry(cfg.disabled)),
        cfg.view,
        SamplingParams(max_new_tokens=max_new_tokens),
        counter.count,
    )
    with SqliteStore(store) as db:
        db.create_session(session, exist_ok=True)
        memory = db.open_memory(session, cfg, counter)
        ok = total = 0
        with Progress(
            *Progress.get_default_columns(), TextColumn("{task.fields[calls]}"), console=err
        ) as bar:
            task = bar.add_task("memorizing", total=len(chunks), calls="")
            for t, chunk in enumerate(chunks):
                (step,) = agent.step([memory], [chunk], t)
                ok, total = ok + sum(step.successes), total + len(step.results)
                bar.update(task, advance=1, calls=f"calls ok {ok}/{total}")
    llm.close()
    out.print(
        f"memorized {len(chunks)} chunks into '{session}': {ok}/{total} calls succeeded; "
        f"memory {memory.total_tokens} tokens"
    )


@app.command("ask")
@friendly
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    store: StoreOpt,
    session: SessionOpt,
    reader: Annotated[
        str, typer.Option(help="'extractive' (no LLM) or a model as for --policy.")
    ] = "extractive",
    base_url: BaseUrlOpt = None,
    source: Annotated[
        str, typer.Option(help="Data source whose query prompt to use, e.g. trec_coarse.")
    ] = "",
    k: Annotated[int, typer.Option(help="Entries retrieved per memory list.")] = 20,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Answer a question from a stored memory alone, and show the retrieved evidence.

    Example: memalpha ask "Who founded Normandy?" --store mem.db --session s1
    """
    cfg = _memory_config(config, set_)
    counter = make_token_counter(cfg.tokenizer)
    with _open_existing(store) as db:
        memory = db.open_memory(session, cfg, counter)
    q = Question(memory, question, query_prompt(source))
    if reader == "extractive":
        (answer,) = ExtractiveReader(k=k).answer([q])
    else:
        llm = _model(reader, base_url)
        (answer,) = RagReader(llm, counter.count, k=k).answer([q])
        llm.close()
    out.print(f"[bold]answer:[/] {answer.text}", highlight=False)
    for e in answer.evidence[:5]:
        out.print(f"  [dim]\\[{e.id}][/] {e.content}", highlight=False)
