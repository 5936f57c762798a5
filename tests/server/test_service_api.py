"""The service as people use memory services: search without an LLM, the history of every
change, tenants kept apart by their keys, and the typed client (sync and async). A real
`memalpha serve` on 127.0.0.1 with a real SQLite file, the rule writer."""

from __future__ import annotations

import asyncio
import json
import socket
import threading

import httpx
import pytest

from memalpha.client import AsyncMemalphaClient, MemalphaClient
from memalpha.errors import (
    BackendTimeout,
    BackendUnavailable,
    ServiceConflict,
    ServiceNotFound,
    ServiceRequestError,
    ServiceUnauthorized,
)
from memalpha.http_process import free_port
from memalpha.server.process import serve_subprocess

FACTS = [
    "Alice moved to Paris in 2019. She bakes bread at Le Pain. Bob lives in Lyon.",
    "Carol grows tomatoes in Nantes. Bob sold his bicycle in June.",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serve_subprocess(tmp_path_factory.mktemp("api") / "mem.db", startup_s=60) as url:
        yield url


def test_search_returns_scored_entries_without_an_llm(server):
    with MemalphaClient(server) as c:
        c.create_session("search")
        c.memorize("search", FACTS)
        hits = c.search("search", "Where does Bob live?", k=3).results
        assert hits and "Lyon" in hits[0].content
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert len(hits) <= 3 and all(h.id.startswith(("s", "e")) for h in hits)
        episodic = c.search("search", "Bob", memory_types=["episodic"]).results
        assert all(h.component == "episodic" for h in episodic)


def test_history_shows_every_change_with_its_source_before_and_after(server):
    with MemalphaClient(server) as c:
        c.create_session("hist")
        c.memorize("hist", FACTS[:1])
        sid = c.insert("hist", "semantic", "Alice likes jazz.").call.entry_id
        c.update("hist", "semantic", sid, "Alice likes blues.")
        c.delete("hist", "semantic", sid)
        ops = c.history("hist").operations
        assert [o.seq for o in ops] == sorted(o.seq for o in ops)
        assert {o.source for o in ops} == {"writer", "crud"}
        writer_inserts = [o for o in ops if o.source == "writer" and o.op == "insert"]
        assert any("Paris" in (o.after or "") for o in writer_inserts)
        mine = c.history("hist", entry=sid).operations
        assert [(o.op, o.before, o.after) for o in mine] == [
            ("insert", None, "Alice likes jazz."),
            ("update", "Alice likes jazz.", "Alice likes blues."),
            ("delete", "Alice likes blues.", None),
        ]
        c.import_memory("copy", c.export("hist").model_dump(mode="json"))
        assert {o.source for o in c.history("copy").operations} == {"import"}
        with pytest.raises(ServiceNotFound):
            c.history("nobody")


def test_history_survives_a_crash_with_the_memory(tmp_path):
    store = tmp_path / "h.db"
    with serve_subprocess(store, startup_s=60) as url, MemalphaClient(url) as c:
        c.create_session("d")
        c.memorize("d", FACTS)
        before = c.history("d").operations
    with serve_subprocess(store, startup_s=60) as url, MemalphaClient(url) as c:
        assert c.history("d").operations == before  # SIGKILLed in between
        ids = {e.id for e in c.memory("d").semantic}
        assert ids == {o.entry_id for o in before if o.component == "semantic"}


def test_a_tenant_can_neither_list_read_write_nor_delete_another_tenants_sessions(tmp_path):
    keys = [
        {"key": "acme-key", "namespace": "acme"},
        {"key": "zeta-key", "namespace": "zeta"},
        "admin-key",
    ]
    config = tmp_path / "serve.yaml"
    config.write_text(json.dumps({"api_keys": keys}))
    with serve_subprocess(tmp_path / "t.db", "--config", str(config), startup_s=60) as url:
        acme = MemalphaClient(url, api_key="acme-key")
        zeta = MemalphaClient(url, api_key="zeta-key")
        admin = MemalphaClient(url, api_key="admin-key")
        acme.create_session("alice")
        acme.memorize("alice", FACTS[:1])
        assert [s.name for s in acme.sessions().sessions] == ["alice"]
        assert zeta.sessions().sessions == []  # list
        for attempt in (
            lambda: zeta.memory("alice"),  # read
            lambda: zeta.search("alice", "Paris"),
            lambda: zeta.history("alice"),
            lambda: zeta.export("alice"),
            lambda: zeta.ask("alice", ["Where did Alice move?"]),
            lambda: zeta.memorize("alice", ["Zeta was here."]),  # write
            lambda: zeta.insert("alice", "semantic", "Zeta was here."),
            lambda: zeta.delete("alice", "semantic", "s1"),
            lambda: zeta.delete_session("alice"),  # delete
        ):
            with pytest.raises(ServiceNotFound):
                attempt()
        zeta.create_session("alice")  # its own "alice", not acme's
        zeta.insert("alice", "semantic", "Zeta's own fact.")
        acme_entries = [e.content for e in acme.memory("alice").semantic]
        assert "Zeta's own fact." not in acme_entries and "Zeta was here." not in acme_entries
        assert {s.name for s in admin.sessions().sessions} == {"acme:alice", "zeta:alice"}
        assert [e.content for e in admin.memory("acme:alice").semantic] == acme_entries
        with pytest.raises(ServiceUnauthorized):
            MemalphaClient(url, api_key="wrong").sessions()
        for client in (acme, zeta, admin):
            client.close()


def test_the_client_raises_the_services_errors_as_typed_exceptions(server):
    with MemalphaClient(server) as c:
        c.create_session("dup")
        with pytest.raises(ServiceConflict) as exists:
            c.create_session("dup")
        assert exists.value.code == "session_exists" and exists.value.status == 409
        with pytest.raises(ServiceNotFound) as unknown:
            c.delete("dup", "semantic", "s99")
        assert unknown.value.code == "unknown_entry"
        with pytest.raises(ServiceRequestError) as invalid:
            c.create_session("a/b")
        assert invalid.value.code == "invalid_session_name"
        assert c.health().status == "ok"


def test_the_async_client_does_the_same(server):
    async def run() -> list[str]:
        async with AsyncMemalphaClient(server) as c:
            await c.create_session("async")
            await asyncio.gather(*(c.insert("async", "episodic", f"event {i}") for i in range(8)))
            with pytest.raises(ServiceNotFound):
                await c.memory("nobody")
            return [e.content for e in (await c.memory("async")).episodic]

    assert sorted(asyncio.run(run())) == sorted(f"event {i}" for i in range(8))


def test_the_client_keeps_its_deadline_and_says_when_nothing_is_there():
    with MemalphaClient(f"http://127.0.0.1:{free_port()}") as c, pytest.raises(BackendUnavailable):
        c.sessions()
    sock = socket.socket()  # accepts and never answers (a fake service)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    stop = threading.Event()
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(sock.accept()), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with MemalphaClient(url, timeout_s=0.5) as c, pytest.raises(BackendTimeout):
            c.sessions()
    finally:
        stop.set()
        sock.close()


def test_the_readme_client_example_runs(server):
    """The README's ```py block (the typed client) against a real server."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    (block,) = re.findall(r"```py\n(.*?)```", readme, re.S)
    namespace: dict = {"MEMALPHA_URL": server}
    exec(
        compile(block.replace('os.environ["MEMALPHA_URL"]', "MEMALPHA_URL"), "README", "exec"),
        namespace,
    )
    assert namespace["answer"]
    httpx.get(f"{server}/health").raise_for_status()
