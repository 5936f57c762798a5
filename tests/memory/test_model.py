"""Memory operations and their error cases (MEMALPHA_SPEC §1.2–1.3, as memalpha defines them)."""

from __future__ import annotations

import pytest

from memalpha.errors import (
    ComponentDisabledError,
    DuplicateEntryError,
    InvalidOperationError,
    LimitExceededError,
    StoreError,
    UnknownEntryError,
)
from memalpha.memory import Component, Memory

S, E, CORE = Component.SEMANTIC, Component.EPISODIC, Component.CORE


def test_insert_gives_short_prefixed_ids_per_component(memory: Memory) -> None:
    assert memory.insert(S, "Paris is in France.").id == "s1"
    assert memory.insert(S, "Rome is in Italy.").id == "s2"
    assert memory.insert(E, "At 2024-01-01, user flew.").id == "e1"


def test_ids_are_never_reused_after_delete(memory: Memory) -> None:
    memory.insert(S, "a fact")
    second = memory.insert(S, "another fact")
    memory.delete(S, second.id)
    assert memory.insert(S, "a third fact").id == "s3"


def test_exact_duplicate_insert_is_refused_with_existing_id(memory: Memory) -> None:
    first = memory.insert(S, "Water boils at 100 C.")
    with pytest.raises(DuplicateEntryError) as info:
        memory.insert(S, "Water boils at 100 C.")
    assert info.value.existing_id == first.id
    assert memory.count(S) == 1


def test_duplicate_check_is_per_component(memory: Memory) -> None:
    memory.insert(S, "same text")
    assert memory.insert(E, "same text").id == "e1"


def test_core_is_update_only(memory: Memory) -> None:
    with pytest.raises(InvalidOperationError, match="core memory cannot be inserted"):
        memory.insert(CORE, "hello")
    memory.update(CORE, "The user is Ada.")
    assert memory.core == "The user is Ada."


def test_core_update_replaces_whole_paragraph_and_ignores_id(memory: Memory) -> None:
    memory.update(CORE, "first")
    memory.update(CORE, "second", "s99")
    assert memory.core == "second"


def test_core_delete_clears_paragraph(memory: Memory) -> None:
    memory.update(CORE, "something")
    removed = memory.delete(CORE)
    assert removed.content == "something" and memory.core == ""
    assert memory.total_tokens == 0


def test_update_keeps_entry_id_and_position(memory: Memory) -> None:
    memory.insert(S, "one")
    memory.insert(S, "two")
    memory.update(S, "ONE", "s1")
    assert [(e.id, e.content) for e in memory.entries(S)] == [("s1", "ONE"), ("s2", "two")]


def test_update_unknown_id_is_an_error_naming_known_ids(memory: Memory) -> None:
    memory.insert(S, "one")
    with pytest.raises(UnknownEntryError, match=r"unknown semantic id 's7' \(known: s1\)"):
        memory.update(S, "x", "s7")


def test_delete_unknown_id_is_an_error_not_a_silent_success(memory: Memory) -> None:
    with pytest.raises(UnknownEntryError, match="semantic memory is empty"):
        memory.delete(S, "s1")


def test_update_and_delete_of_list_entry_need_an_id(memory: Memory) -> None:
    memory.insert(E, "event")
    with pytest.raises(InvalidOperationError, match="memory_id is required"):
        memory.delete(E, None)


def test_ids_of_other_component_are_unknown(memory: Memory) -> None:
    memory.insert(S, "fact")
    with pytest.raises(UnknownEntryError):
        memory.delete(E, "s1")


def test_empty_content_is_refused(memory: Memory) -> None:
    with pytest.raises(InvalidOperationError, match="content is empty"):
        memory.insert(S, "   ")


def test_core_over_cap_is_truncated_with_published_marker(make_memory, counter) -> None:
    memory = make_memory(core_max_tokens=32)
    memory.update(CORE, " ".join(f"word{i}" for i in range(200)))
    assert memory.core.endswith(" [content exceeds 32 tokens, truncated]")
    assert counter.count(memory.core) <= 32
    assert memory.core.startswith("word0 word1")


