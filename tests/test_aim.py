"""Aim (`memalpha.aim`, the reward's r5) on real conflict instances written by the real rule
writers: the selective teacher hits every change its chunks announce, the store-everything
rule writer none; a call on the wrong id, or one binding a value to another person, misses."""

from __future__ import annotations

from dataclasses import replace

import pytest

from memalpha.agent import RuleWriterLLM, WriterConfig, build_agent
from memalpha.aim import (
    announced_at,
    announces,
    changes_of,
    episode_aim,
    episode_fates,
    facts_of,
    path_class,
)
from memalpha.llm import FORMATS, SamplingParams
from memalpha.memory import (
    CallStatus,
    Component,
    Memory,
    MemoryConfig,
    ToolCall,
    ToolExecutor,
    ToolRegistry,
    ToolResult,
)
from memalpha.reader import ExtractiveReader
from memalpha.reward import RewardConfig, aim_reward
from memalpha.rl.trainer import trained_chunks
from memalpha.rollout import Scoring, rollout, summarize, to_samples

VIEW = MemoryConfig(view={"mode": "retrieved", "k": 8})
GREEDY = SamplingParams(temperature=0.0, max_new_tokens=640)


@pytest.fixture(scope="module")
def conflict(real_instances):
    return real_instances(
        ["synth_cr", "conflict"],
        instances=2,
        max_tokens=512,
        chunk_tokens=128,
        questions=6,
        facts=6,
    )


def _written(counter, instances, selective: bool, reward=None, id_last: bool = False, view=VIEW):
    agent = build_agent(WriterConfig(prompt="compact", max_new_tokens=640, memory=view), counter)
    writer = RuleWriterLLM(FORMATS["hermes"], selective=selective, id_last=id_last)
    scoring = Scoring(ExtractiveReader(), None, reward or RewardConfig(gamma=0.0), counter)
    return rollout(agent, writer, GREEDY, instances, 1, view, scoring)


def _semantic_update(result) -> bool:
    call = result.call
    return call.name == "memory_update" and call.arguments["memory_type"] == "semantic_memory"


def _update_chunk(trajectory):
    """(index, calls) of the first chunk with a semantic update."""
    for i, chunk in enumerate(trajectory.calls):
        if any(_semantic_update(r) for r in chunk):
            return i, chunk
    raise AssertionError("the selective teacher made no update")


def test_the_teacher_hits_every_change_and_the_rule_writer_none(counter, conflict):
    teacher = _written(counter, conflict, selective=True)
    rule = _written(counter, conflict, selective=False)
    wanted_total = 0
    for t in teacher.trajectories:
        aims = episode_aim(t.instance, t.calls, VIEW, counter)
        assert all(a.hits == a.wanted == a.aimed for a in aims)
        # its deletes leave the new value stated, so the stricter rule changes nothing
        assert episode_aim(t.instance, t.calls, VIEW, counter, deletes_need_new=True) == aims
        wanted_total += sum(a.wanted for a in aims)
        # every change is announced by some chunk, after the one that stated its old value
        for change in changes_of(t.instance):
            assert any(announces(c, change) for c in t.instance.chunks[1:])
    assert wanted_total >= len(conflict) * 4
    for t in rule.trajectories:
        aims = episode_aim(t.instance, t.calls, VIEW, counter)
        assert sum(a.hits for a in aims) == sum(a.aimed for a in aims) == 0  # core only
        assert sum(a.wanted for a in aims) > 0


