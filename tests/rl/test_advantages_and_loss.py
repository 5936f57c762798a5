"""GRPO arithmetic pinned on hand-computed examples: both group definitions, edge cases, the
clipped surrogate with dual clip, token-mean masking and the k3 KL term."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from memalpha.rl import (
    GroupBy,
    aggregate,
    clipped_surrogate,
    group_advantages,
    group_keys,
    k3_kl,
)
from memalpha.rl.advantages import share_with_spread

# one instance, two rollouts × two chunks: (chunk 0, chunk 1, chunk 0, chunk 1)
IDS, CHUNKS, SCORES = ["i"] * 4, [0, 1, 0, 1], [1.0, 3.0, 2.0, 5.0]


def test_instance_grouping_pools_every_chunk_index() -> None:
    adv = group_advantages(SCORES, group_keys(IDS, CHUNKS, GroupBy.INSTANCE))
    std = math.sqrt((1.75**2 + 0.25**2 + 0.75**2 + 2.25**2) / 3)  # unbiased, mean 2.75
    assert adv == pytest.approx([(s - 2.75) / std for s in SCORES], rel=1e-5)


def test_step_grouping_compares_rollouts_at_the_same_chunk() -> None:
    adv = group_advantages(SCORES, group_keys(IDS, CHUNKS, GroupBy.STEP))
    # chunk 0: [1, 2] → mean 1.5, std √0.5; chunk 1: [3, 5] → mean 4, std √2
    assert adv == pytest.approx(
        [-0.5 / math.sqrt(0.5), -1 / math.sqrt(2), 0.5 / math.sqrt(0.5), 1 / math.sqrt(2)], rel=1e-5
    )


def test_singleton_and_all_equal_groups_get_zero() -> None:
    assert group_advantages([3.0, 7.0, 7.0], ["a", "b", "b"]) == [0.0, 0.0, 0.0]


def test_without_the_std_a_small_gap_stays_a_small_advantage() -> None:
    """A branch group of the charged quickstart run (seed 1, step 3; the priced run had it too):
    all four responses kept the due fact, one stored fewer tokens (r3 0.965 against 0.807).
    Divided by the spread, that gap is the largest advantage GRPO gives; left undivided it is
    what it is (the advantage, not the step: under AdamW the step is as long either way,
    benchmarks/RESULTS.md, "Undivided advantages")."""
    scores, groups = [2.807, 2.807, 2.965, 2.807], ["g"] * 4
    assert group_advantages(scores, groups) == pytest.approx([-0.5, -0.5, 1.5, -0.5], rel=1e-4)
    mean = sum(scores) / 4
    assert group_advantages(scores, groups, scale_by_std=False) == pytest.approx(
        [s - mean for s in scores]
    )
    assert group_advantages([3.0, 7.0, 7.0], ["a", "b", "b"], scale_by_std=False) == [0.0] * 3


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="group keys"):
        group_advantages([1.0], ["a", "b"])
    with pytest.raises(ValueError, match="finite"):
        group_advantages([1.0, float("nan")], ["a", "a"])


@given(st.lists(st.tuples(st.sampled_from("abc"), st.floats(-10, 10)), min_size=1, max_size=30))
def test_advantages_sum_to_zero_in_every_group(pairs) -> None:
    groups, scores = [g for g, _ in pairs], [s for _, s in pairs]
    adv = group_advantages(scores, groups)
    for g in set(groups):
        assert (
            abs(sum(a for a, k in zip(adv, groups, strict=True) if k == g))
            < 1e-6 * len(pairs) + 1e-9
        )


def test_share_with_spread_counts_groups_that_carry_signal() -> None:
    # a: equal scores (no signal), b: differ, c: one sample (no one to differ from)
    assert share_with_spread([0.5, 0.5, 0.2, 0.7, 1.0], ["a", "a", "b", "b", "c"]) == 1 / 3
    assert share_with_spread([0.1 + 0.2, 0.3], ["a", "a"]) == 0.0  # float noise is not spread
    assert share_with_spread([], []) == 0.0


def lp(*probs: float) -> torch.Tensor:
    return torch.log(torch.tensor([list(probs)]))


def test_clipped_surrogate_positive_advantage() -> None:
    # ratios 1.5 and 0.5 (old logprob 0); A = +1 → per token max(−r, −clip(r)) = −1.2, −0.5
    loss, stats = clipped_surrogate(
        lp(1.5, 0.5), torch.zeros(1, 2), torch.tensor([1.0]), torch.ones(1, 2)
    )
    assert float(loss) == pytest.approx(-0.85)
    assert stats["clip_fraction"] == pytest.approx(0.5)


def test_clipped_surrogate_negative_advantage_and_dual_clip() -> None:
    loss, _ = clipped_surrogate(
        lp(1.5, 0.5), torch.zeros(1, 2), torch.tensor([-1.0]), torch.ones(1, 2)
    )
    assert float(loss) == pytest.approx((1.5 + 0.8) / 2)
    big, _ = clipped_surrogate(lp(4.0), torch.zeros(1, 1), torch.tensor([-1.0]), torch.ones(1, 1))
    assert float(big) == pytest.approx(3.0)  # dual clip caps −A·r at −A·c = 3
    raw, _ = clipped_surrogate(
        lp(4.0), torch.zeros(1, 1), torch.tensor([-1.0]), torch.ones(1, 1), dual_clip=None
    )
    assert float(raw) == pytest.approx(4.0)


def test_token_mean_ignores_masked_tokens() -> None:
    loss, _ = clipped_surrogate(
        lp(1.5, 0.5), torch.zeros(1, 2), torch.tensor([1.0]), torch.tensor([[1.0, 0.0]])
    )
    assert float(loss) == pytest.approx(-1.2)


def test_gradient_raises_the_probability_of_advantaged_tokens() -> None:
    logits = torch.zeros(1, 1, requires_grad=True)
    loss, _ = clipped_surrogate(logits, torch.zeros(1, 1), torch.tensor([1.0]), torch.ones(1, 1))
    loss.backward()
    assert float(logits.grad) < 0  # gradient descent increases the logprob


def test_k3_kl_on_a_hand_computed_pair() -> None:
    kl = k3_kl(lp(0.5), lp(0.25))  # log ratio = log 0.5: 0.5 + ln 2 − 1
    assert float(kl) == pytest.approx(0.5 + math.log(2) - 1, rel=1e-5)
    assert float(k3_kl(lp(0.3), lp(0.3))) == pytest.approx(0.0)
    assert float(k3_kl(lp(0.9), lp(0.001))) >= 0


# Two responses: per-token values [1, 3] (2 tokens) and [6, _, _] (1 token of 3 unmasked).
VALUES = torch.tensor([[1.0, 3.0, 0.0], [6.0, 9.0, 9.0]])
MASK = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("token-mean", (1 + 3 + 6) / 3),  # every token the same
        ("seq-mean-token-mean", ((1 + 3) / 2 + 6) / 2),  # every response the same
        ("seq-mean-token-sum", ((1 + 3) + 6) / 2),  # sums per response, mean over responses
    ],
)
def test_aggregate_on_hand_computed_values(mode, expected) -> None:
    assert float(aggregate(VALUES, MASK, mode)) == pytest.approx(expected)


def test_aggregation_changes_how_a_long_response_weighs() -> None:
    # A 1-token response with A = +1 against a 3-token one with A = −1, all ratios 1:
    # pg = −A per token. Token-mean lets the long negative response win (loss +0.5); the
    # sequence mean weighs both alike (0); token-sum per response is token-mean × 2 tokens.
    mask = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    args = (torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([1.0, -1.0]), mask)
    assert float(clipped_surrogate(*args)[0]) == pytest.approx(0.5)
    assert float(clipped_surrogate(*args, agg="seq-mean-token-mean")[0]) == pytest.approx(0.0)
    assert float(clipped_surrogate(*args, agg="seq-mean-token-sum")[0]) == pytest.approx(1.0)


def test_unknown_aggregation_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown loss aggregation"):
        aggregate(VALUES, MASK, "sum")  # type: ignore[arg-type]
