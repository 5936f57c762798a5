"""Branch groups (`ppo.group_by: branch`, not in the paper): G responses to one chunk from one
shared memory state, compared on that chunk's aim.

Why: with trajectory groups (`instance`, `step`) the G rollouts of an instance part ways at the
first chunk, so a chunk's response is compared with responses to other memories, and a conflict
question's score is one number for a whole trajectory. The aim reward (r5) on such groups taught
the writer to call less, not to aim better (benchmarks/RESULTS.md, "A per-chunk reward for
aim"). Here the only thing that differs within a group is the response.

Each step writes every instance once, greedily: the trunk, the memory the policy itself builds.
At every chunk where the trunk's memory still states an old value the chunk overwrites
(`aim.wanted_changes`), G − 1 more responses are sampled from the very same prompt and each is
run on its own copy of the trunk's memory. The G responses (the greedy one first) form a group
scored by the chunk's own terms: aim_weight·r5 plus keep_weight·r6 (keep, `memalpha.aim`)
plus call_weight·r2; r1, r3 and r4 need a finished episode and are 0 here. The trunk goes on
with its greedy response, so every group starts from a state the policy reaches on its own.
Chunks that want nothing give no sample in `changes` mode (`ppo.branch_chunks`, the default).
In `all` mode every chunk forms a group, and at one that wants nothing a response scores r5 = 1
if it updates and deletes nothing, 0 if it does; with `reward.aim_quiet: free` it scores r5 = 1
there whatever it calls, and keep alone charges a call that removes a due fact. In `drops` mode
a quiet chunk forms a group only where the greedy response leaves a due fact unstated.

With a `Guide` (`ppo.branch_guide: teacher`) the last response of each group at a chunk that
wants a change is the selective teacher's answer to that very prompt, in the policy's token
ids, scored and trained like the sampled ones: off-policy guidance, not in the paper. Why: the
writer rarely samples a hit, so the groups that could teach updating seldom hold one, and every
recipe without it stopped updating or deleted widely. Measured: it kept the writer updating,
but aiming worse than its warm start, and lost QA (benchmarks/RESULTS.md, "Guided branch
groups").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from memalpha.agent import ChunkStep, Episode, MemoryAgent
from memalpha.aim import ChunkAim, Fact, chunk_aim, facts_of, wanted_changes
from memalpha.data import Instance, Superseded
from memalpha.llm import LLM, Generation, Message, SamplingParams
from memalpha.memory import Memory, MemoryConfig, ToolExecutor, ToolRegistry
from memalpha.reward import (
    CUT_SHORT,
    RewardConfig,
    RewardTerms,
    call_success_reward,
    chunk_compression_reward,
    combine,
)
from memalpha.rollout import (
    Rollout,
    Sample,
    Scoring,
    Timings,
    Trajectory,
    fresh_memory,
    score_episodes,
    step_sample,
)

BranchChunks = Literal["changes", "all", "drops"]  # ppo.branch_chunks: where groups form


@dataclass(frozen=True, slots=True)
class BranchRollout:
    """One step's branch groups: the greedy trunks, scored as a rollout (for the logs), and
    the samples of every chunk that formed a group with their aim counts (same order).

    A sample's `group` and `trajectory` are its instance's index (the trunk it branched from);
    the greedy response is the first sample of its group."""

    trunks: Rollout
    samples: list[Sample]
    aims: list[ChunkAim]
    guided: list[bool]  # per sample: the guide's response, not the policy's


@dataclass(frozen=True, slots=True)
class Guide:
    """Who answers a change group's last branch (`ppo.branch_guide: teacher`): a rule writer,
    and `encode`, its response text to the policy's ids with the end token, as the warm start
    was trained on such responses (`Policy.response_ids`)."""

    teacher: LLM
    encode: Callable[[str], list[int]]

    def respond(
        self, prompt: list[Message], prompt_ids: tuple[int, ...], sampling: SamplingParams
    ) -> Generation:
        """The teacher's answer to `prompt`, as a generation of the policy's from `prompt_ids`
        with no behaviour log-probs (the update computes them)."""
        text = self.teacher.generate([prompt], sampling)[0].text
        return Generation(
            text=text,
            token_ids=tuple(self.encode(text)),
            prompt_tokens=len(prompt_ids),
            prompt_ids=prompt_ids,
        )


def branch_terms(
    aim: ChunkAim, step: ChunkStep, reward: RewardConfig, r3: float = 0.0
) -> RewardTerms:
    """A branch's score: aim_weight·r5 (under `reward.aim_quiet` and `reward.aim_misses`) +
    keep_weight·r6 (under `reward.keep_charge`) + call_weight·r2 + branch_beta·r3 of its
    chunk (`r3`: `chunk_compression_reward`)."""
    return combine(
        0.0,
        call_success_reward(step.successes, no_calls=reward.no_call_r2),
        r3,
        0.0,
        beta=reward.branch_beta,
        gamma=0.0,
        call_weight=reward.call_weight,
        r5=aim.aim_score(reward),
        aim_weight=reward.aim_weight,
        r6=aim.keep_score(reward),
        keep_weight=reward.keep_weight,
    )


@dataclass(slots=True)
class _Row:
    """One response to generate at a chunk index: whose trunk, which branch (0: the trunk)."""

    instance: int
    branch: int
    prompt: list[Message]
    guided: bool = False


def branch_rollout(
    agent: MemoryAgent,
    llm: LLM,
    sampling: SamplingParams,
    instances: list[Instance],
    group_size: int,
    memory_config: MemoryConfig,
    scoring: Scoring,
    where: BranchChunks = "changes",
    guide: Guide | None = None,
    id_offsets: Sequence[int] | None = None,
) -> BranchRollout:
    """Write every instance once greedily, branching `group_size` − 1 sampled responses at
    each chunk that wants a change (`where`: every chunk with "all"; with "drops" also a quiet
    chunk whose greedy response leaves a due fact unstated, `_Groups.add_drops`), a chunk
    index's responses in one generate call. A `guide` answers a change group's last branch;
    with `id_offsets` each trunk's memory numbers its entries from its offset + 1."""
    started = time.perf_counter()
    offsets = id_offsets or [0] * len(instances)
    memories = [fresh_memory(memory_config, scoring.counter, o) for o in offsets]
    steps: list[list[ChunkStep]] = [[] for _ in instances]
    replay = ToolExecutor(ToolRegistry(memory_config.disabled))
    groups = _Groups(replay, scoring.reward)
    facts = [facts_of(inst) for inst in instances]
    for t in range(max((len(i.chunks) for i in instances), default=0)):
        live = [i for i, inst in enumerate(instances) if t < len(inst.chunks)]
        wanted = {i: wanted_changes(instances[i], t, memories[i]) for i in live}
        branched = {i for i in live if wanted[i] or where == "all"}
        scored = live if where == "drops" else branched  # whose responses may be scored
        due = {i: [f for f in facts[i] if f.due_at(t)] for i in scored}
        read = {i: scoring.counter.count(instances[i].chunks[t]) for i in scored}  # for r3
        rows: list[_Row] = []
        for i in live:
            prompt = agent.messages(memories[i], instances[i].chunks[t])  # one per trunk
            n = group_size if i in branched else 1
            guided = guide is not None and bool(wanted[i])
            rows += [_Row(i, b, prompt, guided and b == n - 1 > 0) for b in range(n)]
        generations = _generate(llm, rows, sampling.for_chunk(t), guide)
        before = {i: memories[i].copy() for i in scored}
        quiet: list[tuple[_Row, ChunkStep]] = []  # trunks that formed no group
        for row, gen in zip(rows, generations, strict=True):
            i = row.instance
            memory = memories[i] if row.branch == 0 else before[i].copy()
            step = agent.execute(memory, row.prompt, gen, t)
            if row.branch == 0:
                steps[i].append(step)
            if i in branched:
                groups.add(i, before[i], wanted[i], due[i], step, read[i], row.guided)
            elif where == "drops":
                quiet.append((row, step))
        groups.add_drops(agent, llm, sampling.for_chunk(t), quiet, before, due, read, group_size)
    timings = Timings(generation=time.perf_counter() - started)
    trunks = [
        Trajectory(i, inst, m, Episode(s), greedy=True)
        for i, (inst, m, s) in enumerate(zip(instances, memories, steps, strict=True))
    ]
    scores = score_episodes(trunks, scoring, timings)
    return BranchRollout(
        Rollout(trunks, scores, timings), groups.samples, groups.aims, groups.guided
    )


