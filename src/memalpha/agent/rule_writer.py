"""A rule-based writer (no LLM) behind the `LLM` protocol: it reads the chunk out of the
memorize prompt and writes tool calls in the configured text format, so it runs through the
same parse → execute path as a model. It is the baseline writer and the teacher whose
transcripts warm-start a policy (SFT).

Rules: classification lines become semantic `Sentence: …; Label: …` entries; other content is
split into sentences, each a semantic entry, and a sentence said in a dialogue turn
(`User: …`, `Assistant: …`, `Alice: …`) keeps its speaker; a dated chunk adds one episodic
entry naming what the user shared or read; the first chunk sets core to its first sentence.

As a baseline it stores every sentence, whatever the chunk size. As the SFT teacher it keeps
at most `max_sentences` per chunk (`SFTConfig.teacher_max_sentences`), so that transcripts fit
the warm start's token budget.
"""

from __future__ import annotations

import re

from memalpha.data import split_sentences
from memalpha.llm import FunctionCall, Generation, Message, SamplingParams, ToolCallFormat

_CHUNK = re.compile(r"<new_chunk>\n(.*)\n</new_chunk>", re.S)
_DIALOGUE = re.compile(
    r"^\[Dialogue between User and Assistant(?: on ([^\]]+))?\]\n<User>[^\n]*\n(.*?)"
    r"(?:\n<Assistant>[^\n]*)?$",
    re.S,
)
_BOOK = re.compile(
    r"^\[Event happened on (\S+) The user is reading a book\]\n<User> (.*?)"
    r"\n\n<System>.*$",
    re.S,
)
_LABELLED = re.compile(r"Sentence: (.*?)\nLabel: (\S+)")
_SPEAKER = re.compile(r"^\s*(?:\[\d[^\]]*\]\s*)?([A-Z][\w .'-]{0,30}|user|assistant):\s+(.*)$")
"""A dialogue turn's line: `Speaker: words` (optionally after a [timestamp])."""


def _insert(kind: str, content: str) -> FunctionCall:
    return FunctionCall("new_memory_insert", {"memory_type": f"{kind}_memory", "content": content})


def sentences_with_speakers(body: str) -> list[str]:
    """The sentences of `body`; those of a dialogue turn as `Speaker: sentence`. A turn runs
    from its `Speaker:` line to the next one; text before any turn has no speaker."""
    out: list[str] = []
    speaker, lines = None, []

    def flush() -> None:
        text = "\n".join(lines)
        out.extend(f"{speaker}: {s}" if speaker else s for s in split_sentences(text))

    for line in body.split("\n"):
        if m := _SPEAKER.match(line):
            flush()
            speaker, lines = m.group(1).strip(), [m.group(2)]
        else:
            lines.append(line)
    flush()
    return out


def rule_calls(chunk: str, *, first: bool, max_sentences: int | None = None) -> list[FunctionCall]:
    """The rule writer's calls for one chunk (every sentence unless `max_sentences`)."""
    when, verb, body = None, "shared", chunk
    if m := _DIALOGUE.match(chunk):
        when, body = m.group(1), m.group(2)
    elif m := _BOOK.match(chunk):
        when, verb, body = m.group(1), "read", m.group(2)
    labelled = _LABELLED.findall(body)
    if labelled:
        facts = [f"Sentence: {s}; Label: {label}" for s, label in labelled]
    else:
        facts = sentences_with_speakers(body)[:max_sentences]
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
    """The rule writer as an `LLM`: prompts in, formatted tool-call text out.

    Args:
        max_sentences: a per-chunk cap (the SFT teacher's); None stores every sentence.
    """

    def __init__(self, fmt: ToolCallFormat, max_sentences: int | None = None) -> None:
        self.fmt, self.max_sentences = fmt, max_sentences
        self.name = f"rule-writer/{fmt.name}"

    def generate(self, prompts: list[list[Message]], sampling: SamplingParams) -> list[Generation]:
        out = []
        for messages in prompts:
            m = _CHUNK.search(messages[-1]["content"])
            chunk = m.group(1) if m else ""
            first = "<core_memory>\n\n</core_memory>" in messages[0]["content"]
            calls = rule_calls(chunk, first=first, max_sentences=self.max_sentences)
            out.append(Generation(self.fmt.render(calls)))
        return out

    def close(self) -> None:
        pass
