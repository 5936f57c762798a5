"""Property tests: any sequence of operations keeps ids unique and never reused, and the memory
survives store → reload → export → import exactly."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memalpha.memory import (
    CallStatus,
    Component,
    Memory,
    MemoryConfig,
    SqliteStore,
    ToolCall,
    ToolExecutor,
    ToolRegistry,
    read_json,
    write_json,
)

TYPES = ["core_memory", "semantic_memory", "episodic_memory", "semantic", "episodic"]
text = st.text(alphabet="abc xyz✿é\n", min_size=0, max_size=12)
ids = st.sampled_from(["s1", "s2", "s3", "e1", "e2", "e9", "[s1]", "", "core"])
calls = st.one_of(
    st.builds(
        lambda t, c: ToolCall("new_memory_insert", {"memory_type": t, "content": c}),
        st.sampled_from(TYPES),
        text,
    ),
    st.builds(
        lambda t, c, i: ToolCall(
            "memory_update", {"memory_type": t, "new_content": c, "memory_id": i}
        ),
        st.sampled_from(TYPES),
        text,
        ids,
    ),
    st.builds(
        lambda t, i: ToolCall("memory_delete", {"memory_type": t, "memory_id": i}),
        st.sampled_from(TYPES),
        ids,
    ),
)
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(st.lists(calls, max_size=40))
def test_ids_stay_unique_and_are_never_reused(counter, sequence) -> None:
    memory = Memory(MemoryConfig(), counter)
    executor = ToolExecutor(ToolRegistry())
    issued: dict[str, str] = {}  # id -> content at insert
    for result in executor.execute_all(memory, sequence):
        if result.status is CallStatus.OK and result.call.name == "new_memory_insert":
            assert result.entry_id not in issued, "an id was issued twice"
            issued[result.entry_id] = result.call.arguments["content"]
    for c in (Component.SEMANTIC, Component.EPISODIC):
        entry_ids = [e.id for e in memory.entries(c)]
        assert len(entry_ids) == len(set(entry_ids))
        contents = [e.content for e in memory.entries(c)]
        assert len(contents) == len(set(contents)), "duplicate content inside one component"
    assert memory.total_tokens == sum(
        counter.count(t)
        for t in [memory.core]
        + [e.content for c in (Component.SEMANTIC, Component.EPISODIC) for e in memory.entries(c)]
    )


@SETTINGS
@given(st.lists(calls, max_size=30))
def test_store_reload_export_import_is_exact(counter, sequence) -> None:
    executor = ToolExecutor(ToolRegistry())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.db"
        ram = Memory(MemoryConfig(), counter)
        with SqliteStore(path) as store:
            store.create_session("p")
            durable = store.open_memory("p", MemoryConfig(), counter)
            for call in sequence:
                a, b = executor.execute(ram, call), executor.execute(durable, call)
                assert (a.status, a.entry_id) == (b.status, b.entry_id)
        with SqliteStore(path) as store:
            reloaded = store.open_memory("p", MemoryConfig(), counter)
            assert reloaded.snapshot() == ram.snapshot()
            write_json(reloaded.snapshot(), Path(tmp) / "m.json")
            store.write("copy", read_json(Path(tmp) / "m.json"))
            assert store.read("copy") == store.read("p")