@dataclass(slots=True)
class _Groups:
    """The samples of a step's branch groups as they are made, with their aims and guide flags
    (same order; a group's greedy response first)."""

    replay: ToolExecutor
    reward: RewardConfig
    samples: list[Sample] = field(default_factory=list)
    aims: list[ChunkAim] = field(default_factory=list)
    guided: list[bool] = field(default_factory=list)

    def add(
        self,
        instance: int,
        before: Memory,
        wanted: list[Superseded],
        due: list[Fact],
        step: ChunkStep,
        chunk_tokens: int,
        guided: bool = False,
    ) -> None:
        """Score `step`, a response to a chunk of `chunk_tokens` from memory `before`, and
        keep it."""
        aim = _aim(before, wanted, due, step, self.replay, self.reward)
        self._keep(instance, step, aim, _r3(before, step, chunk_tokens), guided)

    def _keep(
        self, instance: int, step: ChunkStep, aim: ChunkAim, r3: float, guided: bool = False
    ) -> None:
        terms = branch_terms(aim, step, self.reward, r3)
        self.samples.append(step_sample(instance, instance, step, terms))
        self.aims.append(aim)
        self.guided.append(guided)

    def add_drops(
        self,
        agent: MemoryAgent,
        llm: LLM,
        sampling: SamplingParams,
        quiet: list[tuple[_Row, ChunkStep]],
        before: dict[int, Memory],
        due: dict[int, list[Fact]],
        read: dict[int, int],
        group_size: int,
    ) -> None:
        """A group for each greedy response at a quiet chunk (`quiet`: those that formed none)
        that leaves a due fact unstated: it first, then `group_size` − 1 samples of the same
        prompt, all groups' samples in one generate call (`ppo.branch_chunks: drops`). Why:
        held out, the GRPO writers dropped a third of the changed facts they gave up at chunks
        that formed no group, where no reward charged it (benchmarks/RESULTS.md, "Where the
        lost facts go")."""
        dropping = []
        for row, step in quiet:
            aim = _aim(before[row.instance], [], due[row.instance], step, self.replay, self.reward)
            if aim.kept < aim.due:
                dropping.append((row, step, aim))
        prompts = [row.prompt for row, _, _ in dropping for _ in range(group_size - 1)]
        sampled = iter(llm.generate(prompts, sampling) if prompts else [])  # one batch
        for row, step, aim in dropping:
            i = row.instance
            self._keep(i, step, aim, _r3(before[i], step, read[i]))
            for gen in (next(sampled) for _ in range(group_size - 1)):
                branch = agent.execute(before[i].copy(), row.prompt, gen, step.index)
                self.add(i, before[i], [], due[i], branch, read[i])


