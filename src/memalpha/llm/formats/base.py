"""What every tool-call text format produces and offers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol


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
    """A way of writing tool calls in text: the system-prompt tool block, parse and render."""

    name: str

    def system_block(self, functions: list[dict[str, Any]]) -> str: ...

    def parse(self, text: str) -> ParsedOutput: ...

    def render(self, calls: list[FunctionCall]) -> str: ...


def loads_object(text: str) -> dict[str, Any] | None:
    """A JSON object from text, or None."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
