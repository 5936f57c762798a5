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

`selective=True` is the teacher of a writer that keeps what matters and updates what changed
(every tool, from what the prompt shows): chatter (a sentence with no name, number or proper
noun) is dropped; a changed fact (`Update: X changed their A; it is now V.`) rewrites the entry
that held the old value with `memory_update`, a changed employer (`Update: X left C and now
works at D.`) deletes the old entry and inserts the new one; an entry it cannot see in the
prompt's memory view is inserted as a plain fact. No episodic entry per chunk. The update
phrasings are those of the synthetic and conflict builders (`memalpha.data.synthetic`).
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
_NOT_SPEAKERS = frozenset({"Update", "Note", "Sentence", "Label"})
"""Labels that begin a sentence like a speaker's name (the synthetic `Update: …` sentences)."""


_UPDATE_ATTR = re.compile(r"^Update: (.+?) changed their (.+?); it is now (.+?)\.$")
_UPDATE_EMPLOYER = re.compile(r"^Update: (.+?) left (.+?) and now works at (.+?)\.$")
_SEMANTIC = re.compile(r"<semantic_memory>[^\n]*\n(.*?)\n</semantic_memory>", re.S)
_ENTRY = re.compile(r"^\[(\S+)\] (.*)$")
_ENTRY_ID_AFTER = re.compile(r"^(.*) \[(\S+)\]$")
"""A shown entry's line, `[id] content` (published) or `content [id]` (`ViewConfig.ids`)."""
_STARTERS = frozenset(
    "A An The It It's There This That These Those Someone Somebody Nobody Everyone He She They "
    "We I You Our My His Her Their".split()
)
"""Words a sentence may begin with that are not names (a capitalised first word otherwise is)."""


def _core(content: str) -> FunctionCall:
    return FunctionCall("memory_update", {"memory_type": "core_memory", "new_content": content})


def _examples(body: str) -> list[str]:
    """The chunk's labelled classification lines as `Sentence: …; Label: …` facts."""
    return [f"Sentence: {s}; Label: {label}" for s, label in _LABELLED.findall(body)]


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
        if (m := _SPEAKER.match(line)) and m.group(1).strip() not in _NOT_SPEAKERS:
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
    facts = _examples(body) or sentences_with_speakers(body)[:max_sentences]
    calls = [_core(facts[0])] if first and facts else []
    calls += [_insert("semantic", f) for f in dict.fromkeys(facts)]
    if when and facts:
        topic = " ".join(facts[0].split()[:12])
        calls.append(
            _insert("episodic", f"At {when}, the user {verb} {len(facts)} items, starting: {topic}")
        )
    return calls


def is_chatter(sentence: str) -> bool:
    """No digit, no capitalised word after the first, and a first word that is no name."""
    words = sentence.split()
    if not words or any(ch.isdigit() for ch in sentence):
        return False
    later_names = any(w[:1].isupper() for w in words[1:])
    return not later_names and words[0].strip("\"'(") in _STARTERS


def visible_semantic(system_prompt: str) -> dict[str, str]:
    """The semantic entries the prompt's memory view shows: id → content. A line is read as
    `[id] content` first, so under ids 'after' a content that itself begins `[x] ` misreads."""
    m = _SEMANTIC.search(system_prompt)
    shown: dict[str, str] = {}
    for line in m.group(1).split("\n") if m else []:
        if hit := _ENTRY.match(line):
            shown[hit.group(1)] = hit.group(2)
        elif hit := _ENTRY_ID_AFTER.match(line):
            shown[hit.group(2)] = hit.group(1)
    return shown


def _entry_starting(entries: dict[str, str], prefix: str) -> str | None:
    return next((i for i, text in entries.items() if text.startswith(prefix)), None)


def _semantic(name: str, **args: str) -> FunctionCall:
    return FunctionCall(name, {"memory_type": "semantic_memory", **args})


def selective_calls(
    chunk: str, shown: dict[str, str], *, first: bool, id_last: bool = False
) -> list[FunctionCall]:
    """The selective teacher's calls for one chunk, given the entries its prompt shows.

    `id_last` writes what a change says before the id of the entry it replaces: an update's
    `new_content` before its `memory_id` (JSON arguments are unordered, so the published schema
    is unchanged), and a changed employer's insert before the delete of the old entry. Why: a
    writer that names the id first must pick the entry before it has written whose fact it
    changes; written last, the id follows a sentence naming the subject, and finding the entry
    is a lookup of that name in the memory view (benchmarks/RESULTS.md, "The id after the
    content").
    """
    body = m.group(2) if (m := _DIALOGUE.match(chunk)) else chunk
    facts = _examples(body) or [s for s in sentences_with_speakers(body) if not is_chatter(s)]
    calls = [_core(facts[0])] if first and facts else []
    for fact in dict.fromkeys(facts):
        if m := _UPDATE_ATTR.match(fact):
            who, attr, new = m.groups()
            fact = f"The {attr} of {who} is {new}."
            if old := _entry_starting(shown, f"The {attr} of {who} is "):
                calls.append(_update(old, fact, id_last=id_last))
                continue
        elif m := _UPDATE_EMPLOYER.match(fact):
            who, before, now = m.groups()
            fact = f"{who} works at {now}."
            if old := _entry_starting(shown, f"{who} works at {before}"):
                pair = [_semantic("memory_delete", memory_id=old), _insert("semantic", fact)]
                calls += pair[::-1] if id_last else pair
                continue
        calls.append(_insert("semantic", fact))
    return calls


def _update(memory_id: str, content: str, *, id_last: bool) -> FunctionCall:
    if id_last:
        return _semantic("memory_update", new_content=content, memory_id=memory_id)
    return _semantic("memory_update", memory_id=memory_id, new_content=content)


class RuleWriterLLM:
    """The rule writer as an `LLM`: prompts in, formatted tool-call text out.

    Args:
        max_sentences: a per-chunk cap (the SFT teacher's); None stores every sentence.
        selective: keep what matters and update what changed (`selective_calls`).
        id_last: the selective teacher names the entry a change replaces after the new text.
    """

    def __init__(
        self,
        fmt: ToolCallFormat,
        max_sentences: int | None = None,
        *,
        selective: bool = False,
        id_last: bool = False,
    ) -> None:
        self.fmt, self.max_sentences, self.selective = fmt, max_sentences, selective
        self.id_last = id_last
        self.name = f"rule-writer{'-selective' if selective else ''}/{fmt.name}"

    def generate(self, prompts: list[list[Message]], sampling: SamplingParams) -> list[Generation]:
        out = []
        for messages in prompts:
            m = _CHUNK.search(messages[-1]["content"])
            chunk = m.group(1) if m else ""
            system = messages[0]["content"]
            first = "<core_memory>\n\n</core_memory>" in system
            if self.selective:
                calls = selective_calls(
                    chunk, visible_semantic(system), first=first, id_last=self.id_last
                )
            else:
                calls = rule_calls(chunk, first=first, max_sentences=self.max_sentences)
            out.append(Generation(self.fmt.render(calls)))
        return out

    def close(self) -> None:
        pass
