"""JSON from untrusted text (model output, tool arguments), within bounds: parsing and repair
refuse text that is too long or nested too deep before any recursive parser sees it, so a
hostile or runaway output costs linear time and never raises out of the caller."""

from __future__ import annotations

import json
from typing import Any

import json_repair

MAX_ARGUMENT_CHARS = 16_000  # one call's argument text; a memory entry is far shorter
MAX_NESTING = 32  # JSON depth of one call; the published tools need 2
REPAIR_MAX_CHARS = 4_000  # json_repair is slow on long input (1 MB: 20 s): longer is not repaired


def json_depth(text: str) -> int:
    """The deepest bracket nesting of JSON-like text, strings skipped; linear in its length."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(0, depth - 1)
    return deepest


def argument_problem(text: str) -> str | None:
    """Why argument text is refused before any JSON parser sees it, or None."""
    if len(text) > MAX_ARGUMENT_CHARS:
        return f"arguments of {len(text)} characters (most {MAX_ARGUMENT_CHARS})"
    depth = json_depth(text)
    if depth > MAX_NESTING:
        return f"arguments nested {depth} deep (most {MAX_NESTING})"
    return None


def loads_object(text: str) -> dict[str, Any] | None:
    """A JSON object from text, or None (also for text too long or too deep to parse)."""
    if argument_problem(text) is not None:
        return None
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def repair_object(text: str) -> dict[str, Any] | None:
    """json_repair's reading of short malformed JSON as an object, or None (json_repair is
    slow and recursive on long or deep input, which is refused before it runs)."""
    if not text or len(text) > REPAIR_MAX_CHARS or json_depth(text) > MAX_NESTING:
        return None
    try:
        repaired = json_repair.repair_json(text, return_objects=True)
    except (ValueError, RecursionError, TypeError, IndexError, KeyError):
        return None
    return repaired if isinstance(repaired, dict) else None
