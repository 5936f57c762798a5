"""`memalpha data build|stats|show`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from memalpha.cli.common import (
    SetOpt,
    app,
    err,
    friendly,
    out,
)
from memalpha.config import load_config
from memalpha.data import BUILDERS, BuildConfig, read_instances, write_instances
from memalpha.data import build as build_instances
from memalpha.errors import ConfigError
from memalpha.tokens import make_token_counter

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


@data_app.command("verl")
@friendly
def data_verl(
    config: Annotated[Path, typer.Option(help="A memalpha train config (its data section).")],
    out_dir: Annotated[Path, typer.Option(help="Folder for train.parquet and val.parquet.")],
    set_: SetOpt = None,
) -> None:
    """Write a train config's training and validation instances as verl datasets.

    Example: memalpha data verl --config configs/train/cpu-smollm2.yaml --out-dir data/verl
    """
    from memalpha.rl import TrainConfig, load_instances, write_verl_parquet

    cfg = load_config(TrainConfig, config, set_ or [])
    counter = make_token_counter(cfg.memory.tokenizer)
    for name, specs, files in (
        ("train", cfg.data.train, cfg.data.train_files),
        ("val", cfg.data.val, cfg.data.val_files),
    ):
        with err.status(f"building the {name} instances…"):
            n = write_verl_parquet(
                load_instances(specs, files, counter), out_dir / f"{name}.parquet"
            )
        err.print(f"wrote {n} {name} rows to {out_dir / f'{name}.parquet'}")
