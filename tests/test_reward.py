"""Reward terms on hand-computed examples (MEMALPHA_SPEC §3)."""

from __future__ import annotations

import pytest

from memalpha.reward import (
    RewardConfig,
    call_success_reward,
    chunk_compression_reward,
    chunk_qa_rewards,
    combine,
    compression_reward,
    trajectory_rewards,
)


def test_combination_matches_the_paper_formula() -> None:
    terms = combine(0.5, 0.75, 0.8, 1.0, beta=0.05, gamma=0.1)
    assert terms.beta_r3 == pytest.approx(0.04) and terms.gamma_r4 == pytest.approx(0.1)
    assert terms.total == pytest.approx(0.5 + 0.75 + 0.04 + 0.1)
    assert terms.w_r2 == 0.75  # the published weight of r2 is 1


def test_call_weight_scales_only_r2() -> None:
    terms = combine(0.5, 0.75, 0.8, 1.0, beta=0.05, gamma=0.1, call_weight=0.2)
    assert terms.r2 == 0.75 and terms.w_r2 == pytest.approx(0.15)
    assert terms.total == pytest.approx(0.5 + 0.15 + 0.04 + 0.1)
    cfg = RewardConfig(call_weight=0.0)
    [chunk] = trajectory_rewards([1.0], [[False]], [[1.0]], 10, 20, cfg)
    assert chunk.total == pytest.approx(1.0 + 0.05 * 0.5 + 0.1)


def test_skipped_or_failed_calls_lower_r2_and_no_calls_score_zero() -> None:
    assert call_success_reward([True, False, True, False]) == 0.5
    assert call_success_reward([]) == 0.0
    assert call_success_reward([], no_calls=1.0) == 1.0


def test_compression_can_go_negative_and_needs_input() -> None:
    assert compression_reward(250, 1000) == 0.75
    assert compression_reward(1500, 1000) == -0.5
    with pytest.raises(ValueError, match="input_tokens must be positive"):
        compression_reward(10, 0)


def test_a_branchs_compression_charges_what_it_added_against_its_chunk() -> None:
    assert chunk_compression_reward(100, 132, 128) == 0.75  # 32 tokens added
    assert chunk_compression_reward(100, 100, 128) == 1.0  # an update of equal length
    assert chunk_compression_reward(100, 68, 128) == 1.25  # a delete pays
    with pytest.raises(ValueError, match="chunk_tokens must be positive"):
        chunk_compression_reward(0, 10, 0)


def test_trajectory_rewards_share_r1_r3_and_differ_per_chunk() -> None:
    cfg = RewardConfig(beta=0.2, gamma=0.1)
    terms = trajectory_rewards(
        qa_scores=[1.0, 0.0, 1.0, 1.0],  # r1 = 0.75
        chunk_successes=[[True, True], [], [True, False]],
        chunk_judge_scores=[[1.0, 0.0], [], [1.0]],
        memory_tokens=100,
        input_tokens=400,  # r3 = 0.75
        config=cfg,
    )
    assert [t.r2 for t in terms] == [1.0, 0.0, 0.5]
    assert [t.r4 for t in terms] == [0.5, 0.0, 1.0]
    assert [t.total for t in terms] == pytest.approx(
        [0.75 + 1.0 + 0.15 + 0.05, 0.75 + 0.0 + 0.15 + 0.0, 0.75 + 0.5 + 0.15 + 0.1]
    )


def test_mismatched_chunk_lists_are_refused() -> None:
    with pytest.raises(ValueError, match="chunks of call results"):
        trajectory_rewards([1.0], [[True]], [], 1, 10, RewardConfig())


def test_evidence_credit_gives_each_chunk_its_own_questions() -> None:
    # chunk 0 holds questions a, b; chunk 1 holds c; d has no evidence and e points past the
    # last chunk, so both count for every chunk.
    scores = [1.0, 0.0, 1.0, 0.0, 1.0]
    evidence = [[0], [0], [1], [], [7]]
    assert chunk_qa_rewards(scores, evidence, 3) == pytest.approx(
        [(1 + 0 + 0 + 1) / 4, (1 + 0 + 1) / 3, (0 + 1) / 2]
    )
    # a chunk that no question points at keeps the trajectory's r1
    assert chunk_qa_rewards([1.0, 0.0, 1.0], [[0], [0], [1]], 3) == pytest.approx([0.5, 1.0, 2 / 3])
    with pytest.raises(ValueError, match="5 QA scores but 4 evidence lists"):
        chunk_qa_rewards(scores, evidence[:4], 3)


def test_trajectory_rewards_under_evidence_credit() -> None:
    cfg = RewardConfig(beta=0.0, gamma=0.0, call_weight=0.0, qa_credit="evidence")
    terms = trajectory_rewards(
        [1.0, 0.0, 0.0], [[True], [True]], [[1.0], [1.0]], 10, 20, cfg, [[0], [1], [1]]
    )
    assert [t.r1 for t in terms] == [1.0, 0.0]
    assert [t.total for t in terms] == [1.0, 0.0]
    published = trajectory_rewards(
        [1.0, 0.0, 0.0], [[True], [True]], [[1.0], [1.0]], 10, 20, RewardConfig(), [[0], [1], [1]]
    )
    assert [t.r1 for t in published] == pytest.approx([1 / 3, 1 / 3])
    with pytest.raises(ValueError, match="needs the questions' evidence"):
        trajectory_rewards([1.0], [[True]], [[1.0]], 10, 20, cfg)


def test_aim_weight_needs_and_scales_each_chunks_aim() -> None:
    cfg = RewardConfig(beta=0.0, gamma=0.0, call_weight=0.0, aim_weight=0.5)
    with pytest.raises(ValueError, match="aim"):
        trajectory_rewards([1.0], [[True], [True]], [[], []], 10, 20, cfg)
    with pytest.raises(ValueError, match="aim scores"):
        trajectory_rewards([1.0], [[True], [True]], [[], []], 10, 20, cfg, chunk_aims=[1.0])
    first, second = trajectory_rewards(
        [1.0], [[True], [True]], [[], []], 10, 20, cfg, chunk_aims=[1.0, 0.25]
    )
    assert (first.r5, second.r5) == (1.0, 0.25)
    assert first.total == pytest.approx(1.5) and second.total == pytest.approx(1.125)
    unweighted = trajectory_rewards([1.0], [[True]], [[]], 10, 20, RewardConfig(gamma=0.0))
    assert unweighted[0].r5 == 0.0 and unweighted[0].aim_r5 == 0.0  # not asked, not counted
