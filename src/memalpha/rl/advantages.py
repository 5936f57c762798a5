"""GRPO advantages: each sample's score normalised within its group (MEMALPHA_SPEC §4.2).

    A_j = (s_j − mean_g) / (std_g + eps)

where g is the group of sample j and std is the unbiased (n − 1) standard deviation, as
`torch.std` in verl's `compute_grpo_outcome_advantage`. Groups (`GroupBy`):
  instance  all samples of all rollouts of one instance, every chunk index pooled (published)
  step      samples of the rollouts of one instance at the same chunk index (issue #14's reading)
  branch    G responses to one chunk from one shared memory state (`memalpha.rl.branches`; not
            in the paper): keyed like step, since an instance has one trunk per step
Edge cases, decided: a group of one sample has no one to compare with and gets advantage 0
(verl would give it its raw score); a group whose scores are all equal gets 0.

`scale_by_std=False` (`ppo.scale_by_std`) leaves out the division, A_j = s_j − mean_g, as Dr.
GRPO (Liu et al. 2025) and verl's `norm_adv_by_std_in_grpo=False` do: the groups of a step then
weigh by their score gaps, where the division gives every spread, however small, the same
weight. It does not shrink the step: AdamW divides by the gradients' running size, so a step
with one group moves the weights as far either way (the priced quickstart seed 1: 0.115 against
0.122 after 4 steps, cosine 0.78, and it collapsed too; benchmarks/RESULTS.md, "Undivided
advantages").
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Sequence
from enum import StrEnum


class GroupBy(StrEnum):
    INSTANCE = "instance"
    STEP = "step"
    BRANCH = "branch"


def group_keys(
    instance_ids: Sequence[Hashable], chunk_indices: Sequence[int], group_by: GroupBy
) -> list[Hashable]:
    """The group of each (trajectory, chunk) sample under a group definition."""
    if group_by is GroupBy.INSTANCE:
        return list(instance_ids)
    return list(zip(instance_ids, chunk_indices, strict=True))


def group_advantages(
    scores: Sequence[float],
    groups: Sequence[Hashable],
    *,
    eps: float = 1e-6,
    scale_by_std: bool = True,
) -> list[float]:
    """(score − group mean) / (group std + eps) for every sample, or score − group mean without
    `scale_by_std` (symbols as in the module doc).

    Raises:
        ValueError: `scores` and `groups` differ in length, or a score is not finite.
    """
    if len(scores) != len(groups):
        raise ValueError(f"{len(scores)} scores but {len(groups)} group keys")
    if not all(math.isfinite(s) for s in scores):
        raise ValueError("every score must be finite; drop or fix unscorable samples first")
    members: dict[Hashable, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    out = [0.0] * len(scores)
    for idx in members.values():
        if len(idx) < 2:
            continue
        values = [scores[i] for i in idx]
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
        scale = std + eps if scale_by_std else 1.0
        for i in idx:
            out[i] = (scores[i] - mean) / scale
    return out


def share_with_spread(values: Sequence[float], groups: Sequence[Hashable]) -> float:
    """The fraction of groups whose values are not all equal (to 9 decimals): the groups that
    give GRPO any signal, since a group of equal scores has all-zero advantages. 0 for none."""
    seen: dict[Hashable, set[float]] = defaultdict(set)
    for v, g in zip(values, groups, strict=True):
        seen[g].add(round(v, 9))
    return sum(len(v) > 1 for v in seen.values()) / max(1, len(seen))
