"""Rollouts for training and validation: instances × G trajectories advanced in lock-step by the
memory agent, scored with the reward of MEMALPHA_SPEC §3, and cut into training samples, one per
(trajectory, chunk) as published (§4.1).

The same code serves the local trainer, validation and the verl reward: only the LLM and the
sampling handed to the agent differ. Records go one way and are never filled in later:
`run_episodes` → `Trajectory` (its group known from creation) → `score_episodes` (pure: returns
an `EpisodeScore` per memory) → `to_samples` → `Sample`, the one record the update consumes.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from memalpha import metrics
from memalpha.agent import ChunkStep, Episode, MemoryAgent
from memalpha.aim import episode_aim
from memalpha.data import QA, Instance
from memalpha.llm import LLM, SamplingParams
from memalpha.memory import Memory, MemoryConfig, MemorySnapshot, ToolResult, parse_component
from memalpha.reader import Judge, Question, Reader, query_prompt
from memalpha.reward import (
    RewardConfig,
    RewardTerms,
    fate_score,
    qa_reward,
    stale_adjusted,
    trajectory_rewards,
)
from memalpha.tokens import TokenCounter

JUDGED_TOOLS = {"new_memory_insert": "content", "memory_update": "new_content"}


class RolloutConfig(BaseModel):
    """How trajectories are sampled."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instances_per_step: int = Field(32, ge=1, description="Instances per step; published 32.")
    group_size: int = Field(8, ge=1, description="Rollouts per instance (G); published 8.")
    temperature: float = Field(1.0, ge=0, description="Sampling temperature; published 1.0.")
    top_p: float = Field(1.0, gt=0, le=1)
    max_new_tokens: int = Field(2048, ge=1, description="Writer budget per chunk; published 2048.")
    greedy_anchor: bool = Field(
        False,
        description="Decode the first of every instance's G rollouts greedily (not published). "
        "The group then always holds the policy's own mode, so samples are compared with what "
        "greedy decoding writes: the mode is pushed down where a sample beats it and up where "
        "it beats the samples.",
    )
    max_id_offset: int = Field(
        0,
        ge=0,
        description="Number each instance's memory entries from a random offset in [0, this] "
        "+ 1, drawn from the step's seed, the same for the instance's G rollouts (not "
        "published). Why: a memory built from a long input shows ids in the hundreds, which "
        "training on short inputs never does (what that changes: benchmarks/RESULTS.md, "
        '"What the writer does at a change, from a perfect memory"). Local trainer only.',
    )
    engine: Literal["transformers", "vllm"] = Field(
        "transformers",
        description="What generates rollouts: the trained policy's own transformers model, or "
        "vLLM in process (memalpha[vllm]) with the new weights put in after every update.",
    )
    engine_max_model_len: int = Field(
        4096, ge=256, description="vllm: prompt + response tokens per sequence."
    )
    engine_memory_utilization: float = Field(
        0.2,
        gt=0,
        le=1,
        description="vllm: share of the device's memory it reserves (GPU memory; RAM on CPU).",
    )

    @model_validator(mode="after")
    def _anchor_leaves_samples(self) -> RolloutConfig:
        if self.greedy_anchor and self.group_size < 2:
            raise ValueError("rollout.greedy_anchor needs group_size >= 2 (one greedy, 1+ sampled)")
        return self


@dataclass(frozen=True, slots=True)
class Trajectory:
    """One memory built from one instance. `group` is the index of its instance in the batch:
    the G trajectories of an instance share it (the GRPO group, `ppo.group_by: instance`)."""

    group: int
    instance: Instance
    memory: Memory
    episode: Episode
    greedy: bool = False  # decoded at temperature 0 (the greedy anchor of its group)

    @property
    def calls(self) -> list[list[ToolResult]]:
        """Each chunk's calls as executed (what r2 and r4 are made of)."""
        return [step.results for step in self.episode.steps]


class Written(Protocol):
    """What scoring needs of an episode: its instance, final memory and each chunk's calls
    (a `Trajectory`, or verl's record of one)."""

    @property
    def instance(self) -> Instance: ...

    @property
    def memory(self) -> Memory: ...

    @property
    def calls(self) -> list[list[ToolResult]]: ...


@dataclass(frozen=True, slots=True)
class EpisodeScore:
    """The reward of one episode: each question's QA score and each chunk's reward terms."""

    qa_scores: tuple[float, ...]
    judge_scores: tuple[tuple[float, ...], ...]  # per chunk, per call
    terms: tuple[RewardTerms, ...]  # per chunk

    @property
    def qa(self) -> float:
        """The trajectory's QA score: the mean over its questions (logged as `r1_qa`). A
        chunk's r1 (`terms[t].r1`, logged as `r1_chunk`) equals it unless evidence credit
        is on."""
        return qa_reward(list(self.qa_scores))


