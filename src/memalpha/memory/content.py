"""What counts as storable text: one rule for tool calls, CRUD requests and imports.

Text must be valid Unicode (a lone surrogate cannot be encoded for SQLite or JSON, and arrives
from model output cut mid-escape) and must show something: whitespace, control and format
characters alone (zero-width spaces, NUL, a byte-order mark) pass `str.strip()` but store
nothing a reader could use.
"""

from __future__ import annotations

import unicodedata

_INVISIBLE = {"Cc", "Cf", "Zs", "Zl", "Zp"}  # control, format, separators


def content_problem(text: object) -> str | None:
    """Why `text` cannot be stored, or None when it can."""
    if not isinstance(text, str):
        return f"content must be text, got {type(text).__name__}"
    for i, ch in enumerate(text):
        if "\ud800" <= ch <= "\udfff":
            return f"content holds a lone surrogate (U+{ord(ch):04X}) at character {i}"
    if all(ch.isspace() or unicodedata.category(ch) in _INVISIBLE for ch in text):
        return "content is empty or invisible (only whitespace, control or zero-width characters)"
    return None
