"""Rollouts for training and validation: instances × G trajectories advanced in lock-step by the
memory agent, scored with the reward of MEMALPHA_SPEC §3, and cut into training samples, one per
(trajectory, chunk) as published (§4.1).

The same code serves the local trainer, validation and the verl agent loop: only the policy
behind the agent and the sampling differ.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from memalpha import metrics
from memalpha.agent import Episode, MemoryAgent
from memalpha.data import Instance
from memalpha.llm import Message
from memalpha.memory import Memory, MemoryConfig, ToolResult, parse_component
from memalpha.reader import Answer, Question, query_prompt
from memalpha.reward import RewardConfig, RewardTerms, qa_reward, trajectory_rewards
from memalpha.tokens import TokenCounter

JUDGED_TOOLS = {"new_memory_insert": "content", "memory_update": "new_content"}


class Reader(Protocol):
    """Answers questions from memories (RagReader, ExtractiveReader)."""

    def answer(self, questions: list[Question]) -> list[Answer]: ...


class Judge(Protocol):
    """Scores (memory kind, content) writes in [0, 1] (ContentJudge, RuleJudge)."""

    def judge(self, writes: list[tuple[str, str]]) -> list[float]: ...


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

    @model_validator(mode="after")
    def _anchor_leaves_samples(self) -> RolloutConfig:
        if self.greedy_anchor and self.group_size < 2:
            raise ValueError("rollout.greedy_anchor needs group_size >= 2 (one greedy, 1+ sampled)")
        return self


@dataclass(slots=True)
class Trajectory:
    """One memory built from one instance, and everything its reward is made of."""

    instance: Instance
    memory: Memory
    episode: Episode
    qa_scores: list[float] = field(default_factory=list)
    judge_scores: list[list[float]] = field(default_factory=list)  # per chunk, per call
    terms: list[RewardTerms] = field(default_factory=list)  # per chunk
    greedy: bool = False  # decoded at temperature 0 (the greedy anchor of its group)

    @property
    def r1(self) -> float:
        return qa_reward(self.qa_scores)


@dataclass(frozen=True, slots=True)
class Sample:
    """One training sample: the prompt of one chunk and the exact generation that answered it."""

    instance_id: str
    trajectory: int  # index of the trajectory in its batch
    chunk_index: int
    messages: list[Message]
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


def run_episodes(
    agent: MemoryAgent,
    instances: list[Instance],
    group_size: int,
    memory_config: MemoryConfig,
    counter: TokenCounter,
    anchor: MemoryAgent | None = None,
) -> list[Trajectory]:
    """Every instance `group_size` times, all trajectories chunk by chunk in lock-step.

    Trajectories of one instance are adjacent (instance i owns trajectories i·G … i·G+G−1).
    With an `anchor` agent (greedy decoding), the first of each instance's G is the anchor's,
    written in its own lock-step batch since a batch shares one sampling setting.
    """
    sampled = group_size - (anchor is not None)

    def episodes(who: MemoryAgent, copies: int, greedy: bool) -> list[Trajectory]:
        batch = [inst for inst in instances for _ in range(copies)]
        memories = [Memory(memory_config, counter) for _ in batch]
        runs = who.memorize_many(memories, [inst.chunks for inst in batch])
        return [
            Trajectory(i, m, e, greedy=greedy)
            for i, m, e in zip(batch, memories, runs, strict=True)
        ]

    samples = episodes(agent, sampled, greedy=False)
    if anchor is None:
        return samples
    anchors = episodes(anchor, 1, greedy=True)
    return [
        t for i, a in enumerate(anchors) for t in (a, *samples[i * sampled : (i + 1) * sampled])
    ]


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


def score_trajectories(
    trajectories: list[Trajectory],
    reader: Reader,
    judge: Judge | None,
    reward: RewardConfig,
    counter: TokenCounter,
    timings: Timings | None = None,
) -> None:
    """Fill in QA scores (r1), judge scores (r4) and every sample's reward terms, in place.

    All questions of all trajectories go to the reader in one call, and all writes to the judge
    in one call, so batched backends see the whole step at once. Without a judge (γ = 0) r4 is 0.
    """
    timings = timings or Timings()
    questions = [
        Question(t.memory, qa.question, query_prompt(t.instance.data_source))
        for t in trajectories
        for qa in t.instance.questions
    ]
    start = time.perf_counter()
    answers = iter(reader.answer(questions))
    timings.reader += time.perf_counter() - start
    for t in trajectories:
        t.qa_scores = [
            metrics.score(t.instance.metric, next(answers).text, qa.answers)
            for qa in t.instance.questions
        ]
    writes = [[judged_write(r) for r in s.results] for t in trajectories for s in t.episode.steps]
    flat = [w for chunk in writes for w in chunk if w is not None]
    start = time.perf_counter()
    verdicts = iter(judge.judge(flat) if judge is not None and flat else [])
    timings.judge += time.perf_counter() - start
    per_chunk = iter(
        [(next(verdicts) if judge is not None and w is not None else 0.0) for w in chunk]
        for chunk in writes
    )
    for t in trajectories:
        t.judge_scores = [next(per_chunk) for _ in t.episode.steps]
        t.terms = trajectory_rewards(
            t.qa_scores,
            [s.successes for s in t.episode.steps],
            t.judge_scores,
            t.memory.total_tokens,
            max(1, sum(counter.count_many(t.instance.chunks))),
            reward,
            [qa.evidence_chunks for qa in t.instance.questions],
        )


def to_samples(trajectories: list[Trajectory]) -> list[Sample]:
    """One sample per (trajectory, chunk), carrying the exact sampled ids and their logprobs."""
    return [
        Sample(
            t.instance.id,
            i,
            step.index,
            step.messages,
            step.generation.token_ids,
            step.generation.logprobs,
            terms,
            step.generation.finish_reason,
        )
        for i, t in enumerate(trajectories)
        for step, terms in zip(t.episode.steps, t.terms, strict=True)
    ]


def summarize(trajectories: list[Trajectory]) -> dict[str, float]:
    """Means of the reward terms and memory statistics over a batch (for logs and plots)."""
    samples = [term for t in trajectories for term in t.terms]
    calls = [r for t in trajectories for s in t.episode.steps for r in s.results]
    gens = [s.generation for t in trajectories for s in t.episode.steps]
    n, m = max(1, len(samples)), max(1, len(trajectories))
    return {
        "reward": sum(s.total for s in samples) / n,
        "r1_qa": sum(t.r1 for t in trajectories) / m,
        "r2_calls": sum(s.r2 for s in samples) / n,
        "r3_compression": sum(s.r3 for s in samples) / n,
        "r4_validity": sum(s.r4 for s in samples) / n,
        "memory_tokens": sum(t.memory.total_tokens for t in trajectories) / m,
        "calls_per_chunk": len(calls) / n,
        "call_success": sum(r.ok for r in calls) / max(1, len(calls)),
        "response_tokens": sum(len(g.token_ids) for g in gens) / max(1, len(gens)),
        "truncated": sum(g.finish_reason == "length" for g in gens) / max(1, len(gens)),
    }


def by_source(trajectories: list[Trajectory]) -> dict[str, float]:
    """Mean QA score (r1) per data source."""
    groups: dict[str, list[float]] = {}
    for t in trajectories:
        groups.setdefault(t.instance.data_source, []).append(t.r1)
    return {src: sum(v) / len(v) for src, v in sorted(groups.items())}


def anchor_stats(trajectories: list[Trajectory], group_size: int) -> dict[str, float]:
    """With greedy anchors: their mean r1, and the share of sampled rollouts that beat / fall
    below their group's anchor on r1 (only samples that beat it show a better writer)."""
    anchors = {i // group_size: t.r1 for i, t in enumerate(trajectories) if t.greedy}
    if not anchors:
        return {}
    diffs = [t.r1 - anchors[i // group_size] for i, t in enumerate(trajectories) if not t.greedy]
    n = max(1, len(diffs))
    return {
        "anchor_r1": sum(anchors.values()) / len(anchors),
        "samples_above_anchor": sum(d > 1e-9 for d in diffs) / n,
        "samples_below_anchor": sum(d < -1e-9 for d in diffs) / n,
    }


def rollout(
    agent: MemoryAgent,
    instances: list[Instance],
    group_size: int,
    memory_config: MemoryConfig,
    counter: TokenCounter,
    reader: Reader,
    judge: Judge | None,
    reward: RewardConfig,
    anchor: MemoryAgent | None = None,
) -> tuple[list[Trajectory], Timings]:
    """Run and score `group_size` trajectories per instance (the first greedy when an `anchor`
    agent is given); time each phase."""
    timings = Timings()
    start = time.perf_counter()
    trajectories = run_episodes(agent, instances, group_size, memory_config, counter, anchor)
    timings.generation = time.perf_counter() - start
    score_trajectories(trajectories, reader, judge, reward, counter, timings)
    return trajectories, timings
