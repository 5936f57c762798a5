"""Rollouts and samples with real parts: the rule writer, real SQuAD/TREC instances, the
extractive reader and the rule judge; the reward of every sample checked against SPEC §3."""

from __future__ import annotations

import pytest

from memalpha.agent import MemoryAgent, RuleWriterLLM
from memalpha.llm import FORMATS, SamplingParams
from memalpha.memory import CallStatus, MemoryConfig, ToolCall, ToolExecutor, ToolRegistry
from memalpha.memory.executor import ToolResult
from memalpha.reader import ExtractiveReader, RuleJudge
from memalpha.reward import RewardConfig
from memalpha.rollout import RolloutConfig, judged_write, rollout, summarize, to_samples


def _agent(counter, prompt="published"):
    fmt = FORMATS["hermes"]
    return MemoryAgent(
        RuleWriterLLM(fmt),
        fmt,
        ToolExecutor(ToolRegistry(frozenset())),
        MemoryConfig().view,
        SamplingParams(max_new_tokens=512),
        counter.count,
        prompt,
    )


@pytest.fixture(scope="module")
def instances(real_instances):
    return real_instances(
        ["squad", "trec_coarse"], instances=2, max_tokens=200, chunk_tokens=64, questions=4
    )


def test_one_sample_per_trajectory_and_chunk_with_the_published_reward(counter, instances):
    reward = RewardConfig(beta=0.2, gamma=0.5)
    trajectories, timings = rollout(
        _agent(counter),
        instances,
        3,
        MemoryConfig(),
        counter,
        ExtractiveReader(),
        RuleJudge(),
        reward,
    )
    assert len(trajectories) == 3 * len(instances)
    assert [t.instance.id for t in trajectories[:3]] == [instances[0].id] * 3  # adjacent groups
    samples = to_samples(trajectories)
    assert len(samples) == 3 * sum(len(i.chunks) for i in instances)
    for t_idx, t in enumerate(trajectories):
        mine = [s for s in samples if s.trajectory == t_idx]
        assert [s.chunk_index for s in mine] == list(range(len(t.instance.chunks)))
        input_tokens = sum(counter.count(c) for c in t.instance.chunks)
        r1 = sum(t.qa_scores) / len(t.qa_scores)
        r3 = 1 - t.memory.total_tokens / input_tokens
        for s, step, judged in zip(mine, t.episode.steps, t.judge_scores, strict=True):
            r2 = sum(step.successes) / len(step.successes)
            r4 = sum(judged) / len(judged)
            assert s.terms.total == pytest.approx(r1 + r2 + 0.2 * r3 + 0.5 * r4)
            assert s.messages == step.messages and s.response_ids == step.generation.token_ids
    assert summarize(trajectories)["r1_qa"] > 0.3  # the rule writer's memories answer questions
    assert timings.generation > 0 and timings.reader > 0


def test_evidence_credit_scores_each_chunk_on_its_own_questions(counter, real_instances):
    # longer SQuAD inputs, so that questions point at different chunks and score differently
    squad = real_instances(["squad"], instances=2, max_tokens=600, chunk_tokens=160, questions=8)
    reward = RewardConfig(beta=0.0, gamma=0.0, call_weight=0.0, qa_credit="evidence")
    trajectories, _ = rollout(
        _agent(counter), squad, 1, MemoryConfig(), counter, ExtractiveReader(), None, reward
    )
    for t in trajectories:
        for c, terms in enumerate(t.terms):
            mine = [
                score
                for score, qa in zip(t.qa_scores, t.instance.questions, strict=True)
                if c in qa.evidence_chunks or not qa.evidence_chunks
            ]
            expected = sum(mine) / len(mine) if mine else t.r1
            assert terms.r1 == pytest.approx(expected) and terms.total == pytest.approx(expected)
    # the credit is really per chunk: some chunk's r1 differs from its trajectory's
    assert any(terms.r1 != pytest.approx(t.r1) for t in trajectories for terms in t.terms)


def test_greedy_anchor_leads_every_group(counter, instances):
    # two agents told apart by their prompts: the anchor's trajectory must be each group's first
    trajectories, _ = rollout(
        _agent(counter),
        instances,
        3,
        MemoryConfig(),
        counter,
        ExtractiveReader(),
        None,
        RewardConfig(),
        anchor=_agent(counter, "compact"),
    )
    assert len(trajectories) == 3 * len(instances)
    for g, inst in enumerate(instances):
        group = trajectories[3 * g : 3 * g + 3]
        assert [t.instance.id for t in group] == [inst.id] * 3
        assert [t.greedy for t in group] == [True, False, False]
        first = [str(t.episode.steps[0].messages) for t in group]
        assert first[1] == first[2] and len(first[0]) < len(first[1]) / 2  # compact = anchor
        assert all(t.terms for t in group)  # scored like any other rollout


def test_greedy_anchor_needs_a_sampled_rollout_beside_it():
    with pytest.raises(ValueError, match="greedy_anchor needs group_size >= 2"):
        RolloutConfig(group_size=1, greedy_anchor=True)
    assert RolloutConfig(group_size=2, greedy_anchor=True).greedy_anchor


def test_compact_prompt_is_shorter_and_the_rule_writer_still_works(counter, instances):
    published, compact = _agent(counter), _agent(counter, "compact")
    trajectories = {}
    for name, agent in (("published", published), ("compact", compact)):
        trajectories[name], _ = rollout(
            agent,
            instances[:1],
            1,
            MemoryConfig(),
            counter,
            ExtractiveReader(),
            None,
            RewardConfig(),
        )
    lengths = {
        k: counter.count(str(t[0].episode.steps[1].messages)) for k, t in trajectories.items()
    }
    assert lengths["compact"] < lengths["published"] / 2
    assert (
        trajectories["compact"][0].memory.snapshot()
        == trajectories["published"][0].memory.snapshot()
    )


def _result(name, args):
    return ToolResult(ToolCall(name, args), CallStatus.OK)


def test_judged_writes_follow_the_published_rules():
    insert = {"memory_type": "semantic_memory", "content": "Paris is in France."}
    assert judged_write(_result("new_memory_insert", insert)) == ("semantic", "Paris is in France.")
    update = {"memory_type": "core_memory", "new_content": "User likes tea."}
    assert judged_write(_result("memory_update", update)) == ("core", "User likes tea.")
    assert (
        judged_write(
            _result("memory_delete", {"memory_type": "semantic_memory", "memory_id": "s1"})
        )
        is None
    )  # deletes score 0
    assert (
        judged_write(_result("new_memory_insert", {"memory_type": "nope", "content": "x"})) is None
    )
    assert judged_write(_result("new_memory_insert", {**insert, "content": "  "})) is None
    assert judged_write(_result("new_memory_insert", "{not json")) is None


def test_rule_judge():
    j = RuleJudge()
    assert j.judge(
        [
            ("core", "The core memory has been updated."),
            ("core", "User is a nurse who likes hiking."),
            ("episodic", "The user went hiking."),
            ("episodic", "On 2024-05-01 the user went hiking."),
            ("semantic", "Paris is in France."),
            ("semantic", "Paris"),
        ]
    ) == [0.0, 1.0, 0.0, 1.0, 1.0, 0.0]
