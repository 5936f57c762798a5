"""The fixed reader: answers a question from a memory alone (MEMALPHA_SPEC §3.1).

Core in full, plus the BM25 top-k semantic and top-k episodic entries for the question; the
published QA system prompt; k shrinks one at a time while the prompt is over its token cap.
Differences from the published server, on purpose: temperature 0 by default, the BM25
query is the question without its instruction prefix (`query_prompt`), and where that prefix
asks for the answer as `\\boxed{label}` the answer is begun with `\\boxed{` for the reader
(`Question.answer_prefix`; `answer_prefix=False` turns it off): the 0.5B Qwen reader rarely
writes the box on its own, scoring 0.017 on TREC-coarse, and 0.483 with the answer begun for it
(benchmarks/RESULTS.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from types import MappingProxyType

import yaml

from memalpha.llm import LLM, Message, SamplingParams
from memalpha.memory import Component, Entry, Memory

LISTS = (Component.SEMANTIC, Component.EPISODIC)
QA_TEMPLATE = files("memalpha.reader").joinpath("prompts/qa_system.txt").read_text("utf-8")
# read once at import (looked up for every question); read-only
QUERY_PROMPTS = MappingProxyType(
    yaml.safe_load(
        files("memalpha.reader").joinpath("prompts/query_prompts.yaml").read_text("utf-8")
    )
)


BOXED = "\\boxed{"


@dataclass(frozen=True, slots=True)
class Question:
    """One question to one memory; `query_prompt` is the source's instruction prefix."""

    memory: Memory
    text: str
    query_prompt: str = ""

    @property
    def user_message(self) -> str:
        return user_message(self.query_prompt, self.text)

    @property
    def answer_prefix(self) -> str:
        return answer_prefix(self.query_prompt)


def answer_prefix(query_prompt: str) -> str:
    """How an answer to a question with this instruction prefix is begun for the reader:
    `\\boxed{` where the instruction asks for a boxed label (the classification sources)."""
    return BOXED if BOXED in query_prompt else ""


def user_message(query_prompt: str, question: str) -> str:
    """The reader's user turn: the source's instruction prefix, then the question."""
    return f"{query_prompt}\n\n{question}" if query_prompt else question


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    evidence: list[Entry]


def query_prompt(data_source: str) -> str:
    """The published instruction prefix for a data source ('' when it has none)."""
    kind = QUERY_PROMPTS["sources"].get(data_source)
    if kind is None and data_source.startswith("icl_"):
        kind = "classification_with_examples"
    return QUERY_PROMPTS[kind] if kind else ""


def begin_answer(messages: list[Message], begun: str) -> list[Message]:
    """`messages` with `begun` as an assistant turn the reader continues ('' adds none)."""
    return [*messages, {"role": "assistant", "content": begun}] if begun else messages


def retrieve(question: Question, k: int) -> dict[Component, list[Entry]]:
    """Top-k entries per list by BM25 against the bare question (no instruction prefix)."""
    memory = question.memory
    return {
        c: [e for e, _ in memory.search(c, question.text, k)] if memory.config.enabled(c) else []
        for c in LISTS
    }


def qa_system_prompt(core: str, retrieved: dict[Component, list[Entry]]) -> str:
    """The published QA prompt; entries are numbered, ids are not shown."""

    def block(entries: list[Entry]) -> str:
        return (
            "\n".join(f"{i}. {e.content}" for i, e in enumerate(entries, 1))
            or "(No memories stored)"
        )

    return QA_TEMPLATE.format(
        core_line="- Core Memory: Fundamental facts about the user (preferences, roles, goals, "
        "etc.)\n"
        if core
        else "",
        core_block=f"<core_memory>\n{core}\n</core_memory>\n\n" if core else "",
        semantic=block(retrieved[Component.SEMANTIC]),
        episodic=block(retrieved[Component.EPISODIC]),
    )


class RagReader:
    """Answers questions from memories with an LLM, all questions in one batched call.

    Args:
        llm: the reader model (published: Qwen3-32B; here any backend).
        count: token counter for the prompt cap.
        k: entries per list (published 20).
        max_prompt_tokens: prompt cap (published 30,000); k shrinks until it fits.
        sampling: published eval uses T=0.7; memalpha defaults to greedy.
        answer_prefix: begin each answer with its question's `answer_prefix` (an assistant
            turn the reader continues; the returned text includes it).
    """

    def __init__(
        self,
        llm: LLM,
        count: Callable[[str], int],
        *,
        k: int = 20,
        max_prompt_tokens: int = 30_000,
        sampling: SamplingParams | None = None,
        answer_prefix: bool = True,
    ):
        self.llm, self.count, self.k = llm, count, k
        self.answer_prefix = answer_prefix
        self.max_prompt_tokens = max_prompt_tokens
        self.sampling = sampling or SamplingParams(temperature=0.0, max_new_tokens=128)

    def prompt(self, question: Question) -> tuple[list[Message], list[Entry]]:
        retrieved = retrieve(question, self.k)
        for k in range(self.k, -1, -1):
            shown = {c: es[:k] for c, es in retrieved.items()}
            system = qa_system_prompt(question.memory.core, shown)
            if (
                k == 0
                or self.count(system) + self.count(question.user_message) <= self.max_prompt_tokens
            ):
                break
        messages = [
            {"role": "system", "content": system},
            {"role": "user", "content": question.user_message},
        ]
        return begin_answer(messages, self.begun(question)), [e for c in LISTS for e in shown[c]]

    def begun(self, question: Question) -> str:
        """The text this reader begins `question`'s answer with ('' for none)."""
        return question.answer_prefix if self.answer_prefix else ""

    def answer(self, questions: list[Question]) -> list[Answer]:
        prompts = [self.prompt(q) for q in questions]
        generations = self.llm.generate([m for m, _ in prompts], self.sampling)
        return [
            Answer((self.begun(q) + g.text).strip(), ev)
            for q, g, (_, ev) in zip(questions, generations, prompts, strict=True)
        ]
