"""The durable history of a session: every operation applied to it, in order, with its time,
its source (the writer's tool calls, a direct edit, an import) and the content before and
after. Written in the same transaction as the change itself, so history and memory never
disagree."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Literal

from memalpha.memory.config import Component
from memalpha.memory.model import Change

Source = Literal["writer", "crud", "import"]

SCHEMA = """
CREATE TABLE history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    session TEXT NOT NULL REFERENCES sessions(name) ON DELETE CASCADE,
    at REAL NOT NULL,
    source TEXT NOT NULL,
    op TEXT NOT NULL,
    component TEXT NOT NULL,
    entry_id TEXT NOT NULL,
    before TEXT,
    after TEXT
);
CREATE INDEX history_entry ON history (session, entry_id, seq)
"""


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """One operation on one entry (the core paragraph's id is 'core')."""

    seq: int
    at: float
    source: str
    op: str
    component: str
    entry_id: str
    before: str | None
    after: str | None


def content_before(conn: sqlite3.Connection, name: str, change: Change) -> str | None:
    """What an update or delete is about to replace (None for an insert)."""
    if change.op == "insert":
        return None
    if change.component is Component.CORE:
        row = conn.execute("SELECT core FROM sessions WHERE name = ?", (name,)).fetchone()
    else:
        row = conn.execute(
            "SELECT content FROM entries WHERE session = ? AND component = ? AND id = ?",
            (name, change.component.value, change.entry.id),
        ).fetchone()
    return row[0] if row else None


def record_change(
    conn: sqlite3.Connection,
    name: str,
    change: Change,
    before: str | None,
    source: Source,
    at: float,
) -> None:
    after = None if change.op == "delete" else change.entry.content
    conn.execute(
        "INSERT INTO history (session, at, source, op, component, entry_id, before, after) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (name, at, source, change.op, change.component.value, change.entry.id, before, after),
    )


def read_history(
    conn: sqlite3.Connection, name: str, entry_id: str | None = None
) -> list[HistoryRecord]:
    """The session's operations in the order they were applied (one entry's, if given)."""
    sql = "SELECT seq, at, source, op, component, entry_id, before, after FROM history "
    if entry_id is None:
        rows = conn.execute(sql + "WHERE session = ? ORDER BY seq", (name,))
    else:
        rows = conn.execute(
            sql + "WHERE session = ? AND entry_id = ? ORDER BY seq", (name, entry_id)
        )
    return [HistoryRecord(*row) for row in rows]
