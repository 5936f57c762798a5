"""The one reader every method is answered by.

A memory (memalpha, rule writer) goes to the memory reader as in training (BM25 top-k per list
plus core, the published QA prompt). A text context (the other methods) goes to the same LLM
with the same sampling and the same user message (the source's query prompt + the question),
the context in the system prompt, cut to the same prompt cap keeping its end. With the
extractive reader (CPU, no LLM), a text context is split into sentences that are answered the
way memory entries are.
"""

from __future__ import annotations

from importlib.resources import files

from memalpha.data import last_tokens, split_sentences
from memalpha.eval.methods import Recall
from memalpha.llm import GreedyMemo, Message, SamplingParams
from memalpha.memory import Component, Memory, MemoryConfig
from memalpha.reader import (
    Answer,
    Question,
    ReaderConfig,
    answer_prefix,
    begin_answer,
    build_reader,
    query_prompt,
    user_message,
)
from memalpha.tokens import TokenCounter

CONTEXT_QA = files("memalpha.eval").joinpath("prompts/context_qa.txt").read_text("utf-8")
_SENTENCES = MemoryConfig()  # a text context as a memory for the extractive reader (no caps)
Ask = tuple[Recall, list[str], str]  # a recall, the questions asked of it, their data source


class EvalReader:
    """Answers every method's recalls. Its LLM remembers greedy answers by prompt
    (`GreedyMemo`), so a question asked of a memory another writer also stored is answered
    once, and both writers get the same answer."""

    def __init__(self, cfg: ReaderConfig, counter: TokenCounter, max_new_tokens: int) -> None:
        self.cfg, self.counter = cfg, counter
        self.sampling = SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens)
        self.memory_reader, self.llm = build_reader(cfg, counter, GreedyMemo, self.sampling)

    def close(self) -> None:
        if self.llm is not None:
            self.llm.close()

    def answer(self, asks: list[Ask]) -> list[list[str]]:
        """The answers to each ask's questions, in order. The questions of all memories go to
        the reader in one call, and those of all text contexts in another, so an LLM reader
        fills its batches across instances."""
        prefixes = [query_prompt(src) for _, _, src in asks]
        asked = [
            Question(r.memory, q, prefix)
            for (r, qs, _), prefix in zip(asks, prefixes, strict=True)
            if r.memory is not None
            for q in qs
        ]
        prompts = [
            p
            for (r, qs, _), prefix in zip(asks, prefixes, strict=True)
            if r.memory is None and self.llm is not None
            for p in self._context_prompts(r, qs, prefix)
        ]
        from_memory = iter(self.memory_reader.answer(asked) if asked else [])
        from_context = iter(self.llm.generate(prompts, self.sampling) if prompts else [])
        out = []
        for (recall, qs, _), prefix in zip(asks, prefixes, strict=True):
            if recall.memory is not None:
                out.append([next(from_memory).text for _ in qs])
            elif self.llm is not None:
                begun = self._begun(prefix)
                out.append([(begun + next(from_context).text).strip() for _ in qs])
            else:
                assert recall.context is not None
                out.append([self._extract(recall.context(q), q, prefix).text for q in qs])
        return out

    def _begun(self, prefix: str) -> str:
        """How a text context's answer begins: as the memory reader begins it."""
        return answer_prefix(prefix) if self.cfg.answer_prefix else ""

    def _context_prompts(
        self, recall: Recall, questions: list[str], prefix: str
    ) -> list[list[Message]]:
        """The LLM prompt of each question over a text context, cut to the prompt cap."""
        assert recall.context is not None
        longest = max(self.counter.count_many(questions), default=0)
        budget = self.cfg.max_prompt_tokens - longest - 64
        begun = self._begun(prefix)
        return [
            begin_answer(
                [
                    {
                        "role": "system",
                        "content": CONTEXT_QA.format(
                            context=last_tokens(recall.context(q), budget, self.counter)
                        ),
                    },
                    {"role": "user", "content": user_message(prefix, q)},
                ],
                begun,
            )
            for q in questions
        ]

    def _extract(self, context: str, question: str, prefix: str) -> Answer:
        memory = Memory(_SENTENCES, self.counter)
        for sentence in dict.fromkeys(split_sentences(context)):  # exact repeats once
            memory.insert(Component.SEMANTIC, sentence)
        (answer,) = self.memory_reader.answer([Question(memory, question, prefix)])
        return answer
