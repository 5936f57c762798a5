"""JSON export/import: lossless, validated, and compatible with the published agent_state.json."""

from __future__ import annotations

import json

import pytest

from memalpha.errors import DataError
from memalpha.memory import Component, Memory, MemoryConfig, read_json, write_json


def test_round_trip_keeps_ids_order_and_counters(memory, counter, tmp_path) -> None:
    memory.update(Component.CORE, "Ünïcode core ✿")
    for i in range(4):
        memory.insert(Component.SEMANTIC, f"fact {i}")
    memory.delete(Component.SEMANTIC, "s4")
    memory.insert(Component.EPISODIC, "event")
    write_json(memory.snapshot(), tmp_path / "m.json")
    restored = Memory(MemoryConfig(), counter)
    restored.restore(read_json(tmp_path / "m.json"))
    assert restored.snapshot() == memory.snapshot()
    assert restored.total_tokens == memory.total_tokens
    assert restored.insert(Component.SEMANTIC, "new").id == "s5"  # s4 is not reused


def test_published_agent_state_layout_imports(counter, tmp_path) -> None:
    published = {
        "core": "User is Bo.",
        "semantic": [{"a1b2": "fact one"}, {"a1b2": "fact two"}],
        "episodic": [{"ffff": "event"}],
        "step": 3,
    }
    (tmp_path / "agent_state.json").write_text(json.dumps(published))
    snap = read_json(tmp_path / "agent_state.json")
    assert [(e.id, e.content) for e in snap.semantic] == [("s1", "fact one"), ("s2", "fact two")]
    assert snap.core == "User is Bo." and snap.episodic[0].id == "e1"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{not json", "not valid JSON"),
        (
            '{"format": "memalpha.memory/1", "semantic": [{"id": "x1", "content": "a"}]}',
            "not of the form s<number>",
        ),
        (
            '{"format": "memalpha.memory/1", "semantic": [{"id": "s1", "content": "a"},'
            ' {"id": "s1", "content": "b"}]}',
            "unique",
        ),
        ('{"format": "memalpha.memory/9"}', "not a memalpha memory export"),
        ("[1, 2, 3]", "not a memalpha memory export"),
    ],
)
def test_bad_files_give_specific_errors(tmp_path, text, fragment) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(DataError, match=fragment):
        read_json(path)


def test_missing_file_is_a_data_error(tmp_path) -> None:
    with pytest.raises(DataError, match="no such file"):
        read_json(tmp_path / "absent.json")
