"""Rollouts and samples with real parts: the rule writer, real SQuAD/TREC instances, the
extractive reader and the rule judge; the reward of every sample checked against SPEC §3."""

from __future__ import annotations

import pytest

from memalpha.agent import RuleWriterLLM, WriterConfig, build_agent
from memalpha.llm import FORMATS, SamplingParams
from memalpha.memory import CallStatus, MemoryConfig, ToolCall
from memalpha.memory.executor import ToolResult
from memalpha.reader import ExtractiveReader, RuleJudge
from memalpha.reward import RewardConfig
from memalpha.rollout import (
    RolloutConfig,
    Scoring,
    holds_stale,
    judged_write,
    rollout,
    score_episodes,
    summarize,
    to_samples,
)

SAMPLED = SamplingParams(temperature=1.0, max_new_tokens=512)


def _agent(counter, prompt="published"):
    return build_agent(WriterConfig(prompt=prompt, max_new_tokens=512), counter)


class RecordingLLM:
    """The rule writer (a real component), recording the temperature each generation was
    asked for, so a test can tell greedy from sampled trajectories."""

    name = "rule-recording"

    def __init__(self) -> None:
        self.rule = RuleWriterLLM(FORMATS["hermes"])
        self.temperature: dict[int, float] = {}  # id(generation) -> its row's temperature
        self.calls = 0

    def generate(self, prompts, sampling):
        self.calls += 1
        out = self.rule.generate(prompts, sampling)
        self.temperature.update({id(g): sampling.row(i).temperature for i, g in enumerate(out)})
        return out

    def close(self) -> None:
        pass


def _rollout(counter, instances, group_size, reward, judge=None, **kw):
    scoring = Scoring(ExtractiveReader(), judge, reward, counter)
    llm = kw.pop("llm", RuleWriterLLM(FORMATS["hermes"]))
    agent = kw.pop("agent", _agent(counter))
    return rollout(agent, llm, SAMPLED, instances, group_size, MemoryConfig(), scoring, **kw)


@pytest.fixture(scope="module")
def instances(real_instances):
    return real_instances(
        ["squad", "trec_coarse"], instances=2, max_tokens=200, chunk_tokens=64, questions=4
    )


def test_one_sample_per_trajectory_and_chunk_with_the_published_reward(counter, instances):
    reward = RewardConfig(beta=0.2, gamma=0.5)
    done = _rollout(counter, instances, 3, reward, RuleJudge())
    trajectories, scores, timings = done.trajectories, done.scores, done.timings
    assert len(trajectories) == 3 * len(instances)
    assert [t.instance.id for t in trajectories[:3]] == [instances[0].id] * 3  # adjacent groups
    assert [t.group for t in trajectories] == [g for g in range(len(instances)) for _ in range(3)]
    samples = to_samples(trajectories, scores)
    assert len(samples) == 3 * sum(len(i.chunks) for i in instances)
    for t_idx, (t, score) in enumerate(zip(trajectories, scores, strict=True)):
        mine = [s for s in samples if s.trajectory == t_idx]
        assert [s.chunk_index for s in mine] == list(range(len(t.instance.chunks)))
        assert all(s.group == t.group for s in mine)
        input_tokens = sum(counter.count(c) for c in t.instance.chunks)
        r1 = sum(score.qa_scores) / len(score.qa_scores)
        r3 = 1 - t.memory.total_tokens / input_tokens
        for s, step, judged in zip(mine, t.episode.steps, score.judge_scores, strict=True):
            r2 = sum(step.successes) / len(step.successes)
            r4 = sum(judged) / len(judged)
            assert s.terms.total == pytest.approx(r1 + r2 + 0.2 * r3 + 0.5 * r4)
            assert s.prompt_ids == step.generation.prompt_ids
            assert s.response_ids == step.generation.token_ids
    assert summarize(trajectories, scores)["r1_qa"] > 0.3  # the rule writer's memories answer
    assert timings.generation > 0 and timings.reader > 0


