"""SQLite's own errors as one-line `StoreError`s that name the file and say what to do."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

from memalpha.errors import StoreError

F = TypeVar("F", bound=Callable[..., Any])

_HINTS = (  # what SQLite says -> what the user can do
    ("locked", "another process is writing to it; wait for it to finish or stop it"),
    ("busy", "another process is writing to it; wait for it to finish or stop it"),
    ("full", "the disk (or a file-size limit) has no room left; free space and retry"),
    ("disk i/o", "the file cannot be written (disk full, file-size limit or a bad disk)"),
    ("not a database", "the file is corrupt or not SQLite; restore it from a backup"),
    ("malformed", "the file is corrupt; restore it from a backup"),
    ("readonly", "the file is read-only; fix its permissions"),
)


def store_error(exc: sqlite3.Error, action: str, path: Path) -> StoreError:
    """One line: what failed, SQLite's reason, and what to do about it."""
    reason = str(exc)
    hint = next((h for key, h in _HINTS if key in reason.lower()), "")
    return StoreError(f"cannot {action}: {reason}{'; ' + hint if hint else ''}", path=str(path))


def translated(action: str) -> Callable[[F], F]:
    """Turn SQLite's own errors in a store method into a `StoreError` naming the file."""

    def wrap(fn: F) -> F:
        @wraps(fn)
        def inner(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(self, *args, **kwargs)
            except sqlite3.Error as exc:
                raise store_error(exc, action, self.path) from None

        return inner  # type: ignore[return-value]

    return wrap
