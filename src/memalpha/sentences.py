"""The one sentence splitter, below every package: the chunker packs its sentences
(`memalpha.data`), the writer's view retrieves by them (`memalpha.memory`), readers quote them.

A regular expression (nltk's punkt data cannot be downloaded here): a sentence ends at . ! or ?
(plus closing quotes/brackets) followed by space and a capital, digit or opening quote.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+(?=[\"“‘(\[]?[A-Z0-9])")


def split_sentences(text: str) -> list[str]:
    """Sentences of `text`, whitespace-normalised, empty ones dropped."""
    text = " ".join(text.split())
    out, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        end = m.start() + len(m.group(0).rstrip())
        out.append(text[start:end].strip())
        start = m.end()
    out.append(text[start:].strip())
    return [s for s in out if s]
