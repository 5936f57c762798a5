"""What every tool-call text format produces and offers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from memalpha.jsontext import argument_problem, loads_object, repair_object

__all__ = [
    "FunctionCall",
    "ParsedOutput",
    "ToolCallFormat",
    "argument_problem",
    "dumps_escaped",
    "loads_object",
    "repair_object",
]


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """One call found in model text. `arguments` is a dict when the JSON parsed, else the raw
    text (the executor repairs or rejects it); `error` is set when the call is unusable."""

    name: str
    arguments: dict[str, Any] | str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedOutput:
    """A generation split into the text before the first call and the calls, in order."""

    reasoning: str
    calls: list[FunctionCall] = field(default_factory=list)


class ToolCallFormat(Protocol):
    """A way of writing tool calls in text: the system-prompt tool block, parse and render,
    and the stop strings where the model would begin to imagine a tool's result."""

    name: str
    stop_strings: tuple[str, ...]

    def system_block(self, functions: list[dict[str, Any]]) -> str: ...

    def parse(self, text: str) -> ParsedOutput: ...

    def render(self, calls: list[FunctionCall]) -> str: ...


def dumps_escaped(value: Any, markers: tuple[str, ...]) -> str:
    """JSON of `value` in which every call marker of a format (`<tool_call>`, `</tool_call>`;
    `✿`) has its first character written as a \\u escape: valid JSON that decodes to the same
    value, and holds no text the format's parser reads as the start or end of a call. All
    other text is written as before, so prompts and teacher transcripts do not change."""
    text = json.dumps(value, ensure_ascii=False)
    for marker in markers:
        text = text.replace(marker, f"\\u{ord(marker[0]):04x}{marker[1:]}")
    return text