@pytest.mark.parametrize("ids", ["before", "after"])
def test_the_id_last_teacher_builds_the_same_memories_naming_each_id_after_its_fact(
    counter, conflict, ids
):
    """Whether the view shows `[s3] text` or `text [s3]`, the teacher reads the same entries."""
    first = _written(counter, conflict, selective=True).trajectories
    view = MemoryConfig(view={"mode": "retrieved", "k": 8, "ids": ids})
    last = _written(counter, conflict, selective=True, id_last=True, view=view).trajectories
    deletes = 0
    for a, b in zip(first, last, strict=True):
        shown = b.episode.steps[-1].messages[0]["content"]
        assert (" [s" in shown) == (ids == "after") and ("\n[s" in shown) == (ids == "before")
        assert b.memory.snapshot() == a.memory.snapshot()
        aims = episode_aim(b.instance, b.calls, VIEW, counter, deletes_need_new=True)
        assert aims == episode_aim(a.instance, a.calls, VIEW, counter, deletes_need_new=True)
        assert all(x.hits == x.wanted == x.aimed for x in aims)
        for chunk in b.calls:
            for k, result in enumerate(chunk):
                args = result.call.arguments
                if args["memory_type"] == "core_memory" or result.call.name not in (
                    "memory_update",
                    "memory_delete",
                ):
                    continue
                if result.call.name == "memory_update":  # the text first, then the id
                    assert list(args) == ["memory_type", "new_content", "memory_id"]
                else:  # the new employer inserted just before the old entry goes
                    deletes += 1
                    before = chunk[k - 1].call
                    assert before.name == "new_memory_insert" and " works at " in str(
                        before.arguments["content"]
                    )
        text = "".join(step.generation.text for step in b.episode.steps)
        assert '"new_content"' in text and text.count('"memory_id"') > 0
    assert deletes > 0


def test_wrong_id_and_value_bound_to_another_person_miss(counter, conflict):
    [t] = _written(counter, conflict[:1], selective=True).trajectories
    index, chunk = _update_chunk(t)
    updates = [k for k, r in enumerate(chunk) if _semantic_update(r)]
    base = episode_aim(t.instance, t.calls, VIEW, counter)[index]
    assert base.hits == base.wanted >= 2

    def with_call(k: int, **args: str) -> list:
        call = chunk[k].call
        edited = replace(chunk[k], call=ToolCall(call.name, {**call.arguments, **args}))
        calls = [list(c) for c in t.calls]
        calls[index][k] = edited
        return calls

    unknown = episode_aim(t.instance, with_call(updates[0], memory_id="s999"), VIEW, counter)
    assert unknown[index].hits == base.hits - 1 and unknown[index].aimed == base.aimed
    # the first update's entry, rewritten with the value meant for another person
    meant = chunk[updates[0]].call.arguments["new_content"]
    other = next(c for c in changes_of(t.instance) if c.subject not in meant)
    crossed_content = f"The pet of {other.subject} is {other.new}."
    crossed = episode_aim(
        t.instance, with_call(updates[0], new_content=crossed_content), VIEW, counter
    )
    assert crossed[index].hits == base.hits - 1
    # a delete of the right entry resolves the change as the update did
    deleted = with_call(updates[0])
    call = chunk[updates[0]].call
    deleted[index][updates[0]] = replace(
        chunk[updates[0]],
        call=ToolCall(
            "memory_delete",
            {"memory_type": "semantic_memory", "memory_id": call.arguments["memory_id"]},
        ),
    )
    assert episode_aim(t.instance, deleted, VIEW, counter)[index].hits == base.hits
    # ... but leaves the new value unstated: under `aim_delete: replaced` that misses, and the
    # same delete with the new value inserted in the same chunk hits
    strict = episode_aim(t.instance, deleted, VIEW, counter, deletes_need_new=True)[index]
    assert (strict.hits, strict.aimed) == (base.hits - 1, base.aimed)
    content = call.arguments["new_content"]
    insert = ToolCall("new_memory_insert", {"memory_type": "semantic", "content": content})
    deleted[index].append(ToolResult(insert, CallStatus.OK))
    strict = episode_aim(t.instance, deleted, VIEW, counter, deletes_need_new=True)[index]
    assert (strict.hits, strict.aimed) == (base.hits, base.aimed)


def test_aim_reward_is_the_overlap_of_calls_and_wanted_changes():
    assert aim_reward(0, 0, 0) == 1.0  # nothing to change, nothing changed
    assert aim_reward(2, 2, 2) == 1.0
    assert aim_reward(0, 3, 0) == 0.0  # updates where nothing changed
    assert aim_reward(1, 3, 2) == pytest.approx(1 / 4)
    assert aim_reward(0, 3, 0, quiet="free") == 1.0  # reward.aim_quiet: free
    assert aim_reward(1, 3, 2, quiet="free") == pytest.approx(1 / 4)
    # reward.aim_misses: free, recall at a chunk that wants a change; quiet chunks as before
    assert aim_reward(1, 3, 2, misses="free") == pytest.approx(1 / 2)
    assert aim_reward(0, 3, 2, misses="free") == 0.0
    assert aim_reward(0, 3, 0, misses="free") == 0.0
    # reward.aim_misses: fate, the share of wanted changes resolved as the chunk ends
    assert aim_reward(0, 3, 2, misses="fate", resolved=1) == pytest.approx(1 / 2)
    assert aim_reward(2, 2, 2, misses="fate", resolved=0) == 0.0  # hits undone by the end
    assert aim_reward(0, 3, 0, misses="fate") == 0.0  # quiet chunks as before
    with pytest.raises(ValueError, match="out of range"):
        aim_reward(2, 1, 3)
    with pytest.raises(ValueError, match="3 resolved"):
        aim_reward(0, 0, 2, misses="fate", resolved=3)


