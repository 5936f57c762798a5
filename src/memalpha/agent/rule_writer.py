"""A rule-based writer (no LLM) behind the `LLM` protocol: it reads the chunk out of the
memorize prompt and writes tool calls in the configured text format, so it runs through the
same parse → execute path as a model. It is the baseline writer and the teacher whose
transcripts warm-start a policy (SFT).

Rules: classification lines become semantic `Sentence: …; Label: …` entries; other content is
split into sentences, each a semantic entry; a dated chunk adds one episodic entry naming
what the user shared or read; the first chunk sets core to its first sentence.
"""

from __future__ import annotations

import re

from memalpha.data import split_sentences
from memalpha.llm import FunctionCall, Generation, Message, SamplingParams, ToolCallFormat

_CHUNK = re.compile(r"<new_chunk>\n(.*)\n</new_chunk>", re.S)
_DIALOGUE = re.compile(
    r"^\[Dialogue between User and Assistant on ([^\]]+)\]\n<User>[^\n]*\n(.*?)"
    r"(?:\n<Assistant>[^\n]*)?$",
    re.S,
)
_BOOK = re.compile(
    r"^\[Event happened on (\S+) The user is reading a book\]\n<User> (.*?)"
    r"\n\n<System>.*$",
    re.S,
)
_LABELLED = re.compile(r"Sentence: (.*?)\nLabel: (\S+)")


def _insert(kind: str, content: str) -> FunctionCall:
    return FunctionCall("new_memory_insert", {"memory_type": f"{kind}_memory", "content": content})


def rule_calls(chunk: str, *, first: bool, max_sentences: int = 40) -> list[FunctionCall]:
    """The rule writer's calls for one chunk."""
    when, verb, body = None, "shared", chunk
    if m := _DIALOGUE.match(chunk):
        when, body = m.group(1), m.group(2)
    elif m := _BOOK.match(chunk):
        when, verb, body = m.group(1), "read", m.group(2)
    labelled = _LABELLED.findall(body)
    if labelled:
        facts = [f"Sentence: {s}; Label: {label}" for s, label in labelled]
    else:
        facts = split_sentences(body)[:max_sentences]
    calls = []
    if first and facts:
        calls.append(
            FunctionCall("memory_update", {"memory_type": "core_memory", "new_content": facts[0]})
        )
    calls += [_insert("semantic", f) for f in dict.fromkeys(facts)]
    if when and facts:
        topic = " ".join(facts[0].split()[:12])
        calls.append(
            _insert("episodic", f"At {when}, the user {verb} {len(facts)} items, starting: {topic}")
        )
    return calls


class RuleWriterLLM:
    """The rule writer as an `LLM`: prompts in, formatted tool-call text out."""

    def __init__(self, fmt: ToolCallFormat) -> None:
        self.fmt = fmt
        self.name = f"rule-writer/{fmt.name}"

    def generate(self, prompts: list[list[Message]], sampling: SamplingParams) -> list[Generation]:
        out = []
        for messages in prompts:
            m = _CHUNK.search(messages[-1]["content"])
            chunk = m.group(1) if m else ""
            first = "<core_memory>\n\n</core_memory>" in messages[0]["content"]
            out.append(Generation(self.fmt.render(rule_calls(chunk, first=first))))
        return out

    def close(self) -> None:
        pass