def test_scoring_returns_values_and_changes_nothing(counter, instances):
    done = _rollout(counter, instances, 2, RewardConfig(beta=0.2, gamma=0.5), RuleJudge())
    before = [t.memory.snapshot() for t in done.trajectories]
    scoring = Scoring(ExtractiveReader(), RuleJudge(), RewardConfig(beta=0.2, gamma=0.5), counter)
    again = score_episodes(done.trajectories, scoring)
    assert again == done.scores  # same inputs, same values: nothing was stored in between
    assert [t.memory.snapshot() for t in done.trajectories] == before


def test_summary_names_trajectory_qa_and_chunk_credit_apart(counter, real_instances):
    squad = real_instances(["squad"], instances=2, max_tokens=600, chunk_tokens=160, questions=8)
    reward = RewardConfig(beta=0.1, gamma=0.5, call_weight=0.25, qa_credit="evidence")
    done = _rollout(counter, squad, 1, reward, RuleJudge())
    summary = summarize(done.trajectories, done.scores)
    terms = [x for s in done.scores for x in s.terms]
    assert summary["r1_qa"] == pytest.approx(sum(s.qa for s in done.scores) / len(done.scores))
    assert summary["r1_chunk"] == pytest.approx(sum(x.r1 for x in terms) / len(terms))
    assert summary["w_r2"] == pytest.approx(0.25 * summary["r2_calls"])
    assert summary["beta_r3"] == pytest.approx(0.1 * summary["r3_compression"])
    assert summary["gamma_r4"] == pytest.approx(0.5 * summary["r4_validity"])


def test_evidence_credit_scores_each_chunk_on_its_own_questions(counter, real_instances):
    # longer SQuAD inputs, so that questions point at different chunks and score differently
    squad = real_instances(["squad"], instances=2, max_tokens=600, chunk_tokens=160, questions=8)
    reward = RewardConfig(beta=0.0, gamma=0.0, call_weight=0.0, qa_credit="evidence")
    done = _rollout(counter, squad, 1, reward)
    for t, score in zip(done.trajectories, done.scores, strict=True):
        for c, terms in enumerate(score.terms):
            mine = [
                q
                for q, qa in zip(score.qa_scores, t.instance.questions, strict=True)
                if c in qa.evidence_chunks or not qa.evidence_chunks
            ]
            expected = sum(mine) / len(mine) if mine else score.qa
            assert terms.r1 == pytest.approx(expected) and terms.total == pytest.approx(expected)
    # the credit is really per chunk: some chunk's r1 differs from its trajectory's
    assert any(terms.r1 != pytest.approx(s.qa) for s in done.scores for terms in s.terms)


def test_greedy_anchor_leads_every_group(counter, instances):
    # one agent, two samplings: the greedy trajectory must be each group's first
    llm = RecordingLLM()
    done = _rollout(counter, instances, 3, RewardConfig(), llm=llm, greedy_anchor=True)
    trajectories = done.trajectories
    assert len(trajectories) == 3 * len(instances)
    for g, inst in enumerate(instances):
        group = trajectories[3 * g : 3 * g + 3]
        assert [t.instance.id for t in group] == [inst.id] * 3
        assert [t.group for t in group] == [g] * 3
        assert [t.greedy for t in group] == [True, False, False]
        temps = [llm.temperature[id(t.episode.steps[0].generation)] for t in group]
        assert temps == [0.0, 1.0, 1.0]  # the anchor was decoded greedily, the others sampled
        assert all(s.terms for s in done.scores[3 * g : 3 * g + 3])  # scored like any other
    # anchors and samples share each chunk index's one batch (they took a call of their own)
    assert llm.calls == max(len(i.chunks) for i in instances)


def test_greedy_anchor_needs_a_sampled_rollout_beside_it():
    with pytest.raises(ValueError, match="greedy_anchor needs group_size >= 2"):
        RolloutConfig(group_size=1, greedy_anchor=True)
    assert RolloutConfig(group_size=2, greedy_anchor=True).greedy_anchor


def test_compact_prompt_is_shorter_and_the_rule_writer_still_works(counter, instances):
    trajectories = {}
    for name in ("published", "compact"):
        done = _rollout(counter, instances[:1], 1, RewardConfig(), agent=_agent(counter, name))
        trajectories[name] = done.trajectories
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


