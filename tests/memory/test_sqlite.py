"""The SQLite store: durable sessions, atomic writes, WAL readers, kill safety, clear errors."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import pytest

from memalpha.errors import SessionNotFoundError, StoreError
from memalpha.memory import Component, MemoryConfig, SqliteStore
from memalpha.tokens import make_token_counter

S = Component.SEMANTIC


def test_operations_survive_reopening(tmp_path, counter) -> None:
    path = tmp_path / "mem.db"
    with SqliteStore(path) as store:
        store.create_session("alice")
        mem = store.open_memory("alice", MemoryConfig(), counter)
        mem.update(Component.CORE, "Alice likes jazz.")
        mem.insert(S, "Jazz began in New Orleans.")
        mem.insert(S, "Temporary.")
        mem.update(S, "Jazz began in New Orleans around 1900.", "s1")
        mem.delete(S, "s2")
        mem.insert(Component.EPISODIC, "At 9pm Alice went to a concert.")
        expected = mem.snapshot()
    with SqliteStore(path) as store:
        again = store.open_memory("alice", MemoryConfig(), counter)
    assert again.snapshot() == expected
    assert again.snapshot().next_ids["semantic"] == 3  # the id counter is durable too


def test_sessions_are_isolated_and_listed(tmp_path, counter) -> None:
    with SqliteStore(tmp_path / "m.db") as store:
        for name in ("b", "a"):
            store.create_session(name)
            store.open_memory(name, MemoryConfig(), counter).insert(S, f"fact of {name}")
        store.open_memory("a", MemoryConfig(), counter).insert(S, "second fact of a")
        info = {s.name: s.semantic for s in store.sessions()}
        assert info == {"a": 2, "b": 1}
        store.delete_session("a")
        assert [s.name for s in store.sessions()] == ["b"]


def test_unknown_session_names_known_ones(tmp_path, counter) -> None:
    with SqliteStore(tmp_path / "m.db") as store:
        store.create_session("alice")
        with pytest.raises(SessionNotFoundError, match=r"unknown session 'bob' \(known: alice\)"):
            store.open_memory("bob", MemoryConfig(), counter)


def test_creating_an_existing_session_is_an_error(tmp_path) -> None:
    with SqliteStore(tmp_path / "m.db") as store:
        store.create_session("x")
        with pytest.raises(StoreError, match="already exists"):
            store.create_session("x")
        store.create_session("x", exist_ok=True)


def test_failed_atomic_block_leaves_no_trace(tmp_path, counter) -> None:
    with SqliteStore(tmp_path / "m.db") as store:
        store.create_session("s")
        mem = store.open_memory("s", MemoryConfig(), counter)
        mem.insert(S, "kept")
        with pytest.raises(RuntimeError), store.atomic():
            mem.insert(S, "rolled back")
            raise RuntimeError("boom")
        assert store.read("s").semantic[0].content == "kept"
        assert len(store.read("s").semantic) == 1


def test_write_that_finds_no_row_raises_and_keeps_ram_unchanged(tmp_path, counter) -> None:
    with SqliteStore(tmp_path / "m.db") as store:
        store.create_session("s")
        mem = store.open_memory("s", MemoryConfig(), counter)
        mem.insert(S, "fact")
        store.delete_session("s")  # e.g. another client deleted it
        with pytest.raises(StoreError, match="changed under this memory"):
            mem.update(S, "new", "s1")
        assert mem.get(S, "s1").content == "fact"


def test_corrupt_file_is_a_clear_store_error(tmp_path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open as a memalpha store"):
        SqliteStore(path)


def test_newer_schema_is_refused(tmp_path) -> None:
    path = tmp_path / "m.db"
    SqliteStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=99")
    conn.close()
    with pytest.raises(StoreError, match="newer than this memalpha"):
        SqliteStore(path)


def test_readers_see_committed_state_while_a_writer_is_mid_transaction(tmp_path, counter) -> None:
    path = tmp_path / "m.db"
    with SqliteStore(path) as writer, SqliteStore(path, timeout=0.5) as reader:
        writer.create_session("s")
        mem = writer.open_memory("s", MemoryConfig(), counter)
        mem.insert(S, "committed")
        with writer.atomic():
            mem.insert(S, "pending")
            assert [e.content for e in reader.read("s").semantic] == ["committed"]
        assert len(reader.read("s").semantic) == 2


WRITER = textwrap.dedent(
    """
    import sys
    from memalpha.memory import Component, MemoryConfig, SqliteStore
    from memalpha.tokens import make_token_counter
    store = SqliteStore(sys.argv[1])
    store.create_session("w", exist_ok=True)
    mem = store.open_memory("w", MemoryConfig(), make_token_counter())
    i = 0
    while True:
        i += 1
        e = mem.insert(Component.SEMANTIC, f"fact number {i} " + "x" * (i % 50))
        if i % 3 == 0:
            mem.update(Component.SEMANTIC, f"updated fact {i}", e.id)
        print(e.id, flush=True)  # printed only after the operation was acknowledged
    """
)


def test_killed_writer_loses_no_acknowledged_operation(tmp_path, counter) -> None:
    path = tmp_path / "kill.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    acked = []
    try:
        while len(acked) < 300:
            line = proc.stdout.readline()
            assert line, "writer died before acknowledging 300 operations"
            acked.append(line.strip())
    finally:
        proc.kill()  # SIGKILL: no cleanup, no close, mid-stream
        proc.wait()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    with SqliteStore(path) as store:
        mem = store.open_memory("w", MemoryConfig(), counter)
    stored = {e.id: e.content for e in mem.entries(S)}
    assert set(acked) <= set(stored)
    for entry_id in acked:
        n = int(entry_id[1:])
        if n % 3 == 0:
            assert stored[entry_id] == f"updated fact {n}"
    assert len(set(stored)) == len(stored)


def test_a_locked_store_is_a_store_error_that_says_what_to_do(tmp_path) -> None:
    """Another process holds the write lock: after the wait, a one-line StoreError naming
    the file (it was a bare sqlite3.OperationalError)."""
    import sqlite3

    from memalpha.memory import MemorySnapshot

    path = tmp_path / "locked.db"
    with SqliteStore(path) as db:
        db.create_session("a")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with (
            SqliteStore(path, timeout=0.2) as db,
            pytest.raises(StoreError, match="another process"),
        ):
            db.write("b", MemorySnapshot("x", (), ()))
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_version_1_store_gains_a_history_and_keeps_its_sessions(tmp_path) -> None:
    import sqlite3

    from memalpha.memory.sqlite import _MIGRATIONS

    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    conn.executescript(_MIGRATIONS[0])  # the schema as memalpha wrote it before history
    conn.execute("INSERT INTO sessions (name, created_at, updated_at) VALUES ('old', 0, 0)")
    conn.execute(
        "INSERT INTO entries (session, component, id, seq, content) "
        "VALUES ('old', 'semantic', 's1', 1, 'kept')"
    )
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    with SqliteStore(path) as db:
        assert [e.content for e in db.read("old").semantic] == ["kept"]
        assert db.history("old") == []  # nothing was logged before v2
        memory = db.open_memory("old", MemoryConfig(), make_token_counter(), source="crud")
        memory.update(Component.SEMANTIC, "changed", "s1")
        (record,) = db.history("old")
    assert (record.op, record.source, record.before, record.after) == (
        "update",
        "crud",
        "kept",
        "changed",
    )