def test_aim_needs_one_call_list_per_chunk(counter, conflict):
    with pytest.raises(ValueError, match="chunks of calls"):
        episode_aim(conflict[0], [[]], VIEW, counter)


def test_aim_weight_adds_r5_to_every_chunk_reward(counter, conflict):
    plain = _written(counter, conflict, selective=False)
    weighted = RewardConfig(gamma=0.0, aim_weight=0.5)
    aimed = _written(counter, conflict, selective=False, reward=weighted)
    for before, after in zip(plain.scores, aimed.scores, strict=True):
        for a, b in zip(before.terms, after.terms, strict=True):
            assert a.r5 == b.r5 and b.aim_r5 == pytest.approx(0.5 * b.r5)
            assert b.total == pytest.approx(a.total + 0.5 * a.r5)
    summary = summarize(aimed.trajectories, aimed.scores)
    assert 0.0 < summary["r5_aim"] < 1.0  # chunks without changes score 1, update chunks 0
    assert summary["aim_r5"] == pytest.approx(0.5 * summary["r5_aim"])


def test_a_change_counts_once_however_many_entries_stated_it(counter, conflict):
    """Two entries stating the same old value, both deleted: one hit, two aimed calls."""
    [t] = _written(counter, conflict[:1], selective=True).trajectories
    index, chunk = _update_chunk(t)
    update = next(r.call for r in chunk if _semantic_update(r))
    memory = Memory(VIEW, counter)
    executor = ToolExecutor(ToolRegistry())
    for calls in t.calls[:index]:
        executor.execute_all(memory, [r.call for r in calls])
    old = memory.get(Component.SEMANTIC, update.arguments["memory_id"]).content
    copy = ToolCall("new_memory_insert", {"memory_type": "semantic", "content": f"Again: {old}"})
    copy_id = executor.execute(memory, copy).entry_id
    copy_result = ToolResult(copy, CallStatus.OK)
    calls = [list(c) for c in t.calls]
    calls[index - 1].append(copy_result)
    delete_copy = ToolCall("memory_delete", {"memory_type": "semantic", "memory_id": copy_id})
    calls[index].append(ToolResult(delete_copy, CallStatus.OK))
    base = episode_aim(t.instance, t.calls, VIEW, counter)[index]
    both = episode_aim(t.instance, calls, VIEW, counter)[index]
    assert (both.wanted, both.hits, both.aimed) == (base.wanted, base.hits, base.aimed + 1)
    assert aim_reward(both.hits, both.aimed, both.wanted) < 1.0


def test_train_chunks_changes_keeps_the_chunks_where_the_teacher_changes_facts(counter, conflict):
    teacher = _written(counter, conflict, selective=True)
    samples = to_samples(teacher.trajectories, teacher.scores)
    advantages = [float(i) for i in range(len(samples))]
    assert trained_chunks(samples, advantages, teacher.trajectories, "all") == (
        samples,
        advantages,
    )
    kept, kept_advantages = trained_chunks(samples, advantages, teacher.trajectories, "changes")
    assert 0 < len(kept) < len(samples)
    assert kept_advantages == [advantages[samples.index(s)] for s in kept]  # each its own
    for s in samples:
        t = teacher.trajectories[s.trajectory]
        changes_here = any(
            r.call.name == "memory_delete" or _semantic_update(r) for r in t.calls[s.chunk_index]
        )
        # the teacher updates or deletes exactly where a chunk announces a change
        assert (s in kept) == changes_here


