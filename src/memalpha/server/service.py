"""The memory service behind the HTTP layer: sessions in one SQLite store, a writer, a reader.

Concurrency. Requests run in worker threads. Each session has a lock, so its writes are
serialised in arrival order; different sessions proceed in parallel and meet only in the
generation batcher (where that is the point) and in the store lock, held for single SQLite
transactions. A memory stays in RAM between requests; every change reaches SQLite (its own
transaction, through the memory's journal) before the memory in RAM changes and before the
request is acknowledged, so an acknowledged write survives a crash of the process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from memalpha.agent import RuleWriterLLM, build_agent
from memalpha.errors import ConfigError, DataError, SessionNotFoundError
from memalpha.llm import FORMATS, LLM, ModelConfig, make_llm
from memalpha.memory import (
    Change,
    Component,
    Entry,
    HistoryRecord,
    Memory,
    MemorySnapshot,
    SessionInfo,
    SqliteStore,
    ToolCall,
    ToolResult,
    check_limits,
    snapshot_from_dict,
    snapshot_to_dict,
)
from memalpha.reader import Answer, Question, build_judge, build_reader, query_prompt
from memalpha.server.batching import BatchingLLM
from memalpha.server.config import ServerConfig
from memalpha.tokens import make_token_counter

T = TypeVar("T")


class _Journal:
    """A session memory's journal: each change is written to the store before the memory in
    RAM changes, or, inside `staged()`, collected and written in one transaction at its end
    (a memorize request is all or nothing)."""

    def __init__(self, name: str, store: SqliteStore, lock: threading.RLock) -> None:
        self.name, self.store, self.lock = name, store, lock
        self.pending: list[Change] | None = None

    def __call__(self, change: Change) -> None:
        if self.pending is not None:
            self.pending.append(change)
            return
        with self.lock:
            self.store.apply(self.name, change, "crud")

    @contextmanager
    def staged(self) -> Iterator[None]:
        self.pending = []
        try:
            yield
            with self.lock:
                self.store.apply_many(self.name, self.pending, "writer")
        finally:
            self.pending = None


class MemoryService:
    """Sessions, memorize, ask, entry CRUD, export/import, batch QA and judging."""

    def __init__(self, cfg: ServerConfig, *, writer_llm: LLM | None = None) -> None:
        self.cfg = cfg
        self.writer = cfg.writer.effective  # how it writes, and the memory sessions hold
        self.counter = make_token_counter(self.writer.memory.tokenizer)
        self.store = SqliteStore(cfg.store)
        self._store_lock = threading.RLock()
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._memories: dict[str, Memory] = {}
        self._journals: dict[str, _Journal] = {}  # each cached memory's journal
        w = cfg.writer

        # every model (writer, reader, judge) serves all sessions through one batcher
        def batched(llm: LLM) -> LLM:
            return BatchingLLM(llm, w.batch_window_ms, w.max_batch, cfg.backend_timeout_s)

        if writer_llm is None:
            if w.kind == "rule":
                writer_llm = RuleWriterLLM(FORMATS[self.writer.format])
            else:
                assert w.model is not None  # checked by WriterConfig
                writer_llm = make_llm(self._bounded(w.model))
        # the rule writer needs no batching
        self.writer_llm: LLM = (
            writer_llm if isinstance(writer_llm, RuleWriterLLM) else batched(writer_llm)
        )
        self.sampling = self.writer.sampling(w.temperature)
        self.agent = build_agent(self.writer, self.counter)
        self.executor = self.agent.executor  # CRUD calls go through the writer's executor
        reader_cfg = cfg.reader.model_copy(update={"model": self._bounded(cfg.reader.model)})
        judge_cfg = cfg.judge.model_copy(update={"model": self._bounded(cfg.judge.model)})
        self.reader, self._reader_llm = build_reader(reader_cfg, self.counter, batched)
        self.judge, self._judge_llm = build_judge(judge_cfg, batched)

    def _bounded(self, model: ModelConfig | None) -> ModelConfig | None:
        """A served model never works on past the deadline its client was given: retries of
        a call whose client already got a 504 would only delay the others."""
        if model is None:
            return None
        deadline = min(model.deadline_s, self.cfg.backend_timeout_s)
        return model.model_copy(update={"deadline_s": deadline})

    def health(self) -> dict[str, str | None]:
        """Each model backend: None when it answers, else why not (a call stuck past the
        deadline, or a server that does not answer a probe)."""
        named = {"writer": self.writer_llm, "reader": self._reader_llm, "judge": self._judge_llm}
        return {
            role: llm.health() if hasattr(llm, "health") else None
            for role, llm in named.items()
            if llm is not None
        }

    def close(self) -> None:
        for llm in (self.writer_llm, self._reader_llm, self._judge_llm):
            if llm is not None:
                llm.close()
        with self._store_lock:
            self.store.close()

    # ------------------------------------------------------------- plumbing

    def _locked_store(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self._store_lock:
            return fn(*args, **kwargs)

    def _lock(self, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(name, threading.Lock())

    def _forget(self, name: str) -> None:
        """Drop a session's memory from RAM; the next use reloads it from the store."""
        self._memories.pop(name, None)
        self._journals.pop(name, None)

    @contextmanager
    def _session(self, name: str) -> Iterator[Memory]:
        """The session's memory, its lock held: one writer at a time per session."""
        with self._lock(name):
            memory = self._memories.get(name)
            if memory is None:
                snapshot = self._locked_store(self.store.read, name)
                journal = self._journals[name] = _Journal(name, self.store, self._store_lock)
                memory = Memory(self.writer.memory, self.counter, journal=journal)
                memory.restore(snapshot)
                self._memories[name] = memory
            yield memory

    # ------------------------------------------------------------- sessions

    def create_session(self, name: str) -> None:
        """Raises: SessionExistsError."""
        self._locked_store(self.store.create_session, name)

    def sessions(self) -> list[SessionInfo]:
        return self._locked_store(self.store.sessions)

    def delete_session(self, name: str) -> None:
        with self._session(name):
            self._locked_store(self.store.delete_session, name)
            self._forget(name)

    def require(self, name: str) -> None:
        with self._store_lock:
            if not self.store.has_session(name):
                raise SessionNotFoundError(name)

    # ------------------------------------------------------------- memory work

    def memorize(self, name: str, chunks: list[str]) -> list[list[ToolResult]]:
        """Run the writer over the chunks in order; each chunk's calls (each with the change
        it made). All or nothing: the changes reach the store in one transaction when every
        chunk is done; if anything fails on the way, the store is untouched and the memory
        in RAM is dropped, to be reloaded from the store."""
        self.require(name)
        out = []
        with self._session(name) as memory:
            try:
                with self._journals[name].staged():
                    for index, chunk in enumerate(chunks):
                        (step,) = self.agent.step(
                            self.writer_llm, self.sampling, [memory], [chunk], index
                        )
                        out.append(step.results)
            except BaseException:
                self._forget(name)  # RAM holds changes the store never got
                raise
        return out

    def ask(self, name: str, questions: list[str], data_source: str = "") -> list[Answer]:
        self.require(name)
        with self._session(name) as memory:
            prefix = query_prompt(data_source)
            return self.reader.answer([Question(memory, q, prefix) for q in questions])

    def execute(self, name: str, call: ToolCall) -> ToolResult:
        """One memory call through the same executor the writer's calls go through; the
        result holds the change it committed."""
        self.require(name)
        with self._session(name) as memory:
            return self.executor.execute(memory, call)

    def search(
        self, name: str, query: str, k: int, components: list[Component]
    ) -> list[tuple[Component, Entry, float]]:
        """The k entries of the given lists that BM25 ranks highest for `query` (no LLM)."""
        self.require(name)
        with self._session(name) as memory:
            hits = [
                (c, entry, score) for c in components for entry, score in memory.search(c, query, k)
            ]
        return sorted(hits, key=lambda h: -h[2])[:k]

    def history(self, name: str, entry_id: str | None = None) -> list[HistoryRecord]:
        """Every operation applied to the session, in order (one entry's, if given)."""
        with self._store_lock:
            return self.store.history(name, entry_id)

    def snapshot(self, name: str) -> dict[str, Any]:
        self.require(name)
        with self._session(name) as memory:
            return {
                **snapshot_to_dict(memory.snapshot()),
                "tokens": memory.total_tokens,
            }

    def _untrusted(self, data: Any, source: str) -> MemorySnapshot:
        """A memory from a request body, held to what a tool call could have written: valid
        ids and content, the memory's caps, and the per-entry size limit of requests.

        Raises:
            DataError: anything else.
        """
        snapshot = snapshot_from_dict(data, source=source)
        check_limits(snapshot, self.writer.memory, self.counter, source=source)
        most = self.cfg.limits.max_content_chars
        for e in snapshot.semantic + snapshot.episodic:
            if len(e.content) > most:
                raise DataError(f"entry {e.id}: {len(e.content)} characters > {most}", path=source)
        return snapshot

    def import_memory(self, name: str, data: Any, *, replace: bool) -> None:
        """Raises: DataError (malformed memory), SessionExistsError (and not `replace`)."""
        snapshot = self._untrusted(data, f"import into '{name}'")
        with self._lock(name):
            self._locked_store(self.store.write, name, snapshot, replace=replace)
            self._forget(name)

    # ------------------------------------------------------------- reward endpoints

    def answer_batch(self, items: list[tuple[dict[str, Any], str, str]]) -> list[Answer]:
        """Questions over given memories (the training reward's r1 on a separate service)."""
        questions = []
        for data, text, source in items:
            memory = Memory(self.writer.memory, self.counter)
            memory.restore(self._untrusted(data, "batch QA memory"))
            questions.append(Question(memory, text, query_prompt(source)))
        return self.reader.answer(questions)

    def judge_batch(self, writes: list[tuple[str, str]]) -> list[float]:
        if self.judge is None:
            raise ConfigError("this server has no content judge (judge.kind: none)")
        return self.judge.judge(writes)
