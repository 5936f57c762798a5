"""LLM judges: content validity of a memory write (r4, MEMALPHA_SPEC §3.4) and the
LongMemEval-style yes/no rubric judge, with parsers that read the verdict correctly."""

from __future__ import annotations

import json
import re
from importlib.resources import files
from types import MappingProxyType

import yaml

from memalpha.llm import LLM, SamplingParams

_JSON_BLOCK = re.compile(r"```json\s*(.*?)```", re.S)


# read once at import; read-only
PROMPTS = MappingProxyType(
    yaml.safe_load(files("memalpha.reader").joinpath("prompts/judges.yaml").read_text("utf-8"))
)


def parse_validity(reply: str) -> float:
    """1.0 iff the reply has a ```json block whose VALID is true (published rule), else 0."""
    m = _JSON_BLOCK.search(reply)
    if not m:
        return 0.0
    try:
        verdict = json.loads(m.group(1))
    except json.JSONDecodeError:
        return 0.0
    return 1.0 if isinstance(verdict, dict) and verdict.get("VALID") is True else 0.0


def parse_yes_no(reply: str) -> float:
    """1.0 iff the first yes/no word is 'yes'. The published parser tested the substring 'no',
    which also matches 'not', 'know' and 'now'."""
    m = re.search(r"\b(yes|no)\b", reply.lower())
    return 1.0 if m and m.group(1) == "yes" else 0.0


class ContentJudge:
    """Judges whether each memory write is valid for its memory type, in one batched call."""

    DEFAULT_SAMPLING = SamplingParams(temperature=0.1, max_new_tokens=512)  # published judge

    def __init__(
        self,
        llm: LLM,
        sampling: SamplingParams | None = None,
    ):
        self.llm = llm
        self.sampling = sampling or self.DEFAULT_SAMPLING

    def judge(self, writes: list[tuple[str, str]]) -> list[float]:
        """Scores for (memory_type, content) pairs; empty content or unknown type score 0."""
        prompts = PROMPTS
        idx = [i for i, (kind, text) in enumerate(writes) if text.strip() and kind in prompts]
        messages = [
            [
                {"role": "system", "content": prompts[writes[i][0]]},
                {
                    "role": "user",
                    "content": f"Analyze this {writes[i][0]} memory content:\n\n{writes[i][1]}",
                },
            ]
            for i in idx
        ]
        replies = self.llm.generate(messages, self.sampling) if messages else []
        scores = [0.0] * len(writes)
        for i, reply in zip(idx, replies, strict=True):
            scores[i] = parse_validity(reply.text)
        return scores


class RubricJudge:
    """LongMemEval-style: does a response satisfy a rubric? Answered yes or no."""

    DEFAULT_SAMPLING = SamplingParams(temperature=0.0, max_new_tokens=8)

    def __init__(self, llm: LLM, sampling: SamplingParams | None = None):
        self.llm = llm
        self.sampling = sampling or self.DEFAULT_SAMPLING

    def judge(self, items: list[tuple[str, str, str]]) -> list[float]:
        """Scores for (question, rubric, response) triples."""
        template = PROMPTS["rubric"]
        messages = [
            [{"role": "user", "content": template.format(question=q, rubric=r, response=resp)}]
            for q, r, resp in items
        ]
        return [parse_yes_no(g.text) for g in self.llm.generate(messages, self.sampling)]


_TEMPORAL = re.compile(
    r"\d|\b(today|yesterday|tomorrow|morning|evening|night|week|month|year|ago|when|"
    r"monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b",
    re.I,
)


class RuleJudge:
    """An LLM-free stand-in for `ContentJudge` on machines without a judge model.

    It encodes the checkable parts of the published judge prompts: core memory must not talk
    about "core memory" or be a bare placeholder; episodic memory must carry temporal
    information; any memory needs at least `min_words` words. It is an approximation; use
    `ContentJudge` with a real model to reproduce the published r4.
    """

    def __init__(self, *, min_words: int = 3) -> None:
        self.min_words = min_words

    def judge(self, writes: list[tuple[str, str]]) -> list[float]:
        return [self._one(kind, text) for kind, text in writes]

    def _one(self, kind: str, text: str) -> float:
        if len(text.split()) < self.min_words:
            return 0.0
        if kind == "core":
            placeholder = text.rstrip().endswith(":") or "here we save" in text.lower()
            return 0.0 if "core memory" in text.lower() or placeholder else 1.0
        if kind == "episodic":
            return 1.0 if _TEMPORAL.search(text) else 0.0
        return 1.0 if kind == "semantic" else 0.0
