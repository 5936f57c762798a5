"""The CLI's shared parts: the app, consoles, options, and the one place that turns
`MemalphaError`s into one-line messages and exit codes."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from memalpha import __version__
from memalpha.config import load_config
from memalpha.errors import ConfigError, MemalphaError
from memalpha.memory import (
    MemoryConfig,
    SqliteStore,
)

app = typer.Typer(
    help="memalpha: RL-trained agents that build their own long-term memory.", no_args_is_help=True
)
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


def progress() -> Progress:
    """The progress display of every long command: bar, count, times, a free `info` field."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=err,
    )


def friendly(fn: F) -> F:
    """Print a memalpha error as one line and exit 1 (2 for config errors), no traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MemalphaError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
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


def memory_config(config: Path | None, overrides: list[str] | None) -> MemoryConfig:
    return load_config(MemoryConfig, config, overrides or [])


def open_existing(path: Path) -> SqliteStore:
    """Open a store that must already exist (reading never creates an empty file)."""
    if not path.is_file():
        raise ConfigError(
            f"no store at '{path}'; create one with `memalpha demo --store {path}` "
            "or `memalpha memory import`"
        )
    return SqliteStore(path, create=False)