def _generate(
    llm: LLM, rows: list[_Row], sampling: SamplingParams, guide: Guide | None
) -> list[Generation]:
    """One generation per row, in order: the policy's for every row but the guided ones, in
    one generate call; the guide's for those, from the prompt ids of their trunk's row."""
    asked = [j for j, row in enumerate(rows) if not row.guided]
    greedy = tuple(k for k, j in enumerate(asked) if rows[j].branch == 0)
    sampled = llm.generate(
        [rows[j].prompt for j in asked], sampling.model_copy(update={"greedy_rows": greedy})
    )
    out: list[Generation | None] = [None] * len(rows)
    trunk_ids: dict[int, tuple[int, ...]] = {}
    for j, gen in zip(asked, sampled, strict=True):
        out[j] = gen
        if rows[j].branch == 0:
            trunk_ids[rows[j].instance] = gen.prompt_ids
    if guide is not None:
        for j, row in enumerate(rows):
            if row.guided:
                out[j] = guide.respond(row.prompt, trunk_ids[row.instance], sampling)
    return [gen for gen in out if gen is not None]  # every row: guided rows need a guide


def _r3(before: Memory, step: ChunkStep, chunk_tokens: int) -> float:
    """A branch's r3: what its response added to memory `before`, against its chunk."""
    return chunk_compression_reward(before.total_tokens, step.memory_tokens, chunk_tokens)


def _aim(
    before: Memory,
    wanted: list[Superseded],
    due: list[Fact],
    step: ChunkStep,
    replay: ToolExecutor,
    reward: RewardConfig,
) -> ChunkAim:
    """The aim and keep of one response, replayed on a copy of the memory it was written to."""
    return chunk_aim(
        before.copy(), wanted, step.results, replay, reward.deletes_need_new, due, step.index
    )


