"""Aim: whether a chunk's update and delete calls land on the entries that state values the
chunk overwrites (`QA.superseded`), checked against the data without a reader or a teacher.

Why: the conflict-resolution score of the final memory (`cr_score: fate`) is one number per
question for a whole trajectory, so a rollout that aims three calls right and two wrong shares
it with one that aims the other way, and a 135M writer names the wrong id or binds a value to
the wrong person in chunks that carry several changes (benchmarks/RESULTS.md, "Why the warm
start overwrites few changed facts"). Aim scores each chunk on its own calls.

A chunk *announces* a change when one of its sentences names the subject and the new value.
The chunk *wants* an announced change when some semantic or episodic entry stated its old value
as the chunk began. A call *aims* when it is an update or delete of a list entry (core is
rewritten whole and not counted). It *hits* a wanted change, once per change, when the entry it
names stated that change's old value just before the call and, for an update, its new content
states the new value of the same subject (a value bound to another person misses). With
`deletes_need_new`, a delete hits only when, by the chunk's end, some list entry states the new
value too: a delete that leaves the changed fact unstated in memory has not resolved it. What
each entry held at each moment comes from replaying the episode's calls on an empty memory with
the same executor, so the local trainer and verl's reward (which keep no memory per chunk)
score the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from memalpha.data import Instance, Superseded
from memalpha.errors import MemoryOperationError
from memalpha.memory import (
    Component,
    Memory,
    MemoryConfig,
    ToolExecutor,
    ToolRegistry,
    ToolResult,
    clean_entry_id,
    parse_component,
)
from memalpha.reward import aim_reward
from memalpha.tokens import TokenCounter

AIMED_TOOLS = ("memory_update", "memory_delete")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True, slots=True)
class ChunkAim:
    """One chunk's aim counts: changes it wanted, calls that aimed, calls that hit."""

    wanted: int
    aimed: int
    hits: int

    @property
    def r5(self) -> float:
        """The chunk's aim reward (`reward.aim_reward`)."""
        return aim_reward(self.hits, self.aimed, self.wanted)


def changes_of(instance: Instance) -> list[Superseded]:
    """Every change the instance's questions depend on, each once, in question order."""
    return list(dict.fromkeys(s for qa in instance.questions for s in qa.superseded))


def announces(chunk: str, change: Superseded) -> bool:
    """Whether one sentence of `chunk` names the change's subject and its new value."""
    subject, new = change.subject.casefold(), change.new.casefold()
    return any(subject in s and new in s for s in _SENTENCE_END.split(chunk.casefold()))


def announcing_chunks(instance: Instance) -> frozenset[int]:
    """Indices of the chunks that announce a change some question depends on: the chunks
    where a writer should update or delete (`ppo.train_chunks: changes` trains on these)."""
    changes = changes_of(instance)
    return frozenset(
        i for i, chunk in enumerate(instance.chunks) if any(announces(chunk, c) for c in changes)
    )


LISTS = (Component.SEMANTIC, Component.EPISODIC)


def _list_contents(memory: Memory) -> list[str]:
    """Every semantic and episodic entry's text (core is left out: it is not aimed at)."""
    return [e.content for c in LISTS if memory.config.enabled(c) for e in memory.entries(c)]


def _target(memory: Memory, result: ToolResult) -> tuple[str | None, str | None] | None:
    """(content the call's entry held, the update's new content) for an aimed call, or None
    for a call that does not aim. An unknown id or type holds nothing (a miss)."""
    args = result.call.arguments
    if result.call.name not in AIMED_TOOLS or not isinstance(args, dict):
        return None
    try:
        component = parse_component(str(args.get("memory_type", "")))
    except ValueError:
        return (None, None)
    if component is Component.CORE:
        return None
    try:
        held: str | None = memory.get(component, str(clean_entry_id(args.get("memory_id")))).content
    except MemoryOperationError:  # an unknown id, or a list this memory does not keep
        held = None
    new = args.get("new_content")
    return held, new if isinstance(new, str) else None


def _hit(held: str | None, new: str | None, name: str, open_changes: list[Superseded]):
    """The wanted change this call resolves, if any."""
    if held is None:
        return None
    for change in open_changes:
        if change.fate([held]) != "old":
            continue
        if name == "memory_delete" or (new is not None and change.fate([new]) == "overwritten"):
            return change
    return None


def wanted_changes(instance: Instance, index: int, memory: Memory) -> list[Superseded]:
    """The changes chunk `index` of `instance` wants of `memory` as it stands before the
    chunk: those the chunk announces whose old value some list entry still states."""
    before = _list_contents(memory)
    chunk = instance.chunks[index]
    return [
        c for c in changes_of(instance) if announces(chunk, c) and c.fate(before) in ("both", "old")
    ]


def chunk_aim(
    memory: Memory,
    wanted: list[Superseded],
    results: list[ToolResult],
    executor: ToolExecutor,
    deletes_need_new: bool = False,
) -> ChunkAim:
    """One chunk's aim counts, replaying its calls (`results`) on `memory`, which must be the
    memory as the chunk began and is left as the chunk ended; `wanted` as `wanted_changes`;
    `deletes_need_new` as the module doc says."""
    open_changes = list(wanted)
    aimed, hits = 0, 0
    deleted: list[Superseded] = []  # changes a delete hit, to check against the chunk's end
    for result in results:
        target = _target(memory, result)
        if target is not None:
            aimed += 1
            if (change := _hit(*target, result.call.name, open_changes)) is not None:
                open_changes.remove(change)
                if deletes_need_new and result.call.name == "memory_delete":
                    deleted.append(change)
                else:
                    hits += 1
        executor.execute(memory, result.call)
    if deleted:
        after = _list_contents(memory)
        hits += sum(change.fate(after) in ("overwritten", "both") for change in deleted)
    return ChunkAim(len(wanted), aimed, hits)


def episode_aim(
    instance: Instance,
    calls: list[list[ToolResult]],
    config: MemoryConfig,
    counter: TokenCounter,
    deletes_need_new: bool = False,
) -> list[ChunkAim]:
    """Each chunk's aim counts, by replaying `calls` (each chunk's, as executed) on an empty
    memory configured as the episode's was; `deletes_need_new` as the module doc says.

    Raises:
        ValueError: `calls` does not have one list per chunk of `instance`.
    """
    if len(calls) != len(instance.chunks):
        raise ValueError(f"{len(calls)} chunks of calls for {len(instance.chunks)} chunks")
    memory = Memory(config, counter)
    executor = ToolExecutor(ToolRegistry(config.disabled))
    return [
        chunk_aim(memory, wanted_changes(instance, i, memory), results, executor, deletes_need_new)
        for i, results in enumerate(calls)
    ]
