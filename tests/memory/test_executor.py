"""Tool execution as the published executor defines it (SPEC §1.6), with memalpha's fixes."""

from __future__ import annotations

import json

import pytest

from memalpha.errors import UnknownEntryError
from memalpha.memory import CallStatus, Component, Memory, ToolCall, ToolExecutor, ToolRegistry


def run(executor: ToolExecutor, memory: Memory, name: str, args) -> object:
    return executor.execute(memory, ToolCall(name, args))


def test_insert_ok_returns_new_id(executor, memory) -> None:
    r = run(
        executor,
        memory,
        "new_memory_insert",
        {"memory_type": "semantic_memory", "content": "Cats purr."},
    )
    assert r.ok and r.status is CallStatus.OK and r.entry_id == "s1"


def test_bare_memory_type_names_are_accepted(executor, memory) -> None:
    r = run(executor, memory, "new_memory_insert", {"memory_type": "episodic", "content": "x"})
    assert r.ok and r.component is Component.EPISODIC


def test_duplicate_insert_is_skipped_and_not_ok(executor, memory) -> None:
    args = {"memory_type": "semantic_memory", "content": "Cats purr."}
    run(executor, memory, "new_memory_insert", args)
    r = run(executor, memory, "new_memory_insert", args)
    assert r.status is CallStatus.SKIPPED and not r.ok and r.entry_id == "s1"


def test_delete_unknown_id_is_a_failed_call(executor, memory) -> None:
    r = run(
        executor, memory, "memory_delete", {"memory_type": "semantic_memory", "memory_id": "s3"}
    )
    assert r.status is CallStatus.ERROR and "unknown semantic id 's3'" in r.message


def test_update_unknown_id_is_a_failed_call(executor, memory) -> None:
    r = run(
        executor,
        memory,
        "memory_update",
        {"memory_type": "episodic_memory", "memory_id": "e1", "new_content": "y"},
    )
    assert r.status is CallStatus.ERROR


def test_core_insert_is_refused_by_the_enum(executor, memory) -> None:
    r = run(executor, memory, "new_memory_insert", {"memory_type": "core_memory", "content": "x"})
    assert r.status is CallStatus.ERROR and "not one of" in r.message


def test_core_update_and_delete(executor, memory) -> None:
    assert run(
        executor,
        memory,
        "memory_update",
        {"memory_type": "core_memory", "new_content": "Ada likes tea."},
    ).ok
    assert memory.core == "Ada likes tea."
    assert run(executor, memory, "memory_delete", {"memory_type": "core"}).ok
    assert memory.core == ""


def test_search_memory_is_not_executable_in_memorize_mode(executor, memory) -> None:
    r = run(executor, memory, "search_memory", {"memory_type": "semantic_memory", "query": "x"})
    assert r.status is CallStatus.ERROR and "unknown tool" in r.message


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"content": "x"}, "missing required argument 'memory_type'"),
        ({"memory_type": "semantic_memory"}, "missing required argument 'content'"),
        ({"memory_type": "procedural_memory", "content": "x"}, "not one of"),
        ({"memory_type": "semantic_memory", "content": 42}, "must be a string"),
        ("[1, 2]", "must be a JSON object"),
        ("not json at all", "not a JSON object"),
    ],
)
def test_malformed_arguments_are_failed_calls_never_exceptions(executor, memory, args, fragment):
    r = run(executor, memory, "new_memory_insert", args)
    assert r.status is CallStatus.ERROR and fragment in r.message
    assert memory.count(Component.SEMANTIC) == 0


def test_json_string_arguments_are_parsed_and_repaired(executor, memory) -> None:
    good = json.dumps({"memory_type": "semantic_memory", "content": "a"})
    truncated = '{"memory_type": "semantic_memory", "content": "b"'
    assert run(executor, memory, "new_memory_insert", good).ok
    assert run(executor, memory, "new_memory_insert", truncated).ok
    assert [e.content for e in memory.entries(Component.SEMANTIC)] == ["a", "b"]


