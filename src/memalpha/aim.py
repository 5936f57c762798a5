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

Keep (r6, `reward.keep_weight`) scores what a chunk's calls leave stated. A *fact* is a subject
and a value the questions depend on: each change's old value (due from the chunk that first
states it until the chunk that changes it), its new value (due from then on), and a bridge
answer such as the city of the company someone now works at. A list entry *states* a fact when
it names both. A chunk's keep is the share of the facts it must account for that memory states
as it ends: those first due at the chunk and those due that memory stated as it began. It
charges a response that deletes or rewrites away what memory held, and one that stores nothing
of a chunk that brings facts; r5 alone scores neither at a chunk that wants no change.

A wanted change is *resolved* when, as the chunk ends, memory holds it overwritten: some list
entry states the new value and none the old (`Superseded.fate`). Under `aim_misses: fate` r5
at a change chunk is the share resolved, whichever calls did it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from memalpha.data import Fate, Instance, Superseded
from memalpha.errors import MemoryOperationError
from memalpha.memory import (
    Component,
    Memory,
    MemoryConfig,
    ToolCall,
    ToolExecutor,
    ToolRegistry,
    ToolResult,
    clean_entry_id,
    parse_component,
)
from memalpha.reward import RewardConfig, aim_reward
from memalpha.tokens import TokenCounter

AIMED_TOOLS = ("memory_update", "memory_delete")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True, slots=True)
class ChunkAim:
    """One chunk's aim counts: changes it wanted, calls that aimed, calls that hit, wanted
    changes memory holds overwritten as it ends (`resolved`); and its keep counts: facts it
    had to account for, and those memory states as it ends."""

    wanted: int
    aimed: int
    hits: int
    due: int = 0
    kept: int = 0
    resolved: int = 0

    @property
    def r5(self) -> float:
        """The chunk's aim reward (`reward.aim_reward`), quiet chunks restrained, misses charged."""
        return aim_reward(self.hits, self.aimed, self.wanted)

    def aim_score(self, reward: RewardConfig) -> float:
        """r5 as `reward` asks for it (`aim_quiet`, `aim_misses`): the one place that reads
        them, so the trainer's branch groups and the episode scoring cannot disagree."""
        return aim_reward(
            self.hits, self.aimed, self.wanted, reward.aim_quiet, reward.aim_misses, self.resolved
        )

    @property
    def r6(self) -> float:
        """The chunk's keep reward: kept / due, 1 for a chunk with no fact to account for."""
        return self.kept / self.due if self.due else 1.0

    def keep_score(self, reward: RewardConfig) -> float:
        """r6 as `reward.keep_charge` asks for it: the share kept, or 1 less one point for
        each fact left unstated (negative when two or more are)."""
        return self.r6 if reward.keep_charge == "share" else 1.0 - (self.due - self.kept)


@dataclass(frozen=True, slots=True)
class Fact:
    """A subject and a value memory should state from chunk `start` until chunk `end`
    (None: to the input's end); see the module doc."""

    subject: str
    value: str
    start: int
    end: int | None = None

    def due_at(self, index: int) -> bool:
        """Whether memory should state the fact as chunk `index` ends."""
        return self.start <= index and (self.end is None or index < self.end)

    def stated(self, contents: list[str]) -> bool:
        """Whether some entry names both the subject and the value (case-insensitive)."""
        subject, value = self.subject.casefold(), self.value.casefold()
        return any(subject in c.casefold() and value in c.casefold() for c in contents)


def changes_of(instance: Instance) -> list[Superseded]:
    """Every change the instance's questions depend on, each once, in question order."""
    return list(dict.fromkeys(s for qa in instance.questions for s in qa.superseded))


def announces(chunk: str, change: Superseded) -> bool:
    """Whether one sentence of `chunk` names the change's subject and its new value."""
    return _says(chunk, change.subject, change.new)


def _says(chunk: str, subject: str, value: str) -> bool:
    """Whether one sentence of `chunk` names `subject` and `value`."""
    subject, value = subject.casefold(), value.casefold()
    return any(subject in s and value in s for s in _SENTENCE_END.split(chunk.casefold()))


def _first_saying(instance: Instance, subject: str, value: str) -> int | None:
    """The first chunk of `instance` with a sentence naming `subject` and `value`."""
    return next((i for i, c in enumerate(instance.chunks) if _says(c, subject, value)), None)


def announced_at(instance: Instance, change: Superseded) -> int | None:
    """The first chunk that announces `change` (None: none does)."""
    return _first_saying(instance, change.subject, change.new)