def test_facts_run_from_the_chunk_that_states_them_until_the_chunk_that_changes_them(conflict):
    for instance in conflict:
        facts = {(f.subject, f.value): f for f in facts_of(instance)}
        for change in changes_of(instance):
            new = facts[(change.subject, change.new)]
            assert new.end is None and announces(instance.chunks[new.start], change)
            assert not any(announces(c, change) for c in instance.chunks[: new.start])
            old = facts.get((change.subject, change.old))
            if old is not None:  # stated before the change, due until it
                assert old.start < old.end == new.start
        bridges = [
            f for f in facts.values() if f.subject not in {c.subject for c in changes_of(instance)}
        ]
        assert bridges  # e.g. the city of the company someone now works at


def test_keep_charges_a_chunk_that_stores_nothing_or_deletes_what_memory_held(counter, conflict):
    """The teacher (and the store-everything rule writer) keep every due fact; dropping a
    chunk's inserts loses the facts it brings (which r5 does not see), and deleting an entry
    that states a due fact at a chunk that changes nothing loses that fact."""
    for selective in (True, False):
        for t in _written(counter, conflict, selective=selective).trajectories:
            keeps = episode_aim(t.instance, t.calls, VIEW, counter)
            assert all(a.kept == a.due for a in keeps) and sum(a.due for a in keeps) > 0
    [t] = _written(counter, conflict[:1], selective=True).trajectories
    base = episode_aim(t.instance, t.calls, VIEW, counter)
    facts = facts_of(t.instance)
    bringing = next(i for i, c in enumerate(t.calls) if any(f.start == i for f in facts) and c)
    calls = [list(c) for c in t.calls]
    calls[bringing] = [r for r in calls[bringing] if r.call.name != "new_memory_insert"]
    dropped = episode_aim(t.instance, calls, VIEW, counter)[bringing]
    assert dropped.kept < dropped.due == base[bringing].due
    assert dropped.r6 < 1.0 == base[bringing].r6
    # a stray delete of an entry stating a due fact, at a chunk that wants no change
    quiet = next(i for i, a in enumerate(base) if i > bringing and not a.wanted and a.due)
    memory = Memory(VIEW, counter)
    executor = ToolExecutor(ToolRegistry())
    for chunk in t.calls[:quiet]:
        executor.execute_all(memory, [r.call for r in chunk])
    due = [f for f in facts if f.due_at(quiet)]
    entry = next(
        e for e in memory.entries(Component.SEMANTIC) if any(f.stated([e.content]) for f in due)
    )
    delete = ToolCall("memory_delete", {"memory_type": "semantic", "memory_id": entry.id})
    calls = [list(c) for c in t.calls]
    calls[quiet].append(ToolResult(delete, CallStatus.OK))
    stray = episode_aim(t.instance, calls, VIEW, counter)[quiet]
    lost = sum(f.stated([entry.content]) for f in due)
    assert (stray.due, stray.kept) == (base[quiet].due, base[quiet].due - lost)
    assert stray.r5 == 0.0  # and r5 charges it as an aimed call where nothing is wanted


def test_fate_pays_for_a_change_that_stands_at_the_chunks_end_whatever_was_called(
    counter, conflict
):
    """`aim_misses: fate` scores a change chunk on the wanted changes memory holds overwritten
    as it ends: an update that binds the new value resolves its change; a delete of the right
    entry that leaves the new value unstated does not (it loses the fact), nor does a value
    bound to another person; a call that misses harmlessly costs nothing, where the overlap
    charges it."""
    [t] = _written(counter, conflict[:1], selective=True).trajectories
    index, chunk = _update_chunk(t)
    update = next(k for k, r in enumerate(chunk) if _semantic_update(r))
    fate = RewardConfig(aim_misses="fate")
    base = episode_aim(t.instance, t.calls, VIEW, counter)[index]
    assert base.resolved == base.wanted >= 2 and base.aim_score(fate) == 1.0

    def scored(*edits: tuple[int, ToolCall | None], extra: ToolCall | None = None):
        calls = [list(c) for c in t.calls]
        for k, call in edits:
            calls[index][k] = replace(chunk[k], call=call)
        if extra is not None:
            calls[index].append(ToolResult(extra, CallStatus.OK))
        return episode_aim(t.instance, calls, VIEW, counter)[index]

    args = chunk[update].call.arguments
    entry = {"memory_type": "semantic_memory", "memory_id": args["memory_id"]}
    deleted = scored((update, ToolCall("memory_delete", entry)))
    assert deleted.hits == base.hits and deleted.resolved == base.resolved - 1
    assert deleted.aim_score(fate) == pytest.approx(1 - 1 / base.wanted)
    other = next(c for c in changes_of(t.instance) if c.subject not in args["new_content"])
    crossed = scored(
        (
            update,
            ToolCall(
                "memory_update",
                {**args, "new_content": f"The pet of {other.subject} is {other.new}."},
            ),
        )
    )
    assert crossed.resolved == base.resolved - 1
    stray = scored(
        extra=ToolCall("memory_update", {**entry, "memory_id": "s999", "new_content": "x"})
    )
    assert stray.aimed == base.aimed + 1 and stray.resolved == base.resolved
    assert stray.aim_score(fate) == 1.0 > stray.aim_score(RewardConfig())