@dataclass(frozen=True, slots=True)
class Scoring:
    """The fixed parts of the reward: reader (r1), judge (r4; None: r4 = 0), weights, and the
    token counter r3 compares memory and input with."""

    reader: Reader
    judge: Judge | None
    reward: RewardConfig
    counter: TokenCounter


@dataclass(frozen=True, slots=True)
class Sample:
    """One training sample: the exact prompt ids of one chunk, the exact generation that
    answered it (ids, behaviour log-probs) and its reward terms."""

    group: int
    trajectory: int  # index of the trajectory in its batch
    chunk_index: int
    prompt_ids: tuple[int, ...]
    response_ids: tuple[int, ...]
    old_logprobs: tuple[float, ...] | None
    terms: RewardTerms
    finish_reason: str


@dataclass(slots=True)
class Timings:
    """Seconds spent per phase of a rollout (what `benchmarks/train_step.py` reports)."""

    generation: float = 0.0
    reader: float = 0.0
    judge: float = 0.0


@dataclass(frozen=True, slots=True)
class Rollout:
    """A scored rollout batch: trajectories, their scores (same order) and phase times."""

    trajectories: list[Trajectory]
    scores: list[EpisodeScore]
    timings: Timings


def run_episodes(
    agent: MemoryAgent,
    llm: LLM,
    sampling: SamplingParams,
    instances: list[Instance],
    group_size: int,
    memory_config: MemoryConfig,
    counter: TokenCounter,
    greedy_anchor: bool = False,
    id_offsets: Sequence[int] | None = None,
) -> list[Trajectory]:
    """Every instance `group_size` times, all trajectories chunk by chunk in lock-step; with
    `id_offsets` (one per instance) each instance's memories number entries from its offset + 1.

    Trajectories of one instance are adjacent (instance i owns trajectories i·G … i·G+G−1, all
    of group i). With `greedy_anchor`, the first of each instance's G is decoded greedily, in
    the same lock-step batches as the samples (`SamplingParams.greedy_rows`).
    """
    batch = [(g, inst) for g, inst in enumerate(instances) for _ in range(group_size)]
    greedy = [greedy_anchor and k % group_size == 0 for k in range(len(batch))]
    offsets = id_offsets or [0] * len(instances)
    memories = [fresh_memory(memory_config, counter, offsets[g]) for g, _ in batch]
    runs = agent.memorize_many(
        llm, sampling, memories, [inst.chunks for _, inst in batch], greedy=greedy
    )
    return [
        Trajectory(g, inst, m, e, greedy=flag)
        for (g, inst), m, e, flag in zip(batch, memories, runs, greedy, strict=True)
    ]


def id_offsets(instances: int, max_offset: int, seed: int) -> list[int]:
    """One entry-id offset per instance, uniform in [0, `max_offset`], from `seed`
    (`RolloutConfig.max_id_offset`); all zeros when `max_offset` is 0."""
    rng = random.Random(seed)
    return [rng.randint(0, max_offset) if max_offset else 0 for _ in range(instances)]


def fresh_memory(config: MemoryConfig, counter: TokenCounter, id_offset: int = 0) -> Memory:
    """An empty memory whose semantic and episodic entries are numbered from `id_offset` + 1."""
    memory = Memory(config, counter)
    if id_offset:
        first = {kind: id_offset + 1 for kind in ("semantic", "episodic")}
        memory.restore(MemorySnapshot("", (), (), first))
    return memory


def judged_write(result: ToolResult) -> tuple[str, str] | None:
    """The (memory kind, content) a call wrote, or None when it scores 0 without a judge.

    Published rules (SPEC §3.4): only inserts and updates with a known memory type and non-empty
    content are judged; deletes, unknown tools and malformed arguments score 0. Success is
    ignored, so failed calls are judged on their text.
    """
    key = JUDGED_TOOLS.get(result.call.name)
    args = result.call.arguments
    if key is None or not isinstance(args, dict):
        return None
    content = args.get(key)
    try:
        kind = parse_component(str(args.get("memory_type", "")))
    except ValueError:  # unknown memory type: a 0, as published
        return None
    if not isinstance(content, str) or not content.strip():
        return None
    return kind.value, content


def holds_stale(contents: list[str], qa: QA) -> bool:
    """Whether a memory's `contents` (`Memory.contents()`) still state a value the input
    overwrote that `qa` depends on."""
    return any(s.fate(contents) in ("both", "old") for s in qa.superseded)


