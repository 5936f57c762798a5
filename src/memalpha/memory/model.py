"""The three-part memory: core paragraph, semantic and episodic lists, with exact semantics.

Ids are a component letter plus a counter (`s12`, `e7`) that only grows, so an id is never
reused, even after a delete. Every change is first offered to an optional journal (the SQLite
store); if the journal raises, the in-RAM memory is left unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice

from memalpha.errors import (
    ComponentDisabledError,
    DuplicateEntryError,
    InvalidOperationError,
    LimitExceededError,
    UnknownEntryError,
)
from memalpha.memory.config import LIST_COMPONENTS, Component, MemoryConfig
from memalpha.memory.content import content_problem
from memalpha.retrieval import IncrementalBM25
from memalpha.tokens import TokenCounter

CORE_TRUNCATION_MARKER = " [content exceeds {limit} tokens, truncated]"  # published, SPEC §1.2
ID_PREFIX = {Component.SEMANTIC: "s", Component.EPISODIC: "e"}
MAX_ID = 999_999_999  # entry numbers stay well inside SQLite's and JSON's integers


@dataclass(frozen=True, slots=True)
class Entry:
    """One semantic or episodic item (or the core paragraph, with id 'core')."""

    id: str
    content: str
    tokens: int


@dataclass(frozen=True, slots=True)
class Change:
    """One committed change, as the journal receives it.

    `op` is 'insert', 'update' or 'delete'; `entry` is the new entry (insert/update) or the
    removed one (delete); for core, `entry.id` is 'core' and delete leaves an empty paragraph.
    """

    op: str
    component: Component
    entry: Entry


@dataclass(frozen=True, slots=True)
class MemorySnapshot:
    """The whole state of a memory as plain data (for export, the store and tests)."""

    core: str
    semantic: tuple[Entry, ...]
    episodic: tuple[Entry, ...]
    next_ids: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ComponentStats:
    entries: int
    tokens: int


class Memory:
    """Core (one paragraph), semantic and episodic lists, changed only through operations.

    Args:
        config: enabled components and size caps.
        counter: the token counter that sizes every entry.
        journal: called with each `Change` before it is applied in RAM (e.g. a store write).
    """

    def __init__(
        self,
        config: MemoryConfig,
        counter: TokenCounter,
        *,
        journal: Callable[[Change], None] | None = None,
    ) -> None:
        self.config = config
        self.counter = counter
        self.journal = journal
        self._core = Entry("core", "", 0)
        self._lists: dict[Component, dict[str, Entry]] = {c: {} for c in LIST_COMPONENTS}
        self._by_content: dict[Component, dict[str, str]] = {c: {} for c in LIST_COMPONENTS}
        self._next: dict[Component, int] = {c: 1 for c in LIST_COMPONENTS}
        self._tokens = 0
        self._bm25: dict[Component, IncrementalBM25] = {}

    # ---------------------------------------------------------------- reading

    @property
    def core(self) -> str:
        return self._core.content

    @property
    def total_tokens(self) -> int:
        """Tokens of core plus every entry: the memory size of the compression reward (r3)."""
        return self._tokens

    def entries(self, component: Component) -> list[Entry]:
        """All entries of a list component, oldest first."""
        return list(self._lists[self._list(component)].values())

    def contents(self) -> list[str]:
        """Core (when set) and the content of every entry of the enabled lists: all the text
        a reader could be shown."""
        lists = [c for c in LIST_COMPONENTS if self.config.enabled(c)]
        core = [self.core] if self.core else []
        return core + [e.content for c in lists for e in self._lists[c].values()]

    def recent(self, component: Component, k: int) -> list[Entry]:
        """The `k` newest entries of a list component, oldest first (the published view)."""
        items = self._lists[self._list(component)]
        return list(islice(reversed(items.values()), k))[::-1] if k > 0 else []

    def count(self, component: Component) -> int:
        return len(self._lists[self._list(component)])

    def get(self, component: Component, entry_id: str) -> Entry:
        """The entry with this id.

        Raises:
            UnknownEntryError: no such id in that component.
        """
        if component is Component.CORE:
            return self._core
        try:
            return self._lists[self._list(component)][entry_id]
        except KeyError:
            raise self._unknown(component, entry_id) from None

    def search(self, component: Component, query: str, k: int) -> list[tuple[Entry, float]]:
        """The top-`k` entries of a list by BM25 against `query`, best first."""
        index = self._index(self._list(component))
        items = self._lists[component]
        return [(items[h.key], h.score) for h in index.search(query, k)]

    def stats(self) -> dict[Component, ComponentStats]:
        out = {}
        if self.config.enabled(Component.CORE):
            out[Component.CORE] = ComponentStats(int(bool(self.core)), self._core.tokens)
        for c in LIST_COMPONENTS:
            if self.config.enabled(c):
                items = self._lists[c].values()
                out[c] = ComponentStats(len(items), sum(e.tokens for e in items))
        return out

    def snapshot(self) -> MemorySnapshot:
        return MemorySnapshot(
            core=self.core,
            semantic=tuple(self._lists[Component.SEMANTIC].values()),
            episodic=tuple(self._lists[Component.EPISODIC].values()),
            next_ids={c.value: self._next[c] for c in LIST_COMPONENTS},
        )

    def copy(self) -> Memory:
        """An independent memory in the same state (same ids, no journal): the start of a
        branch that may be changed without touching this one."""
        twin = Memory(self.config, self.counter)
        twin.restore(self.snapshot())
        return twin

    # ---------------------------------------------------------------- writing

    def insert(self, component: Component, content: str) -> Entry:
        """Append a new entry with a fresh id.

        Raises:
            InvalidOperationError: core (update-only) or empty content.
            ComponentDisabledError, DuplicateEntryError, LimitExceededError.
        """
        if component is Component.CORE:
            raise InvalidOperationError(
                "core memory cannot be inserted into; use memory_update on core_memory"
            )
        component = self._list(component)
        self._require_content(content)
        existing = self._by_content[component].get(content)
        if existing is not None:
            raise DuplicateEntryError(component.value, existing)
        tokens = self.counter.count(content)
        self._check_entry_caps(tokens, added_entries=1, freed_tokens=0)
        entry = Entry(f"{ID_PREFIX[component]}{self._next[component]}", content, tokens)
        self._commit(Change("insert", component, entry))
        return entry

    def update(self, component: Component, content: str, entry_id: str | None = None) -> Entry:
        """Replace the core paragraph, or the content of entry `entry_id` (its id is kept).

        Raises:
            UnknownEntryError, ComponentDisabledError, LimitExceededError, InvalidOperationError.
        """
        self._require_content(content)
        if component is Component.CORE:
            self._enabled(component)
            content = self._fit_core(content)
            entry = Entry("core", content, self.counter.count(content))
            self._check_total(entry.tokens - self._core.tokens)
            self._commit(Change("update", component, entry))
            return entry
        old = self.get(component, self._require_id(component, entry_id))
        other = self._by_content[component].get(content)
        if other is not None and other != old.id:
            raise DuplicateEntryError(component.value, other)
        tokens = self.counter.count(content)
        self._check_entry_caps(tokens, added_entries=0, freed_tokens=old.tokens)
        entry = Entry(old.id, content, tokens)
        self._commit(Change("update", component, entry))
        return entry

    def delete(self, component: Component, entry_id: str | None = None) -> Entry:
        """Clear the core paragraph, or remove entry `entry_id`; returns what was removed.

        Raises:
            UnknownEntryError: the id is not in that component (the published code silently
                accepts this; here it is an error, counted as a failed call).
        """
        if component is Component.CORE:
            self._enabled(component)
            removed = self._core
        else:
            removed = self.get(component, self._require_id(component, entry_id))
        self._commit(Change("delete", component, removed))
        return removed

    def restore(self, snapshot: MemorySnapshot) -> None:
        """Load a snapshot into this (empty) memory without journaling; ids are kept as given."""
        if self._tokens or any(self._lists.values()):
            raise InvalidOperationError("restore() needs an empty memory")
        counts = self.counter.count_many(
            [snapshot.core] + [e.content for e in snapshot.semantic + snapshot.episodic]
        )
        self._core = Entry("core", snapshot.core, counts[0])
        self._tokens = counts[0]
        tokens = iter(counts[1:])
        for component, entries in (
            (Component.SEMANTIC, snapshot.semantic),
            (Component.EPISODIC, snapshot.episodic),
        ):
            for e in entries:
                self._apply(Change("insert", component, Entry(e.id, e.content, next(tokens))))
            self._next[component] = max(self._next[component], snapshot.next_ids.get(component, 1))

    # ---------------------------------------------------------------- internals

    def _commit(self, change: Change) -> None:
        if self.journal is not None:
            self.journal(change)
        self._apply(change)

    def _apply(self, change: Change) -> None:
        c, entry = change.component, change.entry
        if c is Component.CORE:
            new = entry if change.op == "update" else Entry("core", "", 0)
            self._tokens += new.tokens - self._core.tokens
            self._core = new
            return
        items, by_content, index = self._lists[c], self._by_content[c], self._bm25.get(c)
        if change.op != "insert":
            old = items.pop(entry.id) if change.op == "delete" else items[entry.id]
            if by_content.get(old.content) == old.id:  # imported memories may hold duplicates
                del by_content[old.content]
            self._tokens -= old.tokens
            if index is not None:
                index.remove(old.id)
        if change.op != "delete":
            items[entry.id] = entry
            by_content[entry.content] = entry.id
            self._tokens += entry.tokens
            if index is not None:
                index.add(entry.id, entry.content)
            number = int(entry.id[1:])
            self._next[c] = max(self._next[c], number + 1)

    def _index(self, component: Component) -> IncrementalBM25:
        """The component's BM25 index, built on first search and then kept up to date."""
        index = self._bm25.get(component)
        if index is None:
            index = self._bm25[component] = IncrementalBM25()
            index.add_many((e.id, e.content) for e in self._lists[component].values())
        return index

    def _list(self, component: Component) -> Component:
        component = Component(component)
        self._enabled(component)
        if component is Component.CORE:
            raise InvalidOperationError("core memory is a single paragraph, not a list")
        return component

    def _enabled(self, component: Component) -> None:
        if not self.config.enabled(component):
            raise ComponentDisabledError(component.value)

    def _unknown(self, component: Component, entry_id: str) -> UnknownEntryError:
        ids = list(self._lists[component])
        known = ", ".join(ids) if len(ids) <= 6 else f"{ids[0]} … {ids[-1]}, {len(ids)} ids"
        return UnknownEntryError(component.value, entry_id, known=known)

    @staticmethod
    def _require_content(content: str) -> None:
        problem = content_problem(content)
        if problem is not None:
            raise InvalidOperationError(f"{problem}; give the text to store")

    @staticmethod
    def _require_id(component: Component, entry_id: str | None) -> str:
        if not entry_id:
            raise InvalidOperationError(f"memory_id is required for {component.value} memory")
        return entry_id

    def _fit_core(self, content: str) -> str:
        """Apply the core cap: truncate word by word with the published marker, or refuse."""
        limit = self.config.core_max_tokens
        tokens = self.counter.count(content)
        if tokens <= limit:
            return content
        if self.config.core_overflow == "error":
            raise LimitExceededError(
                f"core memory is {tokens} tokens, over its {limit}-token cap; write a shorter "
                "paragraph",
                limit=limit,
                actual=tokens,
            )
        marker = CORE_TRUNCATION_MARKER.format(limit=limit)
        budget = limit - self.counter.count(marker)
        words = content.split(" ")
        lo, hi = 0, len(words)  # longest word prefix within budget, by binary search
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.counter.count(" ".join(words[:mid])) <= budget:
                lo = mid
            else:
                hi = mid - 1
        return " ".join(words[:lo]) + marker

    def _check_entry_caps(self, tokens: int, *, added_entries: int, freed_tokens: int) -> None:
        cfg = self.config
        if cfg.max_entry_tokens is not None and tokens > cfg.max_entry_tokens:
            raise LimitExceededError(
                f"entry is {tokens} tokens, over the {cfg.max_entry_tokens}-token entry cap; "
                "split it or shorten it",
                limit=cfg.max_entry_tokens,
                actual=tokens,
            )
        n = sum(len(v) for v in self._lists.values()) + added_entries
        if cfg.max_entries is not None and n > cfg.max_entries:
            raise LimitExceededError(
                f"memory holds {cfg.max_entries} entries, its cap; delete or merge entries first",
                limit=cfg.max_entries,
                actual=n,
            )
        self._check_total(tokens - freed_tokens)

    def _check_total(self, delta: int) -> None:
        cap = self.config.max_total_tokens
        if cap is not None and self._tokens + delta > cap:
            raise LimitExceededError(
                f"memory would be {self._tokens + delta} tokens, over its {cap}-token cap; "
                "delete or shorten entries first",
                limit=cap,
                actual=self._tokens + delta,
            )
