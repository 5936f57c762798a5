"""Ending a response that loops.

A small writer that has lost its way repeats one span ("Sentence: …; Label: N; Sentence: …;
Label: N; …") until its token budget runs out: the loop fills the memory with copies, costs the
whole budget in decoding time, and, when it ends a response, loses the calls after it (issue
25: a fifth of one CPU warm start's answers ran to their cap, many of them looping). A loop
stop ends the response once its tail is one span of `min_span`..`max_span` tokens repeated
`repeats` times in a row, and cuts it back to the first copy, as if the budget had ended
there.

The cut keeps a prefix of what was sampled, with its own log-probabilities, so a rollout cut
this way is still the policy's own sample (as one cut by `max_new_tokens` is) and trains as
one. Every token-level engine cuts with `loop_cut` after generating, so they agree token for
token; transformers also stops decoding a looping row early (`StopOnLoop`), which saves the
decoding time and changes nothing else, since the tokens before the cut do not depend on when
decoding stopped.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator


class LoopStop(BaseModel):
    """When a response counts as looping: its tail is `repeats` copies of one span, each copy
    equal to the one before but for at most `max_mismatch` of its tokens (compared position by
    position, so inserted or dropped tokens break a loop). A span repeated is also periodic
    with any multiple of its length, so short loops (one token repeated) are caught by
    `min_span`-long multiples of them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_span: int = Field(8, ge=1, description="Shortest repeated span, in tokens.")
    max_span: int = Field(128, ge=1, description="Longest repeated span looked for, in tokens.")
    repeats: int = Field(3, ge=2, description="Copies in a row that make a loop.")
    max_mismatch: float = Field(
        0.1,
        ge=0,
        lt=0.5,
        description="Share of the loop's tokens that may differ from the token one span "
        "before: a loop that counts ('…; Label: 0; …; Label: 1; …') is still a loop.",
    )

    @model_validator(mode="after")
    def _spans_ordered(self) -> LoopStop:
        if self.max_span < self.min_span:
            raise ValueError(f"loop_stop: max_span {self.max_span} < min_span {self.min_span}")
        return self


def loop_cut(ids: Sequence[int], stop: LoopStop | None) -> int | None:
    """Where to cut `ids` if they loop: the length of the prefix that ends with the first copy
    of the earliest loop found, or None if they do not loop (or `stop` is None). A loop is
    found where a prefix first ends with `repeats` copies of one span (within `max_mismatch`);
    of spans found at the same place the shortest is taken. Its first copy starts where the
    tokens begin to repeat exactly, so that a loop that counts ('…: 0; …: 0; …: 1; …') keeps
    its first copy whole ('…: 0;') rather than one cut where the counting shows ('…: ')."""
    if stop is None:
        return None
    tokens = np.asarray(ids, dtype=np.int64)
    best: tuple[int, int] | None = None  # (prefix end, span)
    for span in range(stop.min_span, stop.max_span + 1):
        run = span * (stop.repeats - 1)  # positions that must equal the one `span` before
        if span + run > len(tokens) or (best is not None and span + run > best[0]):
            break
        same = np.concatenate(([0], np.cumsum(tokens[span:] == tokens[:-span])))
        filled = same[run:] - same[:-run] >= run - _allowed(run, stop)  # windows that loop
        if filled.any():
            end = int(np.argmax(filled)) + run + span  # the prefix that holds the loop
            if best is None or end < best[0]:
                best = (end, span)
    if best is None:
        return None
    end, span = best
    # the first copy starts where the tokens begin to repeat exactly (the window may open on
    # tokens its mismatches allow, or start after the repeating did): one span on, it is whole
    start = end - span * stop.repeats
    while tokens[start] != tokens[start + span]:
        start += 1
    while start > 0 and tokens[start - 1] == tokens[start - 1 + span]:
        start -= 1
    return start + span


def trim_loop(
    ids: list[int], logprobs: Sequence[float] | None, stop: LoopStop | None
) -> tuple[list[int], Sequence[float] | None, bool]:
    """An engine's decoded `ids` and their log-probs cut back to a loop's first copy
    (`loop_cut`), and whether they were: what an engine that decodes loops whole (vLLM, verl's
    servers) does before it builds its `Generation`."""
    cut = loop_cut(ids, stop)
    if cut is None:
        return ids, logprobs, False
    return ids[:cut], logprobs[:cut] if logprobs is not None else None, True


def loops_at_end(rows: np.ndarray, stop: LoopStop) -> np.ndarray:
    """(B,) whether each row of `rows` (B, T) ends with a loop: the per-step test a decoder
    can run on its newest tokens (`loop_cut` then finds where the loop began)."""
    hit = np.zeros(rows.shape[0], dtype=bool)
    for span in range(stop.min_span, stop.max_span + 1):
        width = span * stop.repeats
        if width > rows.shape[1]:
            break
        tail = rows[:, -width:]
        differ = (tail[:, span:] != tail[:, :-span]).sum(axis=1)
        hit |= differ <= _allowed(width - span, stop)
    return hit


def _allowed(compared: int, stop: LoopStop) -> int:
    """Positions of `compared` that may differ from the token one span before."""
    return int(compared * stop.max_mismatch)
