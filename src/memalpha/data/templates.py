"""Chunk templates as published (SPEC §5.1), with deterministic timestamps: the dialogue
wrapper, the book-reading wrapper and `Sentence: …\\nLabel: …` lines for classification."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from importlib.resources import files

import yaml

START = datetime(2024, 1, 1, 9, 0)


def _phrases() -> dict[str, list[str]]:
    text = files("memalpha.data").joinpath("templates.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def dialogue_chunks(
    contents: list[str], rng: random.Random, *, classification: bool = False
) -> list[str]:
    """Wrap each content as a dated User/Assistant exchange; dates advance one day per chunk."""
    phrases = _phrases()
    openers = phrases["classification_openers" if classification else "user_openers"]
    out = []
    for i, content in enumerate(contents):
        when = START + timedelta(days=i, minutes=rng.randrange(0, 10 * 60, 5))
        out.append(
            f"[Dialogue between User and Assistant on {when:%Y-%m-%d %H:%M}]\n"
            f"<User>{rng.choice(openers)}\n{content}\n<Assistant>{rng.choice(phrases['acknowledgements'])}"
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