def test_stale_credit_pays_only_memories_that_overwrote_the_old_value(counter, real_instances):
    cr = real_instances(
        ["synth_cr"], instances=2, max_tokens=512, chunk_tokens=128, questions=6, facts=6
    )
    plain = _rollout(counter, cr, 1, RewardConfig(beta=0.0, gamma=0.0, call_weight=0.0))
    strict = RewardConfig(beta=0.0, gamma=0.0, call_weight=0.0, stale_credit=0.0)
    scoring = Scoring(ExtractiveReader(), None, strict, counter)
    again = score_episodes(plain.trajectories, scoring)
    stale = 0
    for t, before, after in zip(plain.trajectories, plain.scores, again, strict=True):
        for qa, b, a in zip(t.instance.questions, before.qa_scores, after.qa_scores, strict=True):
            held = holds_stale(t.memory.contents(), qa)
            stale += held
            assert a == (0.0 if held else b)
    # the rule writer stores the old fact beside the update: every changed fact is stale
    assert stale == sum(len(i.questions) for i in cr)
    assert all(s.qa == 0.0 for s in again)
    # the selective teacher (shown the entries BM25 ranks highest, as in its recipe)
    # overwrites: under the same reward its memories still answer
    view = MemoryConfig(view={"mode": "retrieved", "k": 8})
    agent = build_agent(WriterConfig(prompt="compact", max_new_tokens=640, memory=view), counter)
    teacher = RuleWriterLLM(FORMATS["hermes"], selective=True)
    selective = rollout(agent, teacher, SAMPLED, cr, 1, view, scoring)
    held = [
        holds_stale(t.memory.contents(), qa)
        for t in selective.trajectories
        for qa in t.instance.questions
    ]
    assert sum(held) <= len(held) // 4
    assert summarize(selective.trajectories, selective.scores)["r1_qa"] > 0.3


def test_fate_scores_conflict_questions_by_what_the_memory_holds(counter, real_instances):
    """`cr_score: fate` scores a question with overwritten values by the fraction of them the
    memory holds overwritten: 0 for the rule writer (it keeps old beside new), the teacher's
    fates for the selective teacher, including the multi-hop questions the extractive reader
    scores 0 from any memory; questions without changes still go to the reader."""
    cr = real_instances(
        ["synth_cr"], instances=2, max_tokens=512, chunk_tokens=128, questions=6, facts=6
    )
    ar = real_instances(
        ["synth_ar"], instances=1, max_tokens=512, chunk_tokens=128, questions=4, facts=4
    )
    base = RewardConfig(beta=0.0, gamma=0.0, call_weight=0.0)
    fate = base.model_copy(update={"cr_score": "fate"})
    view = MemoryConfig(view={"mode": "retrieved", "k": 8})
    agent = build_agent(WriterConfig(prompt="compact", max_new_tokens=640, memory=view), counter)
    teacher = RuleWriterLLM(FORMATS["hermes"], selective=True)
    by_reader = rollout(
        agent, teacher, SAMPLED, cr + ar, 1, view, Scoring(ExtractiveReader(), None, base, counter)
    )
    by_fate = score_episodes(
        by_reader.trajectories, Scoring(ExtractiveReader(), None, fate, counter)
    )
    reader_zero_fate_one = 0
    for t, old, new in zip(by_reader.trajectories, by_reader.scores, by_fate, strict=True):
        contents = t.memory.contents()
        for qa, a, b in zip(t.instance.questions, old.qa_scores, new.qa_scores, strict=True):
            if not qa.superseded:
                assert b == a  # answered by the reader, as before
                continue
            fates = [s.fate(contents) for s in qa.superseded]
            assert b == sum(f == "overwritten" for f in fates) / len(fates)
            reader_zero_fate_one += a == 0.0 and b == 1.0
    assert reader_zero_fate_one > 0  # signal the reader gave none for
    rule = _rollout(counter, cr, 1, fate)
    assert all(s == 0.0 for ep in rule.scores for s in ep.qa_scores)
