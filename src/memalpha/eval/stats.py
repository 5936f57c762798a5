"""Bootstrap intervals for "is writer B better than writer A on these instances?".

Scores are per instance (the mean over its questions), so resampling is over instances, the
unit the data were drawn in. Comparisons of two writers on the same instances are paired: the
interval of the per-instance differences is much tighter than two marginal intervals.
"""

from __future__ import annotations

import random
from statistics import mean


def bootstrap_interval(
    values: list[float], n: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of the mean of `values` (seeded: the same input, the same interval)."""
    if not values:
        raise ValueError("no values to bootstrap")
    rng = random.Random(seed)
    return _percentiles([mean(rng.choices(values, k=len(values))) for _ in range(n)], level)


def paired_difference(after: list[float], before: list[float]) -> dict[str, float]:
    """Mean of `after - before` instance by instance, with its bootstrap interval."""
    diffs = [a - b for a, b in zip(after, before, strict=True)]
    low, high = bootstrap_interval(diffs)
    return {"diff": mean(diffs), "low": low, "high": high}


def stratified_interval(
    groups: list[list[float]], n: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of the mean of group means, resampling within each group: the
    interval of a competency's score (the mean of its sources' means over instances)."""
    if not groups or not all(groups):
        raise ValueError("every group needs values to bootstrap")
    rng = random.Random(seed)
    means = [mean(mean(rng.choices(g, k=len(g))) for g in groups) for _ in range(n)]
    return _percentiles(means, level)


def _percentiles(means: list[float], level: float) -> tuple[float, float]:
    """The central `level` interval of the resampled means, an end within 1e-12 of 0 made 0:
    a resample whose exact mean is 0 (say 1/3 - 1/6 - 1/6) sums to ~1e-17 in floats, and an
    interval whose low end is that would read "beyond noise" (low > 0) when it touches 0.
    Only 0 is snapped: the other ends stay resampled means, so an interval of equal scores
    still holds its mean exactly."""
    ordered = sorted(means)
    tail = (1 - level) / 2
    ends = (
        ordered[int(tail * len(ordered))],
        ordered[min(len(ordered) - 1, int((1 - tail) * len(ordered)))],
    )
    low, high = (snap_zero(end) for end in ends)
    return low, high


def snap_zero(end: float) -> float:
    """An interval end within 1e-12 of 0 read as 0 (float sums of exact zeros: see
    `_percentiles`); also for summaries stored before intervals were snapped."""
    return 0.0 if abs(end) < 1e-12 else end


def apart(intervals: dict[str, tuple[float, float]]) -> list[tuple[str, str]]:
    """Pairs (higher, lower) of names whose intervals do not overlap."""
    return [
        (a, b)
        for a, (a_low, _) in sorted(intervals.items())
        for b, (_, b_high) in sorted(intervals.items())
        if a != b and a_low > b_high
    ]