def _qa_scores(
    written: list[Written], reader: Reader, reward: RewardConfig
) -> list[tuple[float, ...]]:
    """Every question of every memory, answered in one reader call (one batch for LLMs), each
    score scaled by `stale_credit` where the memory still holds a value the input overwrote;
    under `cr_score: fate` a question with overwritten values is scored by their fate instead
    (and not sent to the reader)."""
    by_fate = reward.cr_score == "fate"
    questions = [
        Question(w.memory, qa.question, query_prompt(w.instance.data_source))
        for w in written
        for qa in w.instance.questions
        if not (by_fate and qa.superseded)
    ]
    answers = iter(reader.answer(questions) if questions else [])

    def score(w: Written, qa: QA, contents: list[str]) -> float:
        if by_fate and qa.superseded:
            return fate_score([s.fate(contents) for s in qa.superseded])
        return stale_adjusted(
            metrics.score(w.instance.metric, next(answers).text, qa.answers),
            reward.stale_credit < 1 and holds_stale(contents, qa),
            reward.stale_credit,
        )

    def scores_of(w: Written) -> tuple[float, ...]:
        # a memory's text is read once, and only where some question depends on a change
        changed = any(qa.superseded for qa in w.instance.questions)
        contents = w.memory.contents() if changed else []
        return tuple(score(w, qa, contents) for qa in w.instance.questions)

    return [scores_of(w) for w in written]


def _judge_scores(written: list[Written], judge: Judge | None) -> list[list[tuple[float, ...]]]:
    """Per memory, per chunk, per call: the judge's verdict on what the call wrote (0 for a
    call that wrote nothing judgeable, and for every call without a judge)."""
    writes = [[[judged_write(r) for r in chunk] for chunk in w.calls] for w in written]
    flat = [x for mem in writes for chunk in mem for x in chunk if x is not None]
    verdicts = iter(judge.judge(flat) if judge is not None and flat else [])
    return [
        [
            tuple(next(verdicts) if judge is not None and x is not None else 0.0 for x in chunk)
            for chunk in mem
        ]
        for mem in writes
    ]


def _aim_scores(written: list[Written], scoring: Scoring) -> list[list[float]]:
    """Per memory, per chunk: r5, the aim of its update and delete calls (`memalpha.aim`),
    under `reward.aim_quiet` and `reward.aim_misses`."""
    reward = scoring.reward
    return [
        [
            a.aim_score(reward)
            for a in episode_aim(
                w.instance, w.calls, w.memory.config, scoring.counter, reward.deletes_need_new
            )
        ]
        for w in written
    ]


def score_episodes(
    written: list[Written], scoring: Scoring, timings: Timings | None = None
) -> list[EpisodeScore]:
    """The reward of every episode: QA scores (r1), judge scores (r4), aim (r5) and each
    chunk's terms.

    All questions go to the reader in one call and all writes to the judge in one call, so
    batched backends see the whole step at once. Without a judge (γ = 0) r4 is 0. Nothing is
    changed: the local trainer and verl's reward function both call this and get values.
    """
    timings = timings if timings is not None else Timings()
    start = time.perf_counter()
    qa = _qa_scores(written, scoring.reader, scoring.reward)
    timings.reader += time.perf_counter() - start
    start = time.perf_counter()
    judged = _judge_scores(written, scoring.judge)
    aims = _aim_scores(written, scoring)
    timings.judge += time.perf_counter() - start
    out = []
    for w, qa_scores, judge_scores, chunk_aims in zip(written, qa, judged, aims, strict=True):
        terms = trajectory_rewards(
            list(qa_scores),
            [[r.ok for r in chunk] for chunk in w.calls],
            [list(j) for j in judge_scores],
            w.memory.total_tokens,
            max(1, sum(scoring.counter.count_many(w.instance.chunks))),
            scoring.reward,
            [qa.evidence_chunks for qa in w.instance.questions],
            chunk_aims,
        )
        out.append(EpisodeScore(qa_scores, tuple(judge_scores), tuple(terms)))
    return out


def step_sample(group: int, trajectory: int, step: ChunkStep, terms: RewardTerms) -> Sample:
    """The training sample of one chunk step: its exact prompt and sampled ids and the
    behaviour log-probs, as generated, with the reward terms it is credited with."""
    gen = step.generation
    return Sample(
        group,
        trajectory,
        step.index,
        gen.prompt_ids,
        gen.token_ids,
        gen.logprobs,
        terms,
        gen.finish_reason,
    )


