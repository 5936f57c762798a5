"""Branch groups (`ppo.group_by: branch`, memalpha.rl.branches) on real conflict instances:
the trunk is the greedy episode, groups form exactly at the chunks that want a change, every
response of a group answers the same prompt from the same memory, and the group's advantages
rank the response that overwrites the changed facts above those that do not."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from memalpha.agent import RuleWriterLLM, WriterConfig, build_agent
from memalpha.aim import episode_aim, facts_of
from memalpha.data import QA, Competency, Instance, Superseded, write_instances
from memalpha.llm import FORMATS, Generation, ModelConfig, SamplingParams
from memalpha.llm.formats.base import FunctionCall
from memalpha.llm.local import TransformersLLM
from memalpha.memory import Component, Memory, MemoryConfig
from memalpha.reader import ExtractiveReader
from memalpha.reward import RewardConfig
from memalpha.rl import GroupBy, group_advantages, group_keys
from memalpha.rl.branches import Guide, branch_records, branch_rollout, branch_stats
from memalpha.rl.config import SFTConfig, TrainConfig
from memalpha.rl.policy import Policy, pad_batch, response_logprobs
from memalpha.rl.sft import run_sft, write_transcripts
from memalpha.rl.trainer import Trainer, read_metrics
from memalpha.rollout import Scoring, id_offsets, rollout
from tiny import build_tiny_model, call_token, tiny_config, update_token

VIEW = MemoryConfig(view={"mode": "retrieved", "k": 8})
SAMPLED = SamplingParams(temperature=1.0, max_new_tokens=640, seed=3)
G = 3


class TeacherOnGreedyRows:
    """Stands in for a sampled policy, whose responses to one prompt differ by chance (a real
    model's would, but not on cue): greedy rows get the selective teacher's calls and sampled
    rows the store-everything rule writer's, two real writers. So a branch group holds one
    response that overwrites the changed facts and G − 1 that keep the old values."""

    name = "teacher-on-greedy-rows"

    def __init__(self) -> None:
        fmt = FORMATS["hermes"]
        self.teacher = RuleWriterLLM(fmt, selective=True)
        self.rule = RuleWriterLLM(fmt)

    def generate(self, prompts, sampling):
        return [
            (self.teacher if j in sampling.greedy_rows else self.rule).generate([p], sampling)[0]
            for j, p in enumerate(prompts)
        ]

    def close(self) -> None:
        pass


class EditedOnSampledRows(TeacherOnGreedyRows):
    """Greedy rows get the selective teacher's response; sampled rows get its calls as
    `edit` changes them, so a group compares the teacher with one chosen departure from it."""

    def edit(self, calls: list[FunctionCall]) -> list[FunctionCall]:
        raise NotImplementedError

    def generate(self, prompts, sampling):
        fmt = FORMATS["hermes"]
        out = []
        for j, p in enumerate(prompts):
            gen = self.teacher.generate([p], sampling)[0]
            if j not in sampling.greedy_rows:
                gen = Generation(fmt.render(self.edit(fmt.parse(gen.text).calls)))
            out.append(gen)
        return out


class DeletesOnSampledRows(EditedOnSampledRows):
    """Every update made a delete of the same entry and every insert dropped: the sampled rows
    remove each old value and state no new one, what branch groups on `aim_delete: named`
    learned to do."""

    name = "deletes-on-sampled-rows"

    def edit(self, calls):
        return [
            FunctionCall("memory_delete", _without_content(c.arguments))
            if c.name == "memory_update"
            else c
            for c in calls
            if c.name != "new_memory_insert"
        ]


class StrayDeleteOnSampledRows(EditedOnSampledRows):
    """One more delete, of an id no entry has: a call that aims where nothing is wanted."""

    name = "stray-delete-on-sampled-rows"

    def edit(self, calls):
        stray = FunctionCall("memory_delete", {"memory_type": "semantic", "memory_id": "s999"})
        return [*calls, stray]


class NoInsertsOnSampledRows(EditedOnSampledRows):
    """The teacher's calls without its inserts: the sampled rows store nothing a chunk brings
    and change what the teacher changes."""

    name = "no-inserts-on-sampled-rows"

    def edit(self, calls):
        return [c for c in calls if c.name != "new_memory_insert"]


class NoInsertsOnGreedyRows(TeacherOnGreedyRows):
    """The teacher's calls without its inserts on greedy rows, the teacher's whole response on
    sampled ones: a trunk that stores nothing a chunk brings, and branches that would."""

    name = "no-inserts-on-greedy-rows"

    def generate(self, prompts, sampling):
        fmt = FORMATS["hermes"]
        out = []
        for j, p in enumerate(prompts):
            gen = self.teacher.generate([p], sampling)[0]
            if j in sampling.greedy_rows:
                calls = [c for c in fmt.parse(gen.text).calls if c.name != "new_memory_insert"]
                gen = Generation(fmt.render(calls))
            out.append(gen)
        return out


def _without_content(arguments: dict) -> dict:
    return {k: v for k, v in arguments.items() if k in ("memory_type", "memory_id")}


@pytest.fixture(scope="module")
def conflict(real_instances):
    return real_instances(
        ["synth_cr", "conflict"],
        instances=1,
        max_tokens=512,
        chunk_tokens=128,
        questions=6,
        facts=6,
    )


@pytest.fixture(scope="module")
def branched(counter, conflict):
    agent = build_agent(WriterConfig(prompt="compact", max_new_tokens=640, memory=VIEW), counter)
    scoring = Scoring(ExtractiveReader(), None, RewardConfig(gamma=0.0, aim_weight=1.0), counter)
    done = branch_rollout(agent, TeacherOnGreedyRows(), SAMPLED, conflict, G, VIEW, scoring)
    teacher = RuleWriterLLM(FORMATS["hermes"], selective=True)
    plain = rollout(agent, teacher, SAMPLED, conflict, 1, VIEW, scoring)
    return done, plain


def test_the_trunk_is_the_greedy_episode_untouched_by_its_branches(branched):
    done, plain = branched
    for trunk, alone in zip(done.trunks.trajectories, plain.trajectories, strict=True):
        assert trunk.greedy and trunk.instance is alone.instance
        assert trunk.memory.snapshot() == alone.memory.snapshot()
        assert [s.generation.text for s in trunk.episode.steps] == [
            s.generation.text for s in alone.episode.steps
        ]
    assert [s.qa for s in done.trunks.scores] == [s.qa for s in plain.scores]


def test_groups_form_where_a_change_is_wanted_with_one_shared_prompt(branched, counter):
    done, _ = branched
    wanting = {
        (i, c)
        for i, t in enumerate(done.trunks.trajectories)
        for c, aim in enumerate(episode_aim(t.instance, t.calls, VIEW, counter))
        if aim.wanted
    }
    assert {i for i, _ in wanting} == set(range(len(done.trunks.trajectories)))
    keys = [(s.group, s.chunk_index) for s in done.samples]
    assert set(keys) == wanting
    assert all(keys.count(k) == G for k in wanting)
    for k in wanting:
        group = [s for s in done.samples if (s.group, s.chunk_index) == k]
        assert len({s.prompt_ids for s in group}) == 1
        trunk = done.trunks.trajectories[k[0]]
        assert group[0].trajectory == k[0] and trunk.episode.steps[k[1]].index == k[1]


def test_branch_records_name_each_response_in_its_group(branched):
    """branches.jsonl's rows: one per sample in order, numbered within its group from the
    greedy response (0), naming its trunk's instance, with the aim counts and terms it was
    scored on."""
    done, _ = branched
    records = branch_records(done)
    assert len(records) == len(done.samples)
    for rec, s, aim in zip(records, done.samples, done.aims, strict=True):
        assert rec["instance"] == done.trunks.trajectories[s.group].instance.id
        assert rec["chunk"] == s.chunk_index and rec["guided"] is False
        assert (rec["wanted"], rec["aimed"], rec["hits"]) == (aim.wanted, aim.aimed, aim.hits)
        assert (rec["r5"], rec["r6"]) == (s.terms.r5, s.terms.r6)
        assert rec["finish_reason"] == s.finish_reason
    groups: dict[tuple, list[int]] = {}
    for rec in records:
        groups.setdefault((rec["instance"], rec["chunk"]), []).append(rec["branch"])
    assert all(branches == list(range(G)) for branches in groups.values())
    assert json.loads(json.dumps(records)) == records  # plain JSON, as the trainer writes it


def _numbered(memory: Memory) -> list[tuple[int, str]]:
    """A memory's semantic entries as (id number, text)."""
    return [(int(e.id[1:]), e.content) for e in memory.entries(Component.SEMANTIC)]


def test_id_offsets_renumber_each_instances_memory_and_change_nothing_else(
    branched, counter, conflict
):
    """`rollout.max_id_offset`: the same writers from memories numbered from 301 (instance 0)
    and from 1 (instance 1) write the same texts, ids shifted by the offset, and form the same
    groups; the teacher's updates name the shifted ids it is shown."""
    done, _ = branched
    agent = build_agent(WriterConfig(prompt="compact", max_new_tokens=640, memory=VIEW), counter)
    scoring = Scoring(ExtractiveReader(), None, RewardConfig(gamma=0.0, aim_weight=1.0), counter)
    offsets = [300, 0]
    shifted = branch_rollout(
        agent, TeacherOnGreedyRows(), SAMPLED, conflict, G, VIEW, scoring, id_offsets=offsets
    )
    teacher = RuleWriterLLM(FORMATS["hermes"], selective=True)
    runs = rollout(agent, teacher, SAMPLED, conflict, 2, VIEW, scoring, id_offsets=offsets)
    for offset, before, trunk, pair in zip(
        offsets,
        done.trunks.trajectories,
        shifted.trunks.trajectories,
        [runs.trajectories[:2], runs.trajectories[2:]],
        strict=True,
    ):
        expected = [(n + offset, text) for n, text in _numbered(before.memory)]
        assert expected and _numbered(trunk.memory) == expected
        assert [_numbered(t.memory) for t in pair] == [expected, expected]
        if offset:
            assert any(
                f'"s{n}"' in s.generation.text for s in trunk.episode.steps for n, _ in expected
            )
    assert [(s.group, s.chunk_index) for s in shifted.samples] == [
        (s.group, s.chunk_index) for s in done.samples
    ]


def test_id_offsets_are_drawn_from_the_step_seed_within_range() -> None:
    drawn = id_offsets(64, 300, seed=7)
    assert drawn == id_offsets(64, 300, seed=7) != id_offsets(64, 300, seed=8)
    assert all(0 <= o <= 300 for o in drawn) and len(set(drawn)) > 32
    assert id_offsets(5, 0, seed=7) == [0] * 5


def test_advantages_rank_the_response_that_overwrites_above_those_that_keep_old_values(
    branched,
):
    done, _ = branched
    scores = [s.terms.total for s in done.samples]
    # aim_weight 1 and the default call_weight 1: r5 + r2 of the chunk, and nothing else
    assert scores == pytest.approx(
        [a.r5 + s.terms.r2 for s, a in zip(done.samples, done.aims, strict=True)]
    )
    # r3 is logged but unweighted at the default branch_beta 0
    assert all(s.terms.r1 == s.terms.beta_r3 == s.terms.r4 == 0.0 for s in done.samples)
    advantages = group_advantages(
        [s.terms.total for s in done.samples],
        group_keys(
            [s.group for s in done.samples], [s.chunk_index for s in done.samples], GroupBy.BRANCH
        ),
    )
    firsts = {}
    for s, aim, adv in zip(done.samples, done.aims, advantages, strict=True):
        key = (s.group, s.chunk_index)
        if key not in firsts:
            firsts[key] = True
            assert aim.hits == aim.wanted > 0 and adv > 0  # the teacher's response
        else:
            assert aim.hits == 0 and adv < 0  # the rule writer's: the old value stays
    stats = branch_stats(done)
    assert stats["branch_groups"] == len(firsts)
    assert stats["branch_greedy_r5"] == 1.0 and stats["branch_sampled_r5"] == 0.0
    assert stats["branches_below_greedy"] == 1.0 and stats["branches_above_greedy"] == 0.0
    assert stats["branches_cut"] == 0.0  # the rule writers end every response
    # the sampled rule writer only inserts: no update aimed, so none missed, keep as it was
    sampled = [a for k, a in enumerate(done.aims) if k % G]
    assert stats["branches_missed"] == 0.0 and "branch_missed_r6" not in stats
    assert stats["branch_unaimed_r6"] == pytest.approx(sum(a.r6 for a in sampled) / len(sampled))


@pytest.mark.parametrize("aim_delete", ["named", "replaced"])
def test_a_delete_that_leaves_no_new_value_hits_only_under_named(counter, conflict, aim_delete):
    """`reward.aim_delete` reaches the branch groups' r5: a delete of the old entry with no new
    value stated hits as the teacher's update does under 'named', and misses under 'replaced'."""
    agent = build_agent(WriterConfig(prompt="compact", max_new_tokens=640, memory=VIEW), counter)
    reward = RewardConfig(gamma=0.0, aim_weight=1.0, aim_delete=aim_delete)
    scoring = Scoring(ExtractiveReader(), None, reward, counter)
    done = branch_rollout(agent, DeletesOnSampledRows(), SAMPLED, conflict, G, VIEW, scoring)
    greedy = [a for k, a in enumerate(done.aims) if k % G == 0]
    sampled = [a for k, a in enumerate(done.aims) if k % G]
    assert greedy and all(a.hits == a.wanted > 0 for a in greedy)
    assert all(a.aimed > 0 for a in sampled)
    stats = branch_stats(done)
    if aim_delete == "named":
        assert all(a.hits == a.wanted for a in sampled)
        assert stats["branches_missed"] == 0.0 and "branch_missed_r6" not in stats
    else:
        assert all(a.hits == 0 for a in sampled)
        # every sampled delete aimed and missed: their keep is what trying cost
        assert stats["branches_missed"] == 1.0 and "branch_unaimed_r6" not in stats
        assert stats["branch_missed_r6"] == pytest.approx(sum(a.r6 for a in sampled) / len(sampled))


@pytest.mark.parametrize("where", ["changes", "all"])
def test_branching_at_every_chunk_teaches_restraint_where_nothing_changes(counter, conflict, where):
    """`ppo.branch_chunks: all`: a group at every chunk, and at one that wants nothing the
    response that deletes scores below the one that does not; with `changes` (the default)
    such chunks give no group, so nothing there teaches the writer to leave entries alone."""
    agent = build_agent(WriterConfig(prompt="compact", max_new_tokens=640, memory=VIEW), counter)
    reward = RewardConfig(gamma=0.0, call_weight=0.0, aim_weight=1.0)
    scoring = Scoring(ExtractiveReader(), None, reward, counter)
    llm = StrayDeleteOnSampledRows()
    done = branch_rollout(agent, llm, SAMPLED, conflict, G, VIEW, scoring, where)
    every_chunk = where == "all"
    chunks = {(i, c) for i, inst in enumerate(conflict) for c in range(len(inst.chunks))}
    keys = [(s.group, s.chunk_index) for s in done.samples]
    wanting = {k for k, a in zip(keys, done.aims, strict=True) if a.wanted}
    assert set(keys) == (chunks if every_chunk else wanting) and wanting < chunks
    advantages = group_advantages(
        [s.terms.total for s in done.samples],
        group_keys([g for g, _ in keys], [c for _, c in keys], GroupBy.BRANCH),
    )
    for k, (aim, adv) in enumerate(zip(done.aims, advantages, strict=True)):
        greedy = k % G == 0
        if not aim.wanted:
            assert aim.r5 == (1.0 if greedy else 0.0)
        assert adv > 0 if greedy else adv < 0


def test_free_quiet_chunks_charge_only_what_a_call_there_removes(counter, conflict):
    """`reward.aim_quiet: free`: at a chunk that wants no change a stray delete, which removes
    no fact, ties with the teacher (r5 1 for both, keep unchanged), while at a chunk that wants
    one it still ranks below the teacher's hit; a response that stores nothing a chunk brings
    still ranks below it through keep."""
    agent = build_agent(WriterConfig(prompt="compact", max_new_tokens=640, memory=VIEW), counter)
    reward = RewardConfig(
        gamma=0.0, call_weight=0.0, aim_weight=1.0, keep_weight=1.0, aim_quiet="free"
    )
    scoring = Scoring(ExtractiveReader(), None, reward, counter)
    for llm, charged in ((StrayDeleteOnSampledRows(), "wanted"), (NoInsertsOnSampledRows(), "r6")):
        done = branch_rollout(agent, llm, SAMPLED, conflict, G, VIEW, scoring, where="all")
        keys = [(s.group, s.chunk_index) for s in done.samples]
        advantages = group_advantages(
            [s.terms.total for s in done.samples],
            group_keys([g for g, _ in keys], [c for _, c in keys], GroupBy.BRANCH),
        )
        quiet_ties = below = 0
        for k, (aim, sample, adv) in enumerate(
            zip(done.aims, done.samples, advantages, strict=True)
        ):
            if k % G == 0:
                continue
            if not aim.wanted:
                assert sample.terms.r5 == 1.0
            lower = aim.wanted > 0 if charged == "wanted" else aim.r6 < 1.0
            if lower:
                below += 1
                assert adv < 0
            elif not aim.wanted and charged == "wanted":
                quiet_ties += 1
                assert adv == 0
        assert below >= len(conflict) * (G - 1)
        assert charged == "r6" or quiet_ties >= len(conflict) * (G - 1)


@pytest.mark.parametrize("branch_beta", [0.0, 1.0])
def test_a_price_on_memory_ranks_the_response_that_stores_less_higher(
    counter, conflict, branch_beta
):
    """`reward.branch_beta`: at a quiet chunk the selective teacher (greedy rows) and the
    store-everything rule writer (sampled rows) both update nothing, so aim ties them; priced,
    the rule writer's extra entries rank it below the teacher. r3 is what a response added
    against its chunk, the trunk's from its own memory sizes; `beta` (default 0.05) does not
    reach branch groups."""
    agent = build_agent(WriterConfig(prompt="compact", max_new_tokens=640, memory=VIEW), counter)
    reward = RewardConfig(gamma=0.0, call_weight=0.0, aim_weight=1.0, branch_beta=branch_beta)
    scoring = Scoring(ExtractiveReader(), None, reward, counter)
    done = branch_rollout(agent, TeacherOnGreedyRows(), SAMPLED, conflict, G, VIEW, scoring, "all")
    for s in done.samples[::G]:  # the greedy trunk's response at each chunk
        steps = done.trunks.trajectories[s.group].episode.steps
        before = steps[s.chunk_index - 1].memory_tokens if s.chunk_index else 0
        added = steps[s.chunk_index].memory_tokens - before
        chunk = counter.count(conflict[s.group].chunks[s.chunk_index])
        assert s.terms.r3 == pytest.approx(1.0 - added / chunk)
        assert s.terms.beta_r3 == pytest.approx(branch_beta * s.terms.r3)
    keys = [(s.group, s.chunk_index) for s in done.samples]
    advantages = group_advantages(
        [s.terms.total for s in done.samples],
        group_keys([g for g, _ in keys], [c for _, c in keys], GroupBy.BRANCH),
    )
    priced = 0
    for k, (aim, s, adv) in enumerate(zip(done.aims, done.samples, advantages, strict=True)):
        greedy = done.samples[k - k % G]
        if k % G == 0 or aim.wanted or s.terms.r3 >= greedy.terms.r3:
            continue
        priced += 1  # a quiet chunk where the rule writer stored more than the teacher
        assert aim.r5 == done.aims[k - k % G].r5 == 1.0
        assert adv < 0 if branch_beta else adv == 0
    assert priced >= len(conflict) * (G - 1)


@pytest.mark.parametrize("aim_misses", ["charged", "free"])
def test_free_misses_charge_a_call_that_misses_at_a_change_chunk_nothing(
    counter, conflict, aim_misses
):
    """`reward.aim_misses`: at a chunk that wants a change, the teacher's hits plus a delete
    that misses rank below the teacher's hits alone when misses are charged, and tie with them
    when they are free (r5 is then the recall, and the stray delete removes no fact)."""
    agent = build_agent(WriterConfig(prompt="compact", max_new_tokens=640, memory=VIEW), counter)
    reward = RewardConfig(
        gamma=0.0, call_weight=0.0, aim_weight=1.0, keep_weight=1.0, aim_misses=aim_misses
    )
    scoring = Scoring(ExtractiveReader(), None, reward, counter)
    done = branch_rollout(agent, StrayDeleteOnSampledRows(), SAMPLED, conflict, G, VIEW, scoring)
    keys = [(s.group, s.chunk_index) for s in done.samples]
    advantages = group_advantages(
        [s.terms.total for s in done.samples],
        group_keys([g for g, _ in keys], [c for _, c in keys], GroupBy.BRANCH),
    )
    pairs = enumerate(zip(done.aims, advantages, strict=True))
    sampled = [(aim, adv) for k, (aim, adv) in pairs if k % G]
    assert sampled
    assert all(a.wanted and a.hits == a.wanted and a.aimed > a.hits for a, _ in sampled)
    if aim_misses == "charged":
        assert all(adv < 0 for _, adv in sampled)
    else:
        assert all(adv == 0 for _, adv in sampled)


@pytest.mark.parametrize(
    ("keep_weight", "keep_charge"), [(0.0, "share"), (1.0, "share"), (1.0, "fact")]
)
def test_keep_ranks_a_response_that_stores_nothing_below_the_teacher(
    counter, conflict, keep_weight, keep_charge
):
    """`reward.keep_weight` reaches the branch groups: a response without the teacher's
    inserts aims as the teacher does, and only the keep term (r6) ranks it below the teacher
    at the chunks that bring facts; without it those groups tie. Under `keep_charge: fact`
    each fact left unstated costs a whole point, so a chunk bringing several scores below 0."""
    agent = build_agent(WriterConfig(prompt="compact", max_new_tokens=640, memory=VIEW), counter)
    reward = RewardConfig(
        gamma=0.0,
        call_weight=0.0,
        aim_weight=1.0,
        keep_weight=keep_weight,
        keep_charge=keep_charge,
    )
    scoring = Scoring(ExtractiveReader(), None, reward, counter)
    llm = NoInsertsOnSampledRows()
    done = branch_rollout(agent, llm, SAMPLED, conflict, G, VIEW, scoring, where="all")
    keys = [(s.group, s.chunk_index) for s in done.samples]
    advantages = group_advantages(
        [s.terms.total for s in done.samples],
        group_keys([g for g, _ in keys], [c for _, c in keys], GroupBy.BRANCH),
    )
    for sample, aim in zip(done.samples, done.aims, strict=True):
        lost = aim.due - aim.kept
        assert sample.terms.r6 == (1.0 - lost if keep_charge == "fact" else aim.r6)
    if keep_charge == "fact":
        assert min(s.terms.r6 for s in done.samples) < 0.0
    losing = 0
    for k, (aim, adv) in enumerate(zip(done.aims, advantages, strict=True)):
        greedy = done.aims[k - k % G]
        assert aim.r5 == greedy.r5 and greedy.r6 == 1.0
        if k % G and aim.r6 < 1.0:
            losing += 1
            assert adv < 0 if keep_weight else adv == 0
    assert losing >= len(conflict) * (G - 1)  # every instance has chunks that bring facts
    stats = branch_stats(done)
    assert stats["branch_greedy_r6"] == 1.0 > stats["branch_sampled_r6"]
    assert (
        stats["branches_below_greedy"] > 0 if keep_weight else stats["branches_below_greedy"] == 0
    )


class RuleOnAllRows(TeacherOnGreedyRows):
    """The store-everything rule writer on every row, greedy or sampled: a policy that never
    samples an update, so no group holds a hit unless a guide brings one."""

    name = "rule-on-all-rows"

    def generate(self, prompts, sampling):
        return self.rule.generate(prompts, sampling)


def test_a_guide_brings_the_teachers_hit_into_each_change_group(counter, conflict, smol_folder):
    """`ppo.branch_guide: teacher`: at every chunk that wants a change the group's last member
    is the selective teacher's answer, in SmolLM2's ids with its end token, and it is the only
    member that hits, so it alone gets a positive advantage; groups at chunks that want nothing
    get no guide, and the trunk is the policy's own episode as without a guide."""
    agent = build_agent(WriterConfig(prompt="compact", max_new_tokens=640, memory=VIEW), counter)
    reward = RewardConfig(gamma=0.0, call_weight=0.0, aim_weight=1.0, keep_weight=1.0)
    scoring = Scoring(ExtractiveReader(), None, reward, counter)
    policy = Policy(ModelConfig(model=str(smol_folder)))  # SmolLM2: its tokenizer encodes the guide
    guide = Guide(RuleWriterLLM(FORMATS["hermes"], selective=True), policy.response_ids)
    llm = RuleOnAllRows()
    done = branch_rollout(agent, llm, SAMPLED, conflict, G, VIEW, scoring, True, guide)
    alone = branch_rollout(agent, llm, SAMPLED, conflict, G, VIEW, scoring, True)
    assert [t.memory.snapshot() for t in done.trunks.trajectories] == [
        t.memory.snapshot() for t in alone.trunks.trajectories
    ]
    keys = [(s.group, s.chunk_index) for s in done.samples]
    advantages = group_advantages(
        [s.terms.total for s in done.samples],
        group_keys([g for g, _ in keys], [c for _, c in keys], GroupBy.BRANCH),
    )
    eos = policy.tokenizer.eos_token_id
    change_groups = 0
    for k, (s, aim, by_guide, adv) in enumerate(
        zip(done.samples, done.aims, done.guided, advantages, strict=True)
    ):
        wanted = done.aims[k - k % G].wanted
        assert by_guide == (bool(wanted) and k % G == G - 1)
        if by_guide:
            change_groups += 1
            assert aim.hits == aim.wanted > 0 and adv > 0
            assert s.old_logprobs is None and s.response_ids[-1] == eos
            text = policy.tokenizer.decode(s.response_ids[:-1])
            assert "memory_update" in text or "memory_delete" in text
            assert list(s.response_ids) == policy.response_ids(text)
        elif wanted:
            assert aim.hits == 0 and adv < 0  # the rule writer keeps the old value
    assert change_groups >= len(conflict)  # every instance has a chunk that wants a change
    stats = branch_stats(done)
    assert stats["branches_guided"] == change_groups and stats["branch_guided_r5"] == 1.0
    assert stats["branch_guided_above_greedy"] == 1.0
    assert "branches_guided" not in branch_stats(alone)


@pytest.mark.parametrize("ids", ["before", "after"])
def test_the_trainers_guide_names_ids_in_the_order_its_view_shows_them(
    ids, counter, conflict, tiny_model, tiny_data, tmp_path
):
    """The trainer's guide answers each prompt as the warm start of that layout was taught:
    with ids after their text (`memory.view.ids: after`) it writes an update's new text
    before the id it replaces, as `SFTConfig.teacher_id_last` did; with the published view,
    the id first. Same calls otherwise: the teacher of that layout, on the same prompt."""
    view = MemoryConfig(view={"mode": "retrieved", "k": 8, "ids": ids})
    overrides = {
        "ppo.group_by": "branch",
        "reward.aim_weight": 1.0,
        "ppo.branch_guide": "teacher",
        "rollout.group_size": 3,
        "memory": view.model_dump(),
    }
    trainer = Trainer(
        TrainConfig.model_validate(tiny_config(tiny_model, tiny_data, tmp_path, **overrides))
    )
    # a stand-in for the run's policy, which only encodes the guide's text (SmolLM2 does so in
    # the test above): this test is about the text's call order
    run = SimpleNamespace(policy=SimpleNamespace(response_ids=lambda text: [len(text)]))
    guide = trainer._guide(run)
    agent = build_agent(WriterConfig(prompt="compact", max_new_tokens=640, memory=view), counter)
    scoring = Scoring(ExtractiveReader(), None, RewardConfig(gamma=0.0), counter)
    taught = RuleWriterLLM(FORMATS["hermes"], selective=True, id_last=ids == "after")
    episodes = rollout(agent, taught, SAMPLED, conflict, 1, view, scoring).trajectories
    updates = 0
    for step in (s for t in episodes for s in t.episode.steps):
        answer = guide.respond(step.messages, (), SAMPLED).text
        assert answer == step.generation.text
        for call in FORMATS["hermes"].parse(answer).calls:
            if call.name == "memory_update" and "memory_id" in call.arguments:
                updates += 1
                names = list(call.arguments)
                id_last = names.index("new_content") < names.index("memory_id")
                assert id_last == (ids == "after")
    assert updates > 0


def test_branch_groups_need_an_aim_reward_and_two_responses(tiny_model, tiny_data, tmp_path):
    base = tiny_config(tiny_model, tiny_data, tmp_path / "r", **{"ppo.group_by": "branch"})
    with pytest.raises(ValueError, match="aim_weight"):
        TrainConfig.model_validate(base)
    with pytest.raises(ValueError, match="group_size >= 2"):
        TrainConfig.model_validate(
            tiny_config(
                tiny_model,
                tiny_data,
                tmp_path / "r",
                **{"ppo.group_by": "branch", "reward.aim_weight": 1.0, "rollout.group_size": 1},
            )
        )
    with pytest.raises(ValueError, match="keep_weight scores branch groups only"):
        TrainConfig.model_validate(
            tiny_config(tiny_model, tiny_data, tmp_path / "r", **{"reward.keep_weight": 1.0})
        )
    with pytest.raises(ValueError, match="branch_beta prices memory in branch groups only"):
        TrainConfig.model_validate(
            tiny_config(tiny_model, tiny_data, tmp_path / "r", **{"reward.branch_beta": 1.0})
        )
    with pytest.raises(ValueError, match="branch_guide guides branch groups"):
        TrainConfig.model_validate(
            tiny_config(tiny_model, tiny_data, tmp_path / "r", **{"ppo.branch_guide": "teacher"})
        )
    guided = {"ppo.group_by": "branch", "reward.aim_weight": 1.0, "ppo.branch_guide": "teacher"}
    with pytest.raises(ValueError, match="group_size >= 3"):
        TrainConfig.model_validate(
            tiny_config(
                tiny_model, tiny_data, tmp_path / "r", **guided, **{"rollout.group_size": 2}
            )
        )


def _overwrite_task(tmp_path, counter):
    """The tiny model with a whole-call token that updates `s1`, the code word overwritten
    (alpha, then beta), and the writer's prompts at both chunks as the trunk sees them."""
    model = build_tiny_model(tmp_path / "model", extra_calls=(update_token("beta"),))
    change = Superseded(subject="code word", old="alpha", new="beta")
    instance = Instance(
        id="tiny-overwrite",
        data_source="tiny",
        competency=Competency.CONFLICT_RESOLUTION,
        metric="containment",
        chunks=["The code word is alpha.", "The code word is now beta."],
        questions=[
            QA(
                id="q1",
                question="What is the code word now?",
                answers=["beta"],
                superseded=[change],
            )
        ],
    )
    data = tmp_path / "overwrite.jsonl"
    write_instances([instance], data)
    cfg = TrainConfig.model_validate(tiny_config(model, data, tmp_path / "unused"))
    agent = build_agent(cfg.writer, counter)
    memory = Memory(cfg.memory, counter)
    first = agent.messages(memory, instance.chunks[0])
    memory.insert(Component.SEMANTIC, "The code word is alpha.")
    second = agent.messages(memory, instance.chunks[1])
    return model, data, first, second


def _logprob(folder, prompt, response: str) -> float:
    """log p(response | prompt) under the policy in `folder`."""
    llm = TransformersLLM(folder)
    ids = llm.prompt_ids(prompt)
    out = llm.tokenizer(response, add_special_tokens=False)["input_ids"]
    batch = pad_batch([ids], [out], llm.tokenizer.pad_token_id, "cpu")
    with torch.no_grad():
        return float(response_logprobs(llm.model, batch)[0, : len(out)].sum())


def _warm_start(tmp_path, model, transcripts: list, lr: float = 0.05, epochs: int = 10) -> Path:
    """The tiny model fine-tuned on (prompt, response) pairs: the policy a run starts from."""
    path = tmp_path / "warm.jsonl"
    write_transcripts(path, transcripts)
    return run_sft(
        SFTConfig(
            out_dir=tmp_path / "sft",
            policy={"model": str(model)},
            transcripts=path,
            examples=16,
            batch_size=4,
            epochs=epochs,
            max_new_tokens=8,
            optim={"lr": lr, "warmup_ratio": 0.0},
        )
    )


def _branch_run(model, data, warm, run, **overrides) -> TrainConfig:
    """Two GRPO steps of branch groups scored by aim alone (r2 unweighted), from `warm`."""
    over = {
        "policy.model": str(warm),
        "ppo.group_by": "branch",
        "reward.aim_weight": 1.0,
        "reward.call_weight": 0.0,
        "schedule.steps": 2,
        "schedule.val_before_train": False,
        # fp32 on every CPU: under "auto" a CPU with native bf16 samples other responses from
        # the same seed, and the counts below were measured in fp32
        "ppo.autocast_bf16": False,
        **overrides,
    }
    cfg = TrainConfig.model_validate(tiny_config(model, data, run, **over))
    Trainer(cfg).run()
    return cfg


@pytest.mark.slow
def test_branch_groups_teach_the_update_over_a_second_insert(tmp_path, counter):
    """The whole loop on the tiny model: a warm start that stores the code word and, when it
    changes, inserts the new one or updates the old entry half the time each; the greedy trunk
    inserts, so each step's group at the second chunk holds inserts (r5 0: the old value
    stays) and updates (r5 1), and GRPO moves probability from the insert to the update."""
    model, data, first, second = _overwrite_task(tmp_path, counter)
    insert_alpha, insert_beta, update = (
        call_token("alpha"),
        call_token("beta"),
        update_token("beta"),
    )
    warm = _warm_start(
        tmp_path,
        model,
        [(first, insert_alpha)] * 8 + [(second, insert_beta)] * 4 + [(second, update)] * 4,
    )
    cfg = _branch_run(model, data, warm, tmp_path / "run")
    train = [r for r in read_metrics(tmp_path / "run") if r["kind"] == "train"]
    first_step = train[0]
    # one group of G at the chunk that wants the change; the greedy trunk inserted (r5 0)
    assert first_step["branch_groups"] == 1 and first_step["samples"] == cfg.rollout.group_size
    assert first_step["branch_greedy_r5"] == 0.0 and first_step["branches_above_greedy"] > 0
    trained = tmp_path / "run" / "checkpoints" / "step_000002" / "policy"
    gain = _logprob(trained, second, update) - _logprob(warm, second, update)
    loss = _logprob(trained, second, insert_beta) - _logprob(warm, second, insert_beta)
    assert gain > 0.3 and loss < 0  # measured: +0.88 and -1.03 nats (float32)
    # each response of each step's group, with the score and advantage it was trained on
    rows = [json.loads(line) for line in (tmp_path / "run" / "branches.jsonl").open()]
    assert [r["step"] for r in rows] == [1] * cfg.rollout.group_size + [2] * cfg.rollout.group_size
    step1 = rows[: cfg.rollout.group_size]
    assert step1[0]["branch"] == 0 and step1[0]["r5"] == 0.0  # the greedy trunk inserted
    assert all(r["advantage"] > 0 for r in step1 if r["r5"] == 1.0)
    assert all(r["advantage"] < 0 for r in step1 if r["r5"] == 0.0)


def test_truncation_penalty_teaches_a_branch_to_end_its_response(tmp_path, counter):
    """The failure the penalty is for: with r2 unweighted a response that makes its call and
    then runs on to max_new_tokens scores what the one that ends scores, so nothing charges
    length. The warm start updates the code word and then either ends or babbles past the
    3-token budget, half the time each. Without the penalty, 2 steps leave babbling about as
    likely (measured: log p("hmm" | update) -0.81 -> -0.79); with it the cut responses rank
    below the ended ones and GRPO moves probability to ending (-0.81 -> -7.5)."""
    model, data, first, second = _overwrite_task(tmp_path, counter)
    update = update_token("beta")
    babble = update + " hmm hmm hmm"  # cut at rollout.max_new_tokens = 3
    warm = _warm_start(
        tmp_path,
        model,
        [(first, call_token("alpha"))] * 8 + [(second, update)] * 4 + [(second, babble)] * 4,
        # trained to convergence: at lr 0.05 for 10 epochs the share of babbling it learned
        # ranged from 5% to 70% with the CPU's kernels (AVX2 against AVX-512)
        lr=0.01,
        epochs=40,
    )

    def babble_after_update(folder) -> float:
        """log p("hmm" | the update call): how likely the response runs on."""
        return _logprob(folder, second, update + " hmm") - _logprob(folder, second, update)

    def trained(penalty: float):
        run = tmp_path / f"run-{penalty}"
        _branch_run(model, data, warm, run, **{"reward.truncation_penalty": penalty})
        first_step = next(r for r in read_metrics(run) if r["kind"] == "train")
        assert first_step["branch_groups"] == 1
        assert 0 < first_step["branches_cut"] < 1  # some responses were cut, some ended
        return run / "checkpoints" / "step_000002" / "policy"

    before = babble_after_update(warm)
    assert -1.2 < before < -0.4  # it babbles after the update about half the time
    assert babble_after_update(trained(0.0)) > before - 0.3
    assert babble_after_update(trained(1.0)) < before - 1.0


@pytest.mark.parametrize("where", ["changes", "drops"])
def test_drop_groups_form_where_the_greedy_response_leaves_a_due_fact_unstated(
    counter, conflict, where
):
    """`ppo.branch_chunks: drops`: a trunk that stores nothing never holds an old value, so no
    chunk wants a change and `changes` forms no group; `drops` forms one at every chunk that
    brings a fact the greedy response left unstated, the greedy response first, and keep ranks
    the sampled responses that store it above it."""
    agent = build_agent(WriterConfig(prompt="compact", max_new_tokens=640, memory=VIEW), counter)
    reward = RewardConfig(gamma=0.0, call_weight=0.0, aim_weight=1.0, keep_weight=1.0)
    scoring = Scoring(ExtractiveReader(), None, reward, counter)
    done = branch_rollout(
        agent, NoInsertsOnGreedyRows(), SAMPLED, conflict, G, VIEW, scoring, where
    )
    if where == "changes":
        assert done.samples == []
        return
    bringing = {
        (i, f.start) for i, inst in enumerate(conflict) for f in facts_of(inst)
    }  # (instance, chunk) where a fact is first due: the trunk leaves it unstated
    keys = [(s.group, s.chunk_index) for s in done.samples]
    assert set(keys) == bringing and len(keys) == G * len(bringing)
    advantages = group_advantages(
        [s.terms.total for s in done.samples],
        group_keys([g for g, _ in keys], [c for _, c in keys], GroupBy.BRANCH),
    )
    for k, (aim, adv) in enumerate(zip(done.aims, advantages, strict=True)):
        assert aim.wanted == 0  # quiet chunks all
        if k % G == 0:  # the greedy response, first in its group
            assert aim.kept < aim.due and adv < 0
        else:
            assert aim.kept == aim.due and adv > 0
    assert not any(done.guided)
