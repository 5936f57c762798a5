"""The CLI's shared parts: the app, consoles, options, and the one place that turns
`MemalphaError`s into one-line messages and exit codes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

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
    """The progress display of every long command: bar, count, times, a free `info` field;
    plain lines (`LineProgress`) where stderr is not a terminal."""
    kind = Progress if err.is_terminal else LineProgress
    return kind(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=err,
    )


class LineProgress(Progress):
    """A progress display for a stderr that is a log file or a pipe (`nohup … > log`, CI).
    Rich draws nothing live there, only the last frame when the command ends, so an hour-long
    evaluation or training run left its log empty until it finished. Here each task's count is
    also written as a line when it changes: at most one line a task every `every_s` seconds, a
    burst's last count within a second of its window closing (a small thread flushes it, so a
    log never shows 1/24 for an hour when 4/24 are done), and the last count always."""

    every_s: float = 10.0

    def __init__(self, *columns: Any, **kwargs: Any) -> None:
        super().__init__(*columns, **kwargs)
        self._shown: dict[TaskID, tuple[float, float]] = {}  # task → (count, monotonic time)
        self._shown_lock = threading.Lock()
        self._stopping = threading.Event()
        self._flusher: threading.Thread | None = None

    def start(self) -> None:
        super().start()
        self._stopping.clear()
        self._flusher = threading.Thread(target=self._flush_until_stopped, daemon=True)
        self._flusher.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._flusher is not None:
            self._flusher.join()
        self._flush(final=True)
        super().stop()

    def update(self, task_id: TaskID, **kwargs: Any) -> None:  # type: ignore[override]
        super().update(task_id, **kwargs)
        self._flush()

    def _flush_until_stopped(self) -> None:
        while not self._stopping.wait(min(1.0, self.every_s)):
            self._flush()

    def _flush(self, final: bool = False) -> None:
        """Write the tasks whose count changed since their last line and may be shown now."""
        now = time.monotonic()
        lines = []
        with self._shown_lock:
            for task in self.tasks:
                count, at = self._shown.get(task.id, (0.0, float("-inf")))
                finished = task.total is not None and task.completed >= task.total
                if task.completed == count or not (final or finished or now - at >= self.every_s):
                    continue
                self._shown[task.id] = (task.completed, now)
                lines.append(_line(task))
        for line in lines:
            self.console.print(line, highlight=False, markup=False, soft_wrap=True)


def _line(task: Task) -> str:
    """`jobs 24/72 elapsed 0:41:07 remaining 1:22:14 info` (times as rich shows them)."""
    total = "?" if task.total is None else f"{task.total:g}"
    parts = [f"{task.description} {task.completed:g}/{total}"]
    parts.append(f"elapsed {timedelta(seconds=int(task.elapsed or 0))}")
    if task.time_remaining is not None:
        parts.append(f"remaining {timedelta(seconds=int(task.time_remaining))}")
    if info := task.fields.get("info"):
        parts.append(str(info))
    return " ".join(parts)


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