def to_samples(trajectories: list[Trajectory], scores: list[EpisodeScore]) -> list[Sample]:
    """One sample per (trajectory, chunk) (`step_sample`)."""
    return [
        step_sample(t.group, i, step, terms)
        for i, (t, score) in enumerate(zip(trajectories, scores, strict=True))
        for step, terms in zip(t.episode.steps, score.terms, strict=True)
    ]


def with_old_logprobs(sample: Sample, logprobs: tuple[float, ...]) -> Sample:
    """The sample with behaviour log-probs computed after sampling (greedy anchors, top-p)."""
    return replace(sample, old_logprobs=logprobs)


def _mean(values: list[float]) -> float:
    return sum(values) / max(1, len(values))


def summarize(trajectories: list[Trajectory], scores: list[EpisodeScore]) -> dict[str, float]:
    """Means of the reward terms and memory statistics over a batch (for logs and plots).

    `r1_qa` is the trajectory QA score; `r1_chunk` the r1 each chunk sample was credited
    with (equal unless `reward.qa_credit: evidence`); the weighted terms beside the raw ones.
    """
    terms = [term for s in scores for term in s.terms]
    calls = [r for t in trajectories for chunk in t.calls for r in chunk]
    gens = [s.generation for t in trajectories for s in t.episode.steps]
    return {
        "reward": _mean([x.total for x in terms]),
        "r1_qa": _mean([s.qa for s in scores]),
        "r1_chunk": _mean([x.r1 for x in terms]),
        "r2_calls": _mean([x.r2 for x in terms]),
        "r3_compression": _mean([x.r3 for x in terms]),
        "r4_validity": _mean([x.r4 for x in terms]),
        "r5_aim": _mean([x.r5 for x in terms]),
        "w_r2": _mean([x.w_r2 for x in terms]),
        "beta_r3": _mean([x.beta_r3 for x in terms]),
        "gamma_r4": _mean([x.gamma_r4 for x in terms]),
        "aim_r5": _mean([x.aim_r5 for x in terms]),
        "memory_tokens": _mean([t.memory.total_tokens for t in trajectories]),
        "calls_per_chunk": len(calls) / max(1, len(terms)),
        "call_success": _mean([r.ok for r in calls]),
        "response_tokens": _mean([len(g.token_ids) for g in gens]),
        "truncated": _mean([g.finish_reason == "length" for g in gens]),
        "looped": _mean([g.finish_reason == "loop" for g in gens]),
    }


def by_source(trajectories: list[Trajectory], scores: list[EpisodeScore]) -> dict[str, float]:
    """Mean trajectory QA score (r1_qa) per data source."""
    groups: dict[str, list[float]] = {}
    for t, s in zip(trajectories, scores, strict=True):
        groups.setdefault(t.instance.data_source, []).append(s.qa)
    return {src: sum(v) / len(v) for src, v in sorted(groups.items())}


def anchor_stats(trajectories: list[Trajectory], scores: list[EpisodeScore]) -> dict[str, float]:
    """With greedy anchors: their mean QA score, and the share of sampled rollouts that beat /
    fall below their group's anchor on it (only samples that beat it show a better writer)."""
    anchors = {t.group: s.qa for t, s in zip(trajectories, scores, strict=True) if t.greedy}
    if not anchors:
        return {}
    diffs = [
        s.qa - anchors[t.group] for t, s in zip(trajectories, scores, strict=True) if not t.greedy
    ]
    n = max(1, len(diffs))
    return {
        "anchor_r1": sum(anchors.values()) / len(anchors),
        "samples_above_anchor": sum(d > 1e-9 for d in diffs) / n,
        "samples_below_anchor": sum(d < -1e-9 for d in diffs) / n,
    }


def rollout(
    agent: MemoryAgent,
    llm: LLM,
    sampling: SamplingParams,
    instances: list[Instance],
    group_size: int,
    memory_config: MemoryConfig,
    scoring: Scoring,
    greedy_anchor: bool = False,
    id_offsets: Sequence[int] | None = None,
) -> Rollout:
    """Run and score `group_size` trajectories per instance (the first greedy with
    `greedy_anchor`, entries numbered from `id_offsets`); time each phase."""
    timings = Timings()
    start = time.perf_counter()
    trajectories = run_episodes(
        agent,
        llm,
        sampling,
        instances,
        group_size,
        memory_config,
        scoring.counter,
        greedy_anchor,
        id_offsets,
    )
    timings.generation = time.perf_counter() - start
    return Rollout(trajectories, score_episodes(trajectories, scoring, timings), timings)
