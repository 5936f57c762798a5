"""Batches of similar length: what padded forward passes cost is the batch's longest row."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

R = TypeVar("R")


def length_batches(lengths: list[int], size: int) -> list[list[int]]:
    """Indices of `lengths` in batches of at most `size`, longest first, so that rows padded
    together are close in length. A padded batch costs its size times its longest row: a short
    prompt beside long ones pays for their length in every layer (prefill, training forward
    and backward). Longest first also meets a memory limit in the first batch, not the last.
    Ties keep their order, so the batches are a function of the lengths alone; rows that fit
    one batch keep theirs (one batch pads to its longest row in any order).
    """
    if len(lengths) <= size:
        return [list(range(len(lengths)))] if lengths else []
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + size] for i in range(0, len(order), size)]


def by_length(lengths: list[int], size: int, run: Callable[[list[int]], list[R]]) -> list[R]:
    """`run` on each batch of `length_batches(lengths, size)` (given the batch's row indices,
    it returns one result per row), the results put back in row order."""
    out: dict[int, R] = {}
    for rows in length_batches(lengths, size):
        out.update(zip(rows, run(rows), strict=True))
    return [out[i] for i in range(len(lengths))]
