"""An LLM-free reader: the same retrieval as the RAG reader, and as the answer the retrieved
sentence that best matches the question, cut to a fixed number of words so that long entries
gain nothing. A retrieved `Label: n` is answered as `\\boxed{n}` when the question asks for a
boxed label. On a 2-core CPU it gives a faster, cleaner r1 signal than a 135M generator.
"""

from __future__ import annotations

import re

from memalpha.data import split_sentences
from memalpha.reader.rag import Answer, Question, retrieve
from memalpha.retrieval import tokenize

_LABEL = re.compile(r"Label:\s*(\d+)")


class ExtractiveReader:
    """Answers with the best-overlapping retrieved sentence (at most `max_words` words)."""

    def __init__(self, *, k: int = 20, max_words: int = 24) -> None:
        self.k, self.max_words = k, max_words

    def answer(self, questions: list[Question]) -> list[Answer]:
        return [self._one(q) for q in questions]

    def _one(self, question: Question) -> Answer:
        retrieved = retrieve(question, self.k)
        evidence = [e for entries in retrieved.values() for e in entries]
        if "\\boxed" in question.query_prompt + question.text:
            for entry in evidence:  # BM25 order: the most similar labelled example first
                if m := _LABEL.search(entry.content):
                    return Answer(f"\\boxed{{{m.group(1)}}}", evidence)
        words = set(tokenize(question.text))
        candidates = [s for e in evidence for s in split_sentences(e.content)]
        if question.memory.core:
            candidates += split_sentences(question.memory.core)
        if not candidates:
            return Answer("", evidence)
        best = max(candidates, key=lambda s: len(words & set(tokenize(s))))  # first wins ties
        return Answer(" ".join(best.split()[: self.max_words]), evidence)
