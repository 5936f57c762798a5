"""Durable named memories (sessions) in one SQLite file, thin in the way of sqlite-utils.

WAL mode lets readers in other processes read while one writer works. Every memory operation
is one transaction, committed before the in-RAM memory changes, so an acknowledged operation
survives a kill of the process (synchronous=NORMAL) or of the machine (synchronous=FULL).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from memalpha.errors import SessionExistsError, SessionNotFoundError, StoreError
from memalpha.memory.config import LIST_COMPONENTS, Component, MemoryConfig
from memalpha.memory.history import SCHEMA as HISTORY_SCHEMA
from memalpha.memory.history import (
    HistoryRecord,
    Source,
    content_before,
    read_history,
    record_change,
)
from memalpha.memory.model import Change, Entry, Memory, MemorySnapshot
from memalpha.memory.store_errors import store_error, translated
from memalpha.tokens import TokenCounter

SCHEMA_VERSION = 2
_MIGRATIONS = [  # index i upgrades user_version i -> i+1
    """
    CREATE TABLE sessions (
        name TEXT PRIMARY KEY,
        core TEXT NOT NULL DEFAULT '',
        next_semantic INTEGER NOT NULL DEFAULT 1,
        next_episodic INTEGER NOT NULL DEFAULT 1,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE entries (
        session TEXT NOT NULL REFERENCES sessions(name) ON DELETE CASCADE,
        component TEXT NOT NULL CHECK (component IN ('semantic', 'episodic')),
        id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        content TEXT NOT NULL,
        PRIMARY KEY (session, component, id)
    );
    CREATE INDEX entries_order ON entries (session, component, seq);
    """,
    HISTORY_SCHEMA,  # v2: the operations log (a v1 store starts it empty)
]


@dataclass(frozen=True, slots=True)
class SessionInfo:
    name: str
    semantic: int
    episodic: int
    core_chars: int
    updated_at: float


class SqliteStore:
    """Many named memories in one SQLite file.

    Args:
        path: the database file (created if missing, when `create`).
        synchronous: 'NORMAL' survives a process kill; 'FULL' also a power cut (slower).
        timeout: seconds to wait for another writer's lock.
        create: make a new store when the file is missing or empty; when False (reading
            commands) such a file is an error and is left as it was.

    Raises:
        StoreError: the file is not a memalpha store (foreign tables, or missing/empty without
            `create`), is corrupt, locked, or from a newer version; it is then not modified.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        timeout: float = 30.0,
        create: bool = True,
    ) -> None:
        self.path = Path(path)
        self._depth = 0
        if not create and (not self.path.is_file() or self.path.stat().st_size == 0):
            raise StoreError("no memalpha store here (missing or empty file)", path=str(path))
        try:
            self.conn = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise store_error(exc, "open it", self.path) from None
        try:
            self._refuse_foreign()
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute(f"PRAGMA synchronous={synchronous}")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.Error as exc:
            self.conn.close()
            raise store_error(exc, "open as a memalpha store", self.path) from None
        except StoreError:
            self.conn.close()
            raise

    def _refuse_foreign(self) -> None:
        """A SQLite file with tables but no memalpha schema belongs to something else."""
        if self.conn.execute("PRAGMA user_version").fetchone()[0] > 0:
            return
        tables = [r[0] for r in self.conn.execute("SELECT name FROM sqlite_master")]
        if tables:
            raise StoreError(
                f"not a memalpha store (it holds {', '.join(tables[:5])}); name another file",
                path=str(self.path),
            )

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction for everything inside; nested blocks join the outer one."""
        if self._depth == 0:
            self.conn.execute("BEGIN IMMEDIATE")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                self.conn.execute("ROLLBACK")
            raise
        self._depth -= 1
        if self._depth == 0:
            self.conn.execute("COMMIT")

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"store schema v{version} is newer than this memalpha (v{SCHEMA_VERSION}); "
                "upgrade memalpha",
                path=str(self.path),
            )
        for v in range(version, SCHEMA_VERSION):
            with self.atomic():
                for statement in _MIGRATIONS[v].split(";"):
                    if statement.strip():
                        self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version={v + 1}")

    # ---------------------------------------------------------------- sessions

    @translated("list its sessions")
    def sessions(self) -> list[SessionInfo]:
        rows = self.conn.execute(
            """SELECT s.name, length(s.core), s.updated_at,
                 (SELECT count(*) FROM entries e WHERE e.session = s.name
                    AND e.component = 'semantic'),
                 (SELECT count(*) FROM entries e WHERE e.session = s.name
                    AND e.component = 'episodic')
               FROM sessions s ORDER BY s.name"""
        ).fetchall()
        return [SessionInfo(n, sem, epi, core, upd) for n, core, upd, sem, epi in rows]

    @translated("read it")
    def has_session(self, name: str) -> bool:
        row = self.conn.execute("SELECT 1 FROM sessions WHERE name = ?", (name,)).fetchone()
        return row is not None

    @translated("create a session in it")
    def create_session(self, name: str, *, exist_ok: bool = False) -> None:
        """Raises: StoreError: the session exists (unless exist_ok) or the name is empty."""
        if not name or not name.strip():
            raise StoreError("session name is empty", path=str(self.path))
        now = time.time()
        with self.atomic():
            if self.has_session(name):
                if exist_ok:
                    return
                raise SessionExistsError(name, path=str(self.path))
            self.conn.execute(
                "INSERT INTO sessions (name, created_at, updated_at) VALUES (?, ?, ?)",
                (name, now, now),
            )

    @translated("delete a session from it")
    def delete_session(self, name: str) -> None:
        with self.atomic():
            self._require(name)
            self.conn.execute("DELETE FROM sessions WHERE name = ?", (name,))

    def _require(self, name: str) -> None:
        if not self.has_session(name):
            known = [s.name for s in self.sessions()]
            raise SessionNotFoundError(name, path=str(self.path), known=known[:10])

    # ---------------------------------------------------------------- memories

    @translated("read a session from it")
    def read(self, name: str) -> MemorySnapshot:
        """The session's memory as a snapshot (token counts left at 0).

        Raises:
            SessionNotFoundError.
        """
        row = self.conn.execute(
            "SELECT core, next_semantic, next_episodic FROM sessions WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            self._require(name)
        lists = {
            c: tuple(
                Entry(i, text, 0)
                for i, text in self.conn.execute(
                    "SELECT id, content FROM entries WHERE session = ? AND component = ? "
                    "ORDER BY seq",
                    (name, c.value),
                )
            )
            for c in LIST_COMPONENTS
        }
        return MemorySnapshot(
            row[0],
            lists[Component.SEMANTIC],
            lists[Component.EPISODIC],
            {"semantic": row[1], "episodic": row[2]},
        )

    def open_memory(
        self, name: str, config: MemoryConfig, counter: TokenCounter, source: Source = "writer"
    ) -> Memory:
        """Load a session as a `Memory` whose every operation is written here first (and
        into its history, as coming from `source`).

        Raises:
            SessionNotFoundError.
        """
        snapshot = self.read(name)
        memory = Memory(config, counter, journal=lambda change: self.apply(name, change, source))
        memory.restore(snapshot)  # restoring is not journaled
        return memory

    @translated("write a session to it")
    def write(self, name: str, snapshot: MemorySnapshot, *, replace: bool = False) -> None:
        """Store a whole memory as session `name`, in one transaction.

        Raises:
            StoreError: the session exists and `replace` is False.
        """
        with self.atomic():
            if self.has_session(name):
                if not replace:
                    raise SessionExistsError(name, path=str(self.path))
                self.conn.execute("DELETE FROM sessions WHERE name = ?", (name,))
            self.create_session(name)
            self.conn.execute(
                "UPDATE sessions SET core = ?, next_semantic = ?, next_episodic = ? WHERE name = ?",
                (
                    snapshot.core,
                    snapshot.next_ids.get("semantic", 1),
                    snapshot.next_ids.get("episodic", 1),
                    name,
                ),
            )
            for c, entries in (
                (Component.SEMANTIC, snapshot.semantic),
                (Component.EPISODIC, snapshot.episodic),
            ):
                self.conn.executemany(
                    "INSERT INTO entries (session, component, id, seq, content) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [(name, c.value, e.id, int(e.id[1:]), e.content) for e in entries],
                )
                top = max((int(e.id[1:]) for e in entries), default=0) + 1
                self.conn.execute(
                    f"UPDATE sessions SET next_{c.value} = max(next_{c.value}, ?) WHERE name = ?",
                    (top, name),
                )
            self._record_import(name, snapshot)

    def _record_import(self, name: str, snapshot: MemorySnapshot) -> None:
        """An imported memory enters the history as one insert per entry (and the core)."""
        now = time.time()
        changes = [Change("update", Component.CORE, Entry("core", snapshot.core, 0))]
        changes = changes if snapshot.core else []
        changes += [Change("insert", Component.SEMANTIC, e) for e in snapshot.semantic]
        changes += [Change("insert", Component.EPISODIC, e) for e in snapshot.episodic]
        for change in changes:
            record_change(self.conn, name, change, None, "import", now)

    @translated("read its history")
    def history(self, name: str, entry_id: str | None = None) -> list[HistoryRecord]:
        """Every operation applied to session `name` since it was created (or since the
        store gained a history), in order; one entry's if `entry_id` is given.

        Raises:
            SessionNotFoundError.
        """
        self._require(name)
        return read_history(self.conn, name, entry_id)

    def apply(self, name: str, change: Change, source: Source = "crud") -> None:
        """Persist one change to session `name` (the journal of an opened memory).

        Raises:
            StoreError: the session is gone or no longer matches the memory in RAM.
        """
        try:
            self._apply(name, change, source)
        except sqlite3.Error as exc:
            raise store_error(exc, f"write session '{name}'", self.path) from None

    def apply_many(self, name: str, changes: list[Change], source: Source = "writer") -> None:
        """Persist changes to session `name` in one transaction: all of them or none.

        Raises:
            StoreError: as `apply`; nothing of the list is then stored.
        """
        try:
            with self.atomic():
                for change in changes:
                    self._apply(name, change, source)
        except sqlite3.Error as exc:
            raise store_error(exc, f"write session '{name}'", self.path) from None

    def _apply(self, name: str, change: Change, source: Source) -> None:
        c, e = change.component, change.entry
        with self.atomic():
            before = content_before(self.conn, name, change)
            if c is Component.CORE:
                core = e.content if change.op == "update" else ""
                cur = self.conn.execute(
                    "UPDATE sessions SET core = ?, updated_at = ? WHERE name = ?",
                    (core, time.time(), name),
                )
            elif change.op == "insert":
                self.conn.execute(
                    "INSERT INTO entries (session, component, id, seq, content) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (name, c.value, e.id, int(e.id[1:]), e.content),
                )
                cur = self.conn.execute(
                    f"UPDATE sessions SET next_{c.value} = max(next_{c.value}, ?), "
                    "updated_at = ? WHERE name = ?",
                    (int(e.id[1:]) + 1, time.time(), name),
                )
            else:
                sql = (
                    "UPDATE entries SET content = ? WHERE session = ? AND component = ? AND id = ?"
                    if change.op == "update"
                    else "DELETE FROM entries WHERE ? IS NOT NULL AND session = ? "
                    "AND component = ? AND id = ?"
                )
                cur = self.conn.execute(sql, (e.content, name, c.value, e.id))
                if cur.rowcount == 1:
                    cur = self.conn.execute(
                        "UPDATE sessions SET updated_at = ? WHERE name = ?", (time.time(), name)
                    )
            if cur.rowcount != 1:
                raise StoreError(
                    f"session '{name}' changed under this memory ({change.op} {c.value} "
                    f"{e.id} found no row); reopen the session",
                    path=str(self.path),
                )
            record_change(self.conn, name, change, before, source, time.time())