def test_core_over_cap_is_an_error_when_configured(make_memory) -> None:
    memory = make_memory(core_max_tokens=8, core_overflow="error")
    with pytest.raises(LimitExceededError) as info:
        memory.update(CORE, "one two three four five six seven eight nine ten eleven")
    assert info.value.limit == 8 and memory.core == ""


def test_entry_token_cap(make_memory) -> None:
    memory = make_memory(max_entry_tokens=5)
    with pytest.raises(LimitExceededError, match="entry cap"):
        memory.insert(S, "this sentence is certainly longer than five tokens")
    assert memory.count(S) == 0


def test_entry_count_cap_counts_both_lists(make_memory) -> None:
    memory = make_memory(max_entries=2)
    memory.insert(S, "a")
    memory.insert(E, "b")
    with pytest.raises(LimitExceededError, match="2 entries"):
        memory.insert(S, "c")


def test_total_token_cap_applies_to_updates(make_memory, counter) -> None:
    memory = make_memory(max_total_tokens=520)
    memory.update(CORE, "short")
    entry = memory.insert(S, "tiny")
    with pytest.raises(LimitExceededError):
        memory.update(S, "x " * 600, entry.id)
    assert memory.get(S, entry.id).content == "tiny"


def test_disabled_component_refuses_operations(make_memory) -> None:
    memory = make_memory(disabled=["episodic"])
    with pytest.raises(ComponentDisabledError):
        memory.insert(E, "event")
    assert Component.EPISODIC not in memory.stats()


def test_total_tokens_tracks_every_change(memory: Memory, counter) -> None:
    memory.update(CORE, "The user likes tea.")
    a = memory.insert(S, "Tea is a drink.")
    memory.insert(E, "At noon, the user drank tea.")
    memory.update(S, "Tea is a hot drink made from leaves.", a.id)
    memory.delete(E, "e1")
    expected = counter.count("The user likes tea.") + counter.count(
        "Tea is a hot drink made from leaves."
    )
    assert memory.total_tokens == expected


def test_recent_returns_newest_k_oldest_first(memory: Memory) -> None:
    for i in range(8):
        memory.insert(S, f"fact {i}")
    assert [e.id for e in memory.recent(S, 3)] == ["s6", "s7", "s8"]
    assert memory.recent(S, 0) == []


def test_search_ranks_matching_entries_and_follows_changes(memory: Memory) -> None:
    memory.insert(S, "The Eiffel Tower is in Paris.")
    memory.insert(S, "Bananas are yellow.")
    assert [e.id for e, _ in memory.search(S, "where is the eiffel tower", 5)] == ["s1"]
    memory.update(S, "Bananas grow near the Eiffel Tower.", "s2")  # index follows the update
    memory.delete(S, "s1")
    assert [e.id for e, _ in memory.search(S, "eiffel", 5)] == ["s2"]


def test_failed_journal_leaves_memory_unchanged(memory: Memory) -> None:
    memory.insert(S, "kept")

    def broken(change) -> None:
        raise StoreError("disk full")

    memory.journal = broken
    with pytest.raises(StoreError):
        memory.insert(S, "lost")
    with pytest.raises(StoreError):
        memory.delete(S, "s1")
    assert [e.content for e in memory.entries(S)] == ["kept"]
    memory.journal = None
    assert memory.insert(S, "next").id == "s2"  # the refused insert did not use up an id


@pytest.mark.parametrize("content", ["\u200b\u200b", "\x00", "\ufeff", " \u2028 ", "\u00a0"])
def test_invisible_content_is_refused_like_empty_content(memory, content) -> None:
    """`str.strip()` keeps zero-width spaces, NUL and BOM: 391 fuzzed entries held only those."""
    with pytest.raises(InvalidOperationError, match="empty or invisible"):
        memory.insert(Component.SEMANTIC, content)
    with pytest.raises(InvalidOperationError, match="empty or invisible"):
        memory.update(Component.CORE, content)


def test_a_lone_surrogate_is_refused_before_it_reaches_a_store(memory) -> None:
    with pytest.raises(InvalidOperationError, match="lone surrogate"):
        memory.insert(Component.SEMANTIC, "Bob \ud83d is here")
    memory.insert(Component.SEMANTIC, "Bob 😀 is here")  # a whole emoji is fine
