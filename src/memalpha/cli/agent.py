"""`memalpha memorize` and `memalpha ask`: a writer fills a stored memory; a reader answers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, TextColumn

from memalpha.agent import ChunkStep, MemoryAgent, RuleWriterLLM
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
from memalpha.data import chunk_text, read_instances
from memalpha.errors import ConfigError
from memalpha.llm import FORMATS, LLM, ModelConfig, SamplingParams, make_llm
from memalpha.memory import (
    SqliteStore,
    ToolExecutor,
    ToolRegistry,
)
from memalpha.reader import ExtractiveReader, Question, RagReader, query_prompt
from memalpha.tokens import make_token_counter

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
    cfg = memory_config(config, set_)
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
        calls = {"ok": 0, "all": 0}
        with Progress(
            *Progress.get_default_columns(), TextColumn("{task.fields[calls]}"), console=err
        ) as bar:
            task = bar.add_task("memorizing", total=len(chunks), calls="")

            def advance(step: ChunkStep) -> None:
                calls["ok"] += sum(step.successes)
                calls["all"] += len(step.results)
                bar.update(task, advance=1, calls=f"calls ok {calls['ok']}/{calls['all']}")

            agent.memorize(memory, chunks, on_step=advance)
    llm.close()
    ok, total = calls["ok"], calls["all"]
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
    cfg = memory_config(config, set_)
    counter = make_token_counter(cfg.tokenizer)
    with open_existing(store) as db:
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