def test_ids_copied_with_brackets_from_the_view_work(executor, memory) -> None:
    memory.insert(Component.SEMANTIC, "fact")
    r = run(
        executor, memory, "memory_delete", {"memory_type": "semantic_memory", "memory_id": "[s1]"}
    )
    assert r.ok


def test_calls_run_in_order_against_the_same_memory(executor, memory) -> None:
    calls = [
        ToolCall("new_memory_insert", {"memory_type": "semantic_memory", "content": "v1"}),
        ToolCall(
            "memory_update",
            {"memory_type": "semantic_memory", "memory_id": "s1", "new_content": "v2"},
        ),
        ToolCall("memory_delete", {"memory_type": "semantic_memory", "memory_id": "s1"}),
        ToolCall("memory_delete", {"memory_type": "semantic_memory", "memory_id": "s1"}),
    ]
    statuses = [r.status for r in executor.execute_all(memory, calls)]
    assert statuses == [CallStatus.OK, CallStatus.OK, CallStatus.OK, CallStatus.ERROR]


def test_disabled_component_leaves_tools_and_enums(make_memory) -> None:
    registry = ToolRegistry(frozenset({Component.CORE, Component.EPISODIC}))
    enums = {
        f["name"]: f["parameters"]["properties"]["memory_type"]["enum"]
        for f in registry.functions()
    }
    assert enums == {
        "new_memory_insert": ["semantic_memory"],
        "memory_update": ["semantic_memory"],
        "memory_delete": ["semantic_memory"],
    }
    r = ToolExecutor(registry).execute(
        make_memory(disabled=["core", "episodic"]),
        ToolCall("memory_update", {"memory_type": "core_memory", "new_content": "x"}),
    )
    assert r.status is CallStatus.ERROR


def test_tool_whose_enum_empties_is_dropped() -> None:
    registry = ToolRegistry(frozenset({Component.SEMANTIC, Component.EPISODIC}))
    assert [f["name"] for f in registry.functions()] == ["memory_update", "memory_delete"]


def test_published_schemas_are_exact() -> None:
    insert = ToolRegistry().openai()[0]
    assert insert["type"] == "function"
    fn = insert["function"]
    assert fn["name"] == "new_memory_insert"
    assert fn["description"].startswith("Infer a new memory and append it to a memory store.")
    assert fn["parameters"]["required"] == ["memory_type", "content"]
    assert fn["parameters"]["properties"]["memory_type"]["enum"] == [
        "semantic_memory",
        "episodic_memory",
    ]
    names = [f["name"] for f in ToolRegistry().functions()]
    assert names == ["new_memory_insert", "memory_update", "memory_delete"]


def test_every_result_carries_the_change_it_committed(make_memory, executor) -> None:
    """What a call changed is on its result, equal to what the journal was given: nobody
    has to swap the journal to learn it."""
    journaled = []
    memory = make_memory()
    memory.journal = journaled.append
    calls = [
        ("new_memory_insert", {"memory_type": "semantic_memory", "content": "Cats purr."}),
        (
            "memory_update",
            {"memory_type": "semantic_memory", "memory_id": "s1", "new_content": "Cats nap."},
        ),
        ("memory_update", {"memory_type": "core_memory", "new_content": "A cat person."}),
        ("memory_delete", {"memory_type": "semantic_memory", "memory_id": "s1"}),
        ("memory_delete", {"memory_type": "semantic_memory", "memory_id": "s1"}),  # refused
    ]
    results = [run(executor, memory, name, args) for name, args in calls]
    assert [r.change for r in results if r.ok] == journaled
    assert [c.op for c in journaled] == ["insert", "update", "update", "delete"]
    assert results[-1].change is None and not results[-1].ok
    assert results[-1].error is UnknownEntryError  # the refusal's type, not its name
