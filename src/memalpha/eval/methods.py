"""The memory methods compared by `memalpha eval`, behind one interface: `recall(instance)`
memorizes the chunks and returns what the reader will see — a three-part `Memory` (memalpha,
the rule writer) or a text context per question (long context, BM25 RAG over raw chunks,
MemAgent's overwrite memory, MEM1's running summary) — and its size in tokens.

Every method is answered by the same reader (`memalpha.eval.reader`) with the same sampling and
scored with the same metric, so differences are the methods' own (MEMALPHA_SPEC §6 lists the
published baselines and their inconsistencies, which this does not repeat).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files

from memalpha.agent import Episode, RuleWriterLLM, build_agent
from memalpha.data import Instance, last_tokens
from memalpha.errors import ConfigError
from memalpha.eval.config import MethodConfig
from memalpha.llm import FORMATS, LLM, SamplingParams, make_llm
from memalpha.memory import Memory
from memalpha.retrieval import IncrementalBM25
from memalpha.tokens import TokenCounter, make_token_counter

TASK = (
    "I will provide you with sequential information chunks. Memorize what may be needed to "
    "answer questions about them later."
)
_THINK = re.compile(r"<think>(.*?)(?:</think>|$)", re.S)


def _prompt(name: str) -> str:
    return files("memalpha.eval").joinpath(f"prompts/{name}").read_text("utf-8")


@dataclass(slots=True)
class Recall:
    """What a method kept of one instance."""

    memory_tokens: int
    memory: Memory | None = None  # memory methods
    episode: Episode | None = None  # a writer's calls, chunk by chunk (memalpha.aim.episode_fates)
    context: Callable[[str], str] | None = None  # text methods: question → context shown


class Method:
    """Base: `recall` one instance (or several: `recall_many`); `close` frees models."""

    def __init__(self, cfg: MethodConfig, counter: TokenCounter) -> None:
        self.cfg, self.counter = cfg, counter
        self.llm: LLM | None = None

    def recall(self, instance: Instance) -> Recall:
        raise NotImplementedError

    def recall_many(self, instances: list[Instance]) -> list[Recall]:
        """One recall per instance; methods that can batch their model calls override this."""
        return [self.recall(i) for i in instances]

    def close(self) -> None:
        if self.llm is not None:
            self.llm.close()


class WriterMethod(Method):
    """memalpha (an LLM policy) or the rule-based writer: the memory agent, greedy, writing
    as the method's `writer` says (for a trained policy: as it was trained). Its memory counts
    tokens with the writer's own tokenizer (`memory.tokenizer`), as in training: caps, view
    budget and the memory size reported."""

    def __init__(self, cfg: MethodConfig, counter: TokenCounter) -> None:
        self.writer = cfg.writer
        super().__init__(cfg, make_token_counter(self.writer.memory.tokenizer))
        if cfg.kind == "memalpha":
            assert cfg.policy is not None  # checked by MethodConfig
            self.llm = make_llm(cfg.policy)
        self.author: LLM = self.llm or RuleWriterLLM(
            FORMATS[self.writer.format], selective=cfg.selective
        )
        self.agent = build_agent(self.writer, self.counter)

    def recall(self, instance: Instance) -> Recall:
        return self.recall_many([instance])[0]

    def recall_many(self, instances: list[Instance]) -> list[Recall]:
        """All instances in lock-step: one batched generation per chunk index."""
        memories = [Memory(self.writer.memory, self.counter) for _ in instances]
        episodes = self.agent.memorize_many(
            self.author, self.writer.sampling(), memories, [i.chunks for i in instances]
        )
        return [
            Recall(m.total_tokens, memory=m, episode=e)
            for m, e in zip(memories, episodes, strict=True)
        ]


class LongContext(Method):
    """All chunks, cut to the last `window_tokens` (the beginning is lost, as published)."""

    def recall(self, instance: Instance) -> Recall:
        text = last_tokens("\n\n".join(instance.chunks), self.cfg.window_tokens, self.counter)
        return Recall(self.counter.count(text), context=lambda _q: text)


class RagTopK(Method):
    """BM25 over the raw chunks; the top-k chunks (in input order) are the context."""

    def recall(self, instance: Instance) -> Recall:
        index = IncrementalBM25()
        index.add_many(enumerate(instance.chunks))

        def context(question: str) -> str:
            keys = sorted(h.key for h in index.search(question, self.cfg.k))
            return "\n\n".join(instance.chunks[k] for k in keys)

        return Recall(sum(self.counter.count_many(instance.chunks)), context=context)


class Recurrent(Method):
    """MemAgent (overwrite a fixed-size memory per chunk) and MEM1 (rewrite one running
    summary, kept from its last <think> block). The memory is built without the questions."""

    def __init__(self, cfg: MethodConfig, counter: TokenCounter, shared: LLM | None) -> None:
        super().__init__(cfg, counter)
        if cfg.model is not None:
            self.llm = make_llm(cfg.model)  # its own: closed with the method
        elif shared is None:
            raise ConfigError(
                f"method '{cfg.name}' ({cfg.kind}) needs a model: set its `model` or use an "
                "LLM reader (reader.kind: rag) whose model it can share"
            )
        self.model: LLM = self.llm or shared  # type: ignore[assignment]
        self.template = _prompt("memagent.txt" if cfg.kind == "memagent" else "mem1.txt")
        self.sampling = SamplingParams(temperature=0.0, max_new_tokens=cfg.memory_tokens)

    def recall(self, instance: Instance) -> Recall:
        memory = "No previous memory"
        for chunk in instance.chunks:
            prompt = self.template.format(problem=TASK, memory=memory, chunk=chunk)
            (gen,) = self.model.generate([[{"role": "user", "content": prompt}]], self.sampling)
            memory = self._parse(gen.text) or memory
        return Recall(self.counter.count(memory), context=lambda _q: memory)

    def _parse(self, text: str) -> str:
        if self.cfg.kind == "mem1":
            blocks = _THINK.findall(text)
            text = blocks[-1] if blocks else text
        return text.strip()


def make_method(cfg: MethodConfig, counter: TokenCounter, reader_llm: LLM | None) -> Method:
    """The method of `cfg`; memagent/mem1 without a model of their own share the reader's."""
    if cfg.kind in ("memalpha", "rule-writer"):
        return WriterMethod(cfg, counter)
    if cfg.kind == "long-context":
        return LongContext(cfg, counter)
    if cfg.kind == "rag-topk":
        return RagTopK(cfg, counter)
    return Recurrent(cfg, counter, reader_llm)
