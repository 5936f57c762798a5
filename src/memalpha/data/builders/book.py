"""Long-range-understanding builder from *Pride and Prejudice*: consecutive chapters read as
dated book chunks; questions ask for a summary of what was read between two dates, scored by
keyword recall.

Keywords are derived deterministically, without an LLM: the capitalised words of the span
that do not start a sentence (names, places, titles), ranked by frequency in the span times
their inverse chapter frequency over the whole book (tf-idf), minus a small stop list; the top
`KEYWORDS` joined by ", " form the gold answer, as in the published booksum data.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from pathlib import Path

from memalpha.data.builders.config import BuildConfig
from memalpha.data.chunking import pack, split_sentences
from memalpha.data.instance import QA, Instance, stable_id
from memalpha.data.sources import SOURCES
from memalpha.data.templates import book_chunks
from memalpha.tokens import TokenCounter

BOOK = Path("gutenberg-1342-pride-and-prejudice") / "1342-0.txt"
KEYWORDS = 10
# chapters are split by position, not hash, so that a span never crosses a split
SPLIT_CHAPTERS = {"train": range(0, 45), "validation": range(45, 53), "test": range(53, 61)}
_HEADING = re.compile(r"^\s*chapter ([IVXLC]+)\.?\]?\s*$", re.I | re.M)
_ILLUSTRATION = re.compile(r"\[Illustration:?[^\[\]]*(?:\[[^\]]*\][^\[\]]*)*\]", re.S)
_CAPITAL = re.compile(r"(?<![.!?“\"] )(?<!^)\b([A-Z][a-z]{2,})\b")
_STOP = {
    "The",
    "This",
    "That",
    "There",
    "They",
    "Then",
    "What",
    "When",
    "Where",
    "Which",
    "But",
    "And",
    "She",
    "Her",
    "His",
    "You",
    "Your",
    "Yes",
    "Sir",
    "Madam",
    "Lady",
    "Miss",
    "Mrs",
    "Chapter",
    "Illustration",
    "Copyright",
    "George",
    "Allen",
    "How",
    "Why",
    "Who",
    "Well",
    "Now",
    "Not",
    "Upon",
    "Yet",
    "Oh",
    "Had",
    "Was",
    "Were",
    "Did",
    "Could",
    "Would",
}


def chapters(text: str) -> list[str]:
    """The 61 chapters, illustration captions removed, whitespace normalised."""
    text = text[: text.rfind("CHISWICK PRESS")]  # printer's colophon after THE END
    starts, seen = [], set()
    for m in _HEADING.finditer(text):
        numeral = m.group(1).upper()
        if numeral not in seen:  # first heading of each numeral; later ones are captions
            seen.add(numeral)
            starts.append(m.end())
    bodies = [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)], strict=True)]
    return [" ".join(_ILLUSTRATION.sub(" ", b).split()) for b in bodies]


def keywords(span: str, df: Counter, n_docs: int) -> list[str]:
    tf = Counter(w for s in split_sentences(span) for w in _CAPITAL.findall(s) if w not in _STOP)
    score = {w: c * math.log(n_docs / (1 + df[w])) for w, c in tf.items() if c >= 2}
    return [w for w, _ in sorted(score.items(), key=lambda x: (-x[1], x[0]))[:KEYWORDS]]


def build_book(cfg: BuildConfig, data_dir: Path, counter: TokenCounter) -> list[Instance]:
    chaps = chapters((data_dir / BOOK).read_text("utf-8"))
    df = Counter(w for c in chaps for w in set(_CAPITAL.findall(c)))
    allowed = list(SPLIT_CHAPTERS[cfg.split])
    rng = random.Random(cfg.seed)
    out = []
    for index in range(cfg.instances):
        start = rng.choice(allowed)
        span, used = [], 0
        for c in range(start, allowed[-1] + 1):
            n = counter.count(chaps[c])
            if span and used + n > cfg.max_tokens:
                break
            span.append(c)
            used += n
        sentences = [s for c in span for s in split_sentences(chaps[c])]
        pieces = pack(sentences, min(cfg.chunk_tokens, cfg.max_tokens), counter)
        budgeted, used = [], 0
        for p in pieces:  # a single chapter can exceed max_tokens: keep its beginning
            used += counter.count(p)
            if budgeted and used > cfg.max_tokens:
                break
            budgeted.append(p)
        chunks, dates = book_chunks(budgeted, rng)
        spans = [(0, len(budgeted) - 1)] + sorted(
            {tuple(sorted(rng.sample(range(len(budgeted)), 2))) for _ in range(cfg.questions)}
            if len(budgeted) > 1
            else set()
        )
        questions = []
        for a, b in spans[: cfg.questions]:
            keys = keywords(" ".join(budgeted[a : b + 1]), df, len(chaps))
            if keys:
                questions.append(
                    QA(
                        id=f"q{len(questions)}",
                        question="Summarize the content of the book I read from "
                        f"{dates[a]} to {dates[b]}.",
                        answers=[", ".join(keys)],
                        evidence_chunks=list(range(a, b + 1)),
                        qtype="summary",
                    )
                )
        info = SOURCES["book"]
        out.append(
            Instance(
                id=stable_id("book", cfg.split, cfg.seed, index, span),
                data_source="book",
                competency=info.competency,
                metric=info.metric,
                chunks=chunks,
                questions=questions,
                metadata={
                    "split": cfg.split,
                    "chapters": [c + 1 for c in span],
                    "documents": [f"chapter-{c + 1}" for c in span],
                },
            )
        )
    return out