def _made(results: list[list[ToolResult]]) -> list[list[ToolCall]]:
    """Each chunk's calls as the writer made them (what an eval keeps)."""
    return [[r.call for r in chunk] for chunk in results]


def test_fates_by_chunk_follow_each_change_from_its_first_statement_to_the_end(counter, conflict):
    """Both rule writers hold each change from the chunk that announces it (the teacher's core
    may still state an old value, so its fate is "both" or "overwritten"; the store-everything
    writer's is "both"); the last chunk's fates are the final memory's, and the chunks that
    form groups are those where aim finds a wanted change."""
    for selective, held in ((True, ("overwritten", "both")), (False, ("both",))):
        for t in _written(counter, conflict, selective=selective).trajectories:
            fates = episode_fates(t.instance, _made(t.calls), VIEW, counter)
            aims = episode_aim(t.instance, t.calls, VIEW, counter)
            assert [f.grouped for f in fates] == [a.wanted > 0 for a in aims]
            contents = t.memory.contents()
            assert fates[-1].fates == tuple(c.fate(contents) for c in changes_of(t.instance))
            for k, change in enumerate(changes_of(t.instance)):
                path = [f.fates[k] for f in fates]
                announced = announced_at(t.instance, change)
                assert path[announced] in held and path[announced - 1] in ("old", "lost")
                assert all(f in held for f in path[announced:])
                assert path_class(path, announced) == ("held", None)
    with pytest.raises(ValueError, match="chunks of calls"):
        episode_fates(conflict[0], [], VIEW, counter)


def test_a_delete_after_the_change_shows_as_a_drop_at_that_chunk(counter, conflict):
    [t] = _written(counter, conflict[:1], selective=True).trajectories
    change = changes_of(t.instance)[0]
    announced = announced_at(t.instance, change)
    last = len(t.calls) - 1
    assert announced < last
    memory = Memory(VIEW, counter)
    executor = ToolExecutor(ToolRegistry())
    for calls in t.calls[:last]:
        executor.execute_all(memory, [r.call for r in calls])
    holding = [  # every entry that states the new value (the selective teacher keeps one)
        e.id for e in memory.entries(Component.SEMANTIC) if change.fate([e.content]) != "lost"
    ]
    calls = [list(c) for c in t.calls]
    for entry_id in holding:
        delete = ToolCall("memory_delete", {"memory_type": "semantic", "memory_id": entry_id})
        calls[last].append(ToolResult(delete, CallStatus.OK))
    path = [f.fates[0] for f in episode_fates(t.instance, _made(calls), VIEW, counter)]
    assert path[-1] == "lost" and path[-2] == "overwritten"
    assert path_class(path, announced) == ("lost: dropped after its change", last)


def test_path_classes_name_where_a_change_was_dropped():
    assert path_class(["lost", "lost", "lost"], 1) == ("lost: never stored", None)
    assert path_class(["old", "lost", "lost"], 1) == ("lost: dropped at its change", 1)
    assert path_class(["old", "old", "lost"], 1) == ("lost: dropped after its change", 2)
    assert path_class(["old", "lost", "old", "lost"], 3) == ("lost: dropped at its change", 3)
    assert path_class(["old", "lost", "lost"], 2) == ("lost: dropped before its change", 1)
    assert path_class(["old", "old", "old"], 1) == ("old: new never written", None)
    assert path_class(["old", "both", "old"], 1) == ("old: new dropped", 2)
    assert path_class(["lost", "overwritten", "both"], 1) == ("held", None)
