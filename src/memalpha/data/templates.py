"""Chunk templates as published (SPEC §5.1), with deterministic timestamps: the dialogue
wrapper, the book-reading wrapper and `Sentence: …\\nLabel: …` lines for classification."""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta
from importlib.resources import files

import yaml

START = datetime(2024, 1, 1, 9, 0)


def _phrases() -> dict[str, list[str]]:
    text = files("memalpha.data").joinpath("templates.yaml").read_text("utf-8")
    return yaml.safe_load(text)


SOURCE_DATE = re.compile(
    r"(?:session[ _]date|date|timestamp)\s*[:=]\s*"
    r"(\d{4}[/-]\d{2}[/-]\d{2}(?:\s*\(\w{3}\))?(?:\s+\d{1,2}:\d{2})?)",
    re.I,
)
"""A date a source's own text carries, e.g. LongMemEval's `Session Date: 2023/05/20 (Sat) 02:21`."""


def source_dates(contents: list[str]) -> list[str | None]:
    """Per content, the date its text says it is from: its last own date, else the last date
    seen in an earlier content (a session runs on); None before any date."""
    out: list[str | None] = []
    last = None
    for content in contents:
        found = SOURCE_DATE.findall(content)
        last = found[-1].strip() if found else last
        out.append(last)
    return out


def dialogue_chunks(
    contents: list[str],
    rng: random.Random,
    *,
    classification: bool = False,
    dates: list[str | None] | None = None,
) -> list[str]:
    """Wrap each content as a User/Assistant exchange. Dated as given in `dates` (a source's
    own; None leaves that chunk undated); without `dates`, synthetic dates advancing one day
    per chunk from START, as published for sources that have none."""
    phrases = _phrases()
    openers = phrases["classification_openers" if classification else "user_openers"]
    out = []
    for i, content in enumerate(contents):
        synthetic = START + timedelta(days=i, minutes=rng.randrange(0, 10 * 60, 5))
        when = f"{synthetic:%Y-%m-%d %H:%M}" if dates is None else dates[i]
        header = "[Dialogue between User and Assistant" + (f" on {when}]" if when else "]")
        out.append(
            f"{header}\n<User>{rng.choice(openers)}\n{content}\n"
            f"<Assistant>{rng.choice(phrases['acknowledgements'])}"
        )
    return out


def book_chunks(contents: list[str], rng: random.Random) -> tuple[list[str], list[str]]:
    """Wrap book passages as reading events; dates advance 1–3 days. Returns chunks and dates."""
    out, dates, day = [], [], START
    for content in contents:
        date = f"{day:%Y-%m-%d}"
        dates.append(date)
        out.append(
            f"[Event happened on {date} The user is reading a book]\n<User> {content}\n\n"
            f"<System> Please remember what the user reads on {date}, save the details within "
            "the book, and retain a summary of the book the user has read so far."
        )
        day += timedelta(days=rng.randint(1, 3))
    return out, dates


def classification_line(text: str, label: int | str) -> str:
    return f"Sentence: {text}\nLabel: {label}"
