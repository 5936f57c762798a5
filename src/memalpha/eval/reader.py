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
from memalpha.llm import SamplingParams
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


class EvalReader:
    def __init__(self, cfg: ReaderConfig, counter: TokenCounter, max_new_tokens: int) -> None:
        self.cfg, self.counter = cfg, counter
        self.sampling = SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens)
        self.memory_reader, self.llm = build_reader(cfg, counter, sampling=self.sampling)

    def close(self) -> None:
        if self.llm is not None:
            self.llm.close()

    def answer(self, recall: Recall, questions: list[str], data_source: str) -> list[str]:
        prefix = query_prompt(data_source)
        if recall.memory is not None:
            asked = [Question(recall.memory, q, prefix) for q in questions]
            return [a.text for a in self.memory_reader.answer(asked)]
        assert recall.context is not None
        contexts = [recall.context(q) for q in questions]
        if self.llm is None:
            return [
                self._extract(c, q, prefix).text for c, q in zip(contexts, questions, strict=True)
            ]
        budget = self.cfg.max_prompt_tokens - max(self.counter.count_many(questions)) - 64
        begun = answer_prefix(prefix) if self.cfg.answer_prefix else ""  # as the memory reader
        prompts = [
            begin_answer(
                [
                    {
                        "role": "system",
                        "content": CONTEXT_QA.format(context=last_tokens(c, budget, self.counter)),
                    },
                    {"role": "user", "content": user_message(prefix, q)},
                ],
                begun,
            )
            for c, q in zip(contexts, questions, strict=True)
        ]
        return [(begun + g.text).strip() for g in self.llm.generate(prompts, self.sampling)]

    def _extract(self, context: str, question: str, prefix: str) -> Answer:
        memory = Memory(_SENTENCES, self.counter)
        for sentence in dict.fromkeys(split_sentences(context)):  # exact repeats once
            memory.insert(Component.SEMANTIC, sentence)
        (answer,) = self.memory_reader.answer([Question(memory, question, prefix)])
        return answer
