"""`memalpha memorize` and `memalpha ask`: a writer fills a stored memory; a reader answers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, TextColumn

from memalpha.agent import ChunkStep, RuleWriterLLM, WriterConfig, build_agent, policy_writer
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
from memalpha.llm import FORMATS, LLM, ModelConfig, make_llm
from memalpha.memory import Component, MemoryConfig, SqliteStore
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

# writer options: unset means what the policy folder recorded at training (writer.json)
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="Tool-call format: hermes or qwen (qwen for Memalpha-4B). Default: the policy's, "
        "recorded at training (writer.json), else hermes.",
    ),
]
PromptOpt = Annotated[
    str | None,
    typer.Option(
        help="Writer prompts: published or compact. Default: the policy's, else published."
    ),
]
BudgetOpt = Annotated[
    int | None,
    typer.Option(help="Writer's token budget per chunk. Default: the policy's, else 2048."),
]
ViewOpt = Annotated[
    str | None,
    typer.Option(
        help="What the writer sees of its memory: the recent entries, or those retrieved "
        "against the chunk (retrieved) or against each of its sentences (sentences)."
    ),
]
ViewKOpt = Annotated[int | None, typer.Option("--view-k", help="Entries shown per memory list.")]


DeadlineOpt = Annotated[
    float,
    typer.Option(
        "--deadline",
        help="Seconds a served model (--base-url) gets for one request in all: connect, "
        "first byte, whole answer and retries.",
    ),
]


def _model(name: str, base_url: str | None, deadline_s: float = 300.0) -> LLM:
    cfg = ModelConfig(
        model=name,
        backend="openai" if base_url else "transformers",
        base_url=base_url,
        timeout_s=min(120.0, deadline_s),
        deadline_s=deadline_s,
    )
    with err.status(f"loading {name}…"):
        return make_llm(cfg)


def _writer(
    policy: str,
    fmt: str | None,
    prompt: str | None,
    max_new_tokens: int | None,
    view: str | None,
    view_k: int | None,
    memory: MemoryConfig | None,
) -> WriterConfig:
    """The writer the command drives: what a policy folder recorded at training (defaults for
    a base model, a served model or the rule writer), then --config/--set for the memory,
    then each option given."""
    folder = None if policy == "rule" else policy
    recorded = policy_writer(folder)
    # as plain data, so that the one validation below checks every option given
    settings = (memory or recorded.memory).model_dump()
    views = {"mode": view, "k": view_k}
    settings["view"] |= {k: v for k, v in views.items() if v is not None}
    options = {"format": fmt, "prompt": prompt, "max_new_tokens": max_new_tokens}
    given = {k: v for k, v in options.items() if v is not None}
    return policy_writer(folder, {**recorded.model_dump(), "memory": settings, **given})


def _chunks(
    input_path: Path | None, instance: Path | None, index: int, chunk_tokens: int, counter
) -> list[str]:
    if (input_path is None) == (instance is None):
        raise ConfigError("give exactly one of --input FILE or --instance PATH")
    if input_path is not None:
        if not input_path.is_file():
            raise ConfigError(f"no such file: {input_path}")
        return chunk_text(input_path.read_text("utf-8"), chunk_tokens, counter)
    instances = read_instances(instance, counter=counter)
    if not 0 <= index < len(instances):
        raise ConfigError(f"--index {index} is out of range ({len(instances)} instances)")
    return instances[index].chunks


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
    deadline: DeadlineOpt = 300.0,
    fmt: FormatOpt = None,
    prompt: PromptOpt = None,
    max_new_tokens: BudgetOpt = None,
    view: ViewOpt = None,
    view_k: ViewKOpt = None,
    chunk_tokens: Annotated[int, typer.Option(help="Chunk size for --input.")] = 1024,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Memorize a text or an instance into a durable session, one generation per chunk.

    A trained policy folder is driven the way it was trained (its writer.json); options
    replace single settings. Example:
    memalpha memorize --instance squad.jsonl --store mem.db --session s1 --policy rule
    """
    memory = memory_config(config, set_) if config or set_ else None
    writer = _writer(policy, fmt, prompt, max_new_tokens, view, view_k, memory)
    counter = make_token_counter(writer.memory.tokenizer)
    chunks = _chunks(input_path, instance, index, chunk_tokens, counter)
    llm = (
        RuleWriterLLM(FORMATS[writer.format])
        if policy == "rule"
        else _model(policy, base_url, deadline)
    )
    err.print(
        f"writer: format {writer.format}, prompt {writer.prompt}, "
        f"budget {writer.max_new_tokens} tokens, view {writer.memory.view.mode} "
        f"k={writer.memory.view.k}",
        highlight=False,
    )
    with SqliteStore(store) as db:
        db.create_session(session, exist_ok=True)
        memory_ = db.open_memory(session, writer.memory, counter)
        ok, total = _memorize_with_progress(llm, writer, counter, memory_, chunks)
    llm.close()
    out.print(
        f"memorized {len(chunks)} chunks into '{session}': {ok}/{total} calls succeeded; "
        f"memory {memory_.total_tokens} tokens"
    )


def _memorize_with_progress(
    llm: LLM, writer: WriterConfig, counter, memory, chunks: list[str]
) -> tuple[int, int]:
    """Run the writer over the chunks with a progress bar; (calls that succeeded, calls)."""
    agent = build_agent(writer, counter)
    calls = {"ok": 0, "all": 0}
    with Progress(
        *Progress.get_default_columns(), TextColumn("{task.fields[calls]}"), console=err
    ) as bar:
        task = bar.add_task("memorizing", total=len(chunks), calls="")

        def advance(step: ChunkStep) -> None:
            calls["ok"] += sum(step.successes)
            calls["all"] += len(step.results)
            bar.update(task, advance=1, calls=f"calls ok {calls['ok']}/{calls['all']}")

        agent.memorize(llm, writer.sampling(), memory, chunks, on_step=advance)
    return calls["ok"], calls["all"]


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
    deadline: DeadlineOpt = 300.0,
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
        llm = _model(reader, base_url, deadline)
        (answer,) = RagReader(llm, counter.count, k=k).answer([q])
        llm.close()
    out.print(f"[bold]answer:[/] {answer.text}", highlight=False)
    for e in answer.evidence[:5]:
        out.print(f"  [dim]\\[{e.id}][/] {e.content}", highlight=False)


@app.command("search")
@friendly
def search(
    query: Annotated[str, typer.Argument(help="Text to match.")],
    store: StoreOpt,
    session: SessionOpt,
    k: Annotated[int, typer.Option(help="Entries to show, best first.")] = 10,
    memory_type: Annotated[
        list[str] | None,
        typer.Option("--type", help="semantic and/or episodic (default: both)."),
    ] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Find a session's entries by BM25, with their scores; no LLM answers.

    Example: memalpha search "Paris" --store mem.db --session s1 --k 5
    """
    cfg = memory_config(config, set_)
    try:
        kinds = [Component(t) for t in (memory_type or ["semantic", "episodic"])]
    except ValueError:
        raise ConfigError(f"--type takes semantic or episodic, got {memory_type}") from None
    with open_existing(store) as db:
        memory = db.open_memory(session, cfg, make_token_counter(cfg.tokenizer))
    hits = sorted(
        ((c, e, s) for c in kinds for e, s in memory.search(c, query, k)), key=lambda h: -h[2]
    )[:k]
    for c, e, s in hits:
        out.print(f"{s:7.3f}  [dim]{c.value}[/] [cyan]\\[{e.id}][/] {e.content}", highlight=False)
    if not hits:
        err.print("no entry matches")