def facts_of(instance: Instance) -> list[Fact]:
    """Every fact the instance's questions depend on (module doc), each once: a change whose
    old value no chunk states before the change gives only its new value; a value no chunk
    states gives no fact."""
    facts: dict[tuple[str, str], Fact] = {}
    for change in changes_of(instance):
        changed = _first_saying(instance, change.subject, change.new)
        if changed is None:
            continue
        facts[(change.subject, change.new)] = Fact(change.subject, change.new, changed)
        stated = _first_saying(instance, change.subject, change.old)
        if stated is not None and stated < changed:
            facts[(change.subject, change.old)] = Fact(change.subject, change.old, stated, changed)
    for qa in instance.questions:
        for change in qa.superseded:
            for answer in qa.answers:
                start = _first_saying(instance, change.new, answer)
                if answer.casefold() != change.new.casefold() and start is not None:
                    facts.setdefault((change.new, answer), Fact(change.new, answer, start))
    return list(facts.values())


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
    due: Sequence[Fact] = (),
    index: int = 0,
) -> ChunkAim:
    """One chunk's aim and keep counts, replaying its calls (`results`) on `memory`, which
    must be the memory as the chunk began and is left as the chunk ended; `wanted` as
    `wanted_changes`; `deletes_need_new` as the module doc says; `due`: the facts due at chunk
    `index` (`facts_of`, filtered by `Fact.due_at`)."""
    before = _list_contents(memory) if due else []
    accounted = [f for f in due if f.start == index or f.stated(before)]
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
    after = _list_contents(memory) if deleted or accounted or wanted else []
    hits += sum(change.fate(after) in ("overwritten", "both") for change in deleted)
    kept = sum(f.stated(after) for f in accounted)
    resolved = sum(change.fate(after) == "overwritten" for change in wanted)
    return ChunkAim(len(wanted), aimed, hits, len(accounted), kept, resolved)


def episode_aim(
    instance: Instance,
    calls: list[list[ToolResult]],
    config: MemoryConfig,
    counter: TokenCounter,
    deletes_need_new: bool = False,
) -> list[ChunkAim]:
    """Each chunk's aim and keep counts, by replaying `calls` (each chunk's, as executed) on
    an empty memory configured as the episode's was; `deletes_need_new` as the module doc says.

    Raises:
        ValueError: `calls` does not have one list per chunk of `instance`.
    """
    executor = _replayer(instance, calls, config)
    memory = Memory(config, counter)
    facts = facts_of(instance)
    return [
        chunk_aim(
            memory,
            wanted_changes(instance, i, memory),
            results,
            executor,
            deletes_need_new,
            [f for f in facts if f.due_at(i)],
            i,
        )
        for i, results in enumerate(calls)
    ]


def _replayer(instance: Instance, calls: list[list], config: MemoryConfig) -> ToolExecutor:
    """The executor to replay an episode's calls on a memory configured as its was.

    Raises:
        ValueError: `calls` does not have one list per chunk of `instance`.
    """
    if len(calls) != len(instance.chunks):
        raise ValueError(f"{len(calls)} chunks of calls for {len(instance.chunks)} chunks")
    return ToolExecutor(ToolRegistry(config.disabled))


@dataclass(frozen=True, slots=True)
class ChunkFates:
    """What memory held of each change (`changes_of` order) as one chunk ended, judged on every
    entry core included as the eval judges the final memory; and whether the chunk wanted a
    change as it began, i.e. formed a branch group under `ppo.branch_chunks: changes`."""

    fates: tuple[Fate, ...]
    grouped: bool


def episode_fates(
    instance: Instance,
    calls: list[list[ToolCall]],
    config: MemoryConfig,
    counter: TokenCounter,
    memory: Memory | None = None,
) -> list[ChunkFates]:
    """Each chunk's `ChunkFates`, by replaying `calls` (each chunk's, as made; an eval keeps
    them, `memalpha.eval.read_calls`) as `episode_aim` does, into `memory` when given (empty,
    configured as `config`; left as the episode ended). Why: a final memory cannot say
    whether the chunk that dropped a fact formed a branch group, i.e. whether any per-chunk
    reward could have charged it.

    Raises:
        ValueError: `calls` does not have one list per chunk of `instance`.
    """
    executor = _replayer(instance, calls, config)
    memory = Memory(config, counter) if memory is None else memory
    changes = changes_of(instance)
    out = []
    for index, results in enumerate(calls):
        grouped = bool(wanted_changes(instance, index, memory))
        for call in results:
            executor.execute(memory, call)
        contents = memory.contents()
        out.append(ChunkFates(tuple(c.fate(contents) for c in changes), grouped))
    return out


HELD: tuple[Fate, ...] = ("overwritten", "both")
PATH_CLASSES = (
    "held",
    "old: new never written",
    "old: new dropped",
    "lost: never stored",
    "lost: dropped before its change",
    "lost: dropped at its change",
    "lost: dropped after its change",
)


def path_class(path: Sequence[Fate], announced: int) -> tuple[str, int | None]:
    """Where a change's *path* (its fate after each chunk, `episode_fates`) ended, and the chunk
    that dropped what memory had held of it (None: none did). Ending overwritten or both,
    memory holds it. Ending old, the new value was never written, or written and dropped.
    Ending lost, memory never stated either value, or the last chunk that turned it lost came
    before, at or after `announced` (`announced_at`; len(path) when no chunk announces it)."""
    final = path[-1]
    if final in HELD:
        return "held", None
    had = HELD if final == "old" else (*HELD, "old")
    dropped = next((t for t in range(len(path) - 1, 0, -1) if path[t - 1] in had), None)
    if final == "old":
        return (
            ("old: new never written", None) if dropped is None else ("old: new dropped", dropped)
        )
    if dropped is None:  # no chunk ended with either value stated
        return "lost: never stored", None
    where = "before" if dropped < announced else "at" if dropped == announced else "after"
    return f"lost: dropped {where} its change", dropped