def branch_stats(done: BranchRollout) -> dict[str, float]:
    """For the logs: branch groups made, the mean r5 and r6 of the greedy and of the sampled
    responses, the share of sampled responses whose score (`branch_terms`) beats / falls below
    their group's greedy one (only those that beat it show a better writer), and the share of
    all branch responses cut short (`reward.truncation_penalty` charges them), and what a
    missed update costs in keep (`_miss_stats`). A guide's responses are counted apart: how
    many, their mean r5, and the share above their greedy."""
    greedy: dict[tuple[int, int], tuple[float, ChunkAim]] = {}  # its score, its aim
    sampled: list[tuple[float, ChunkAim, float]] = []  # its score, its aim, its greedy's score
    guides: list[tuple[float, ChunkAim, float]] = []
    for s, aim, by_guide in zip(done.samples, done.aims, done.guided, strict=True):
        key = (s.group, s.chunk_index)
        if key not in greedy:  # the greedy response comes first in its group
            greedy[key] = (s.terms.total, aim)
        else:
            (guides if by_guide else sampled).append((s.terms.total, aim, greedy[key][0]))
    firsts = [aim for _, aim in greedy.values()]
    others = [aim for _, aim, _ in sampled]
    n, n_groups = max(1, len(sampled)), max(1, len(greedy))
    return {
        "branch_groups": len(greedy),
        "branch_greedy_r5": sum(a.r5 for a in firsts) / n_groups,
        "branch_sampled_r5": sum(a.r5 for a in others) / n,
        "branch_greedy_r6": sum(a.r6 for a in firsts) / n_groups,
        "branch_sampled_r6": sum(a.r6 for a in others) / n,
        "branches_above_greedy": _share_above(sampled),
        "branches_below_greedy": sum(score < g - 1e-9 for score, _, g in sampled) / n,
        "branches_cut": sum(s.finish_reason in CUT_SHORT for s in done.samples)
        / max(1, len(done.samples)),
        **_miss_stats(others),
        **_guide_stats(guides),
    }


def branch_records(done: BranchRollout) -> list[dict[str, object]]:
    """One record per branch response, in the samples' order, for `branches.jsonl`: its
    instance, chunk and place in the group (0: the greedy one), whether a guide wrote it,
    its aim and keep counts and terms, and how it ended. Why: the step means of
    `branch_stats` cannot say what moved a seed, e.g. which instances' groups rewarded
    inserting beside an old value over updating it (benchmarks/RESULTS.md, "Keep weighted
    0.25": one seed in four left updating at either keep weight); these rows, with the
    trainer's score and advantage beside each, can."""
    records: list[dict[str, object]] = []
    seen: dict[tuple[int, int], int] = {}  # (group, chunk) → responses met so far
    for s, aim, by_guide in zip(done.samples, done.aims, done.guided, strict=True):
        key = (s.group, s.chunk_index)
        seen[key] = seen.get(key, 0) + 1
        records.append(
            {
                "instance": done.trunks.trajectories[s.group].instance.id,
                "chunk": s.chunk_index,
                "branch": seen[key] - 1,
                "guided": by_guide,
                "wanted": aim.wanted,
                "aimed": aim.aimed,
                "hits": aim.hits,
                "resolved": aim.resolved,
                "due": aim.due,
                "kept": aim.kept,
                "r5": s.terms.r5,
                "r6": s.terms.r6,
                "r3": s.terms.r3,
                "finish_reason": s.finish_reason,
            }
        )
    return records


def _miss_stats(sampled: list[ChunkAim]) -> dict[str, float]:
    """What trying an update costs in keep: of the sampled responses at chunks that want a
    change, the share that aimed calls and hit none, their mean r6, and the mean r6 of those
    that aimed nothing. Why: with keep weighted as aim, a writer whose updates mostly miss
    would score higher by not updating if a miss costs keep (`branch_missed_r6` below
    `branch_unaimed_r6`): the reading, unmeasured until these, of where two seeds of the
    sparse recipe went (benchmarks/RESULTS.md, "The sparse recipe at 8 instances a step").
    None where no sampled response met a change; a mean with no response under it is not
    logged."""
    at_changes = [a for a in sampled if a.wanted]
    if not at_changes:
        return {}
    missed = [a.r6 for a in at_changes if a.aimed and not a.hits]
    unaimed = [a.r6 for a in at_changes if not a.aimed]
    out = {"branches_missed": len(missed) / len(at_changes)}
    if missed:
        out["branch_missed_r6"] = sum(missed) / len(missed)
    if unaimed:
        out["branch_unaimed_r6"] = sum(unaimed) / len(unaimed)
    return out


def _guide_stats(guides: list[tuple[float, ChunkAim, float]]) -> dict[str, float]:
    """The guide's responses (score, aim, greedy's score): none logged when there are none."""
    if not guides:
        return {}
    n = len(guides)
    return {
        "branches_guided": n,
        "branch_guided_r5": sum(a.r5 for _, a, _ in guides) / n,
        "branch_guided_above_greedy": _share_above(guides),
    }


def _share_above(rows: list[tuple[float, ChunkAim, float]]) -> float:
    """The share of (score, aim, greedy's score) rows that beat their greedy response."""
    return sum(score > g + 1e-9 for score, _, g in rows) / max(1, len(rows))
