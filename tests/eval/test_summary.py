"""Row grouping of `memalpha.eval.summary`: what the reports and the quickstart's paired
comparisons average over."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from memalpha.errors import DataError
from memalpha.eval import EvalConfig
from memalpha.eval.stats import apart, stratified_interval
from memalpha.eval.summary import (
    _colors,
    by_instance,
    compare_runs,
    fate_moves,
    markdown,
    pooled_rows,
    summarize,
    write_summary,
)


def row(method, instance, question, score, scale=1):
    return {
        "method": method,
        "scale": scale,
        "instance_id": instance,
        "question_id": question,
        "score": score,
        "data_source": "squad",
        "competency": "AR",
        "memory_tokens": 10,
        "input_tokens": 100,
    }


def test_a_redone_question_counts_once_with_its_last_score():
    rows = [row("sft", "a", "q1", 0.0), row("sft", "a", "q2", 1.0), row("sft", "a", "q1", 1.0)]
    grouped = by_instance(rows)
    assert list(grouped) == [("sft", 1, "a")]
    assert sorted(r["score"] for r in grouped["sft", 1, "a"]) == [1.0, 1.0]
    assert summarize(rows)["methods"]["sft"]["1"]["overall"] == 1.0


def test_instances_are_kept_apart_by_method_and_scale():
    rows = [
        row("sft", "a", "q1", 1.0),
        row("sft", "a", "q1", 0.0, scale=2),
        row("rag", "a", "q1", 0.5),
        row("sft", "b", "q1", 0.0),
    ]
    grouped = by_instance(rows)
    assert set(grouped) == {("sft", 1, "a"), ("sft", 2, "a"), ("rag", 1, "a"), ("sft", 1, "b")}
    summary = summarize(rows)["methods"]
    assert summary["sft"]["1"]["overall"] == 0.5  # mean over instances a (1.0) and b (0.0)
    assert summary["sft"]["2"]["overall"] == 0.0
    assert summary["rag"]["1"]["overall"] == 0.5


def test_competency_intervals_resample_within_sources_and_name_methods_apart():
    rows = [row("rule", f"r{i}", "q", s) for i, s in enumerate((0.75, 0.875, 0.625, 0.75))]
    rows += [row("untrained", f"u{i}", "q", s) for i, s in enumerate((0.0, 0.125, 0.0, 0.0))]
    rows += [row("close", f"c{i}", "q", s) for i, s in enumerate((0.5, 0.875, 0.75, 0.25))]
    summary = summarize(rows)
    cells = {m: s["1"] for m, s in summary["methods"].items()}
    for cell in cells.values():
        low, high = cell["intervals"]["AR"]
        assert low <= cell["competencies"]["AR"] <= high and low < high
    pairs = apart({m: tuple(c["intervals"]["AR"]) for m, c in cells.items()})
    assert ("rule", "untrained") in pairs and ("close", "untrained") in pairs
    assert ("rule", "close") not in pairs and ("close", "rule") not in pairs
    assert "rule > untrained" in markdown(summary)
    # two sources of one competency: each resampled on its own, the mean of their means
    assert stratified_interval([[1.0, 1.0], [0.0, 0.0]]) == (0.5, 0.5)
    # one instance has no interval, and nothing is called apart on it
    single = summarize([row("rule", "r0", "q", 1.0), row("untrained", "u0", "q", 0.0)])
    assert all(not s["1"]["intervals"] for s in single["methods"].values())
    assert "no interval" in markdown(single) and ">" not in markdown(single).split("|---|")[-1]


def test_paired_differences_use_the_instances_both_methods_answered():
    base = (0.25, 0.5, 0.0, 0.75)
    rows = [row("grpo", f"i{i}", "q", s + 0.25) for i, s in enumerate(base)]
    rows += [row("sft", f"i{i}", "q", s) for i, s in enumerate(base)]
    rows += [row("sft", "only-sft", "q", 1.0)]  # no partner: not in the pair
    rows += [row("noisy", f"i{i}", "q", s) for i, s in enumerate((1.0, 0.0, 0.0, 1.0))]
    paired = summarize(rows)["paired"]["1"]
    exact = paired["grpo - sft"]["AR"]
    assert exact["diff"] == 0.25 and exact["interval"] == (0.25, 0.25)
    assert exact["instances"] == 4
    low, high = paired["grpo - noisy"]["AR"]["interval"]
    assert low < 0 < high  # differences of both signs: not beyond noise
    md = markdown(summarize(rows))
    assert "| grpo - sft | AR | +0.250 [+0.250, +0.250] * |" in md
    (noisy,) = [line for line in md.splitlines() if line.startswith("| grpo - noisy | AR |")]
    assert "+0.125" in noisy and not noisy.endswith("* |")


def test_a_pool_averages_its_members_question_by_question():
    """Seeds 0 and 1 of a recipe: each beats the warm start on a different instance, so
    neither alone is beyond noise; their pool is +0.25 on every instance."""
    rows = [row("warm", f"i{i}", "q", 0.5) for i in range(4)]
    rows += [row("seed0", f"i{i}", "q", s) for i, s in enumerate((1.0, 0.5, 1.0, 0.5))]
    rows += [row("seed1", f"i{i}", "q", s) for i, s in enumerate((0.5, 1.0, 0.5, 1.0))]
    rows += [row("seed1", "only-seed1", "q", 1.0)]  # not answered by seed0: not pooled
    rows[-2] |= {"memory_tokens": 30}
    pooled = pooled_rows(rows, {"seeds": ["seed0", "seed1"]})
    assert [(r["instance_id"], r["score"]) for r in pooled] == [(f"i{i}", 0.75) for i in range(4)]
    assert pooled[-1]["memory_tokens"] == 20  # the mean of 10 and 30
    summary = summarize(rows + pooled)
    assert summary["paired"]["1"]["seeds - warm"]["AR"]["interval"] == (0.25, 0.25)
    assert summary["paired"]["1"]["seed0 - warm"]["AR"]["interval"][0] == 0.0


def test_conflict_questions_count_by_the_fate_of_their_changed_facts():
    """A question whose facts fared apart is "mixed"; questions without fates (another
    competency, or a method that keeps no memory) are not counted; a pool has no memory of
    its own, so no fates; the report shows the split."""
    fates = [["overwritten"], ["overwritten"], ["both"], ["lost", "overwritten"]]
    scores = [1.0, 0.0, 1.0, 0.0]
    rows = [
        row("seed0", "i", f"q{n}", s) | {"fates": f}
        for n, (f, s) in enumerate(zip(fates, scores, strict=True))
    ]
    rows += [row("seed0", "j", "q0", 1.0), row("seed1", "i", "q0", 0.0) | {"fates": ["old"]}]
    rows += [row("rag", "i", "q0", 1.0)]
    summary = summarize(rows + pooled_rows(rows, {"seeds": ["seed0", "seed1"]}))["methods"]
    cells = summary["seed0"]["1"]["fates"]
    assert {f: c["questions"] for f, c in cells.items()} == {
        "overwritten": 2,
        "both": 1,
        "old": 0,
        "lost": 0,
        "mixed": 1,
    }
    assert cells["overwritten"]["score"] == 0.5 and cells["both"]["score"] == 1.0
    assert summary["seed1"]["1"]["fates"]["old"] == {"questions": 1, "score": 0.0}
    assert "fates" not in summary["rag"]["1"] and "fates" not in summary["seeds"]["1"]
    shown = markdown({"aggregation": "x", "methods": summary})
    assert "| seed0 | 0.50 (2) | 1.00 (1) | – | – | 0.00 (1) |" in shown


def test_fate_moves_say_which_facts_a_writer_traded_for_which():
    """Two writers level on CR can differ in what they kept: here one overwrite gained where
    the base kept the old value, one lost what the base had overwritten, one "both" became an
    overwrite at no change. The moves' score changes sum to the CR difference on the shared
    questions; a question one writer did not answer, or answered without fates, is left out,
    and a question answered twice (a job redone after a kill) counts once, as it was last."""
    base_fates = [["old"], ["overwritten"], ["both"], ["overwritten"], ["lost"]]
    base_scores = [0.0, 1.0, 1.0, 1.0, 0.0]
    fates = [["overwritten"], ["lost"], ["overwritten"], ["overwritten", "lost"]]
    scores = [1.0, 0.0, 1.0, 1.0]
    base = [
        row("warm", "i", f"q{n}", s) | {"fates": f}
        for n, (f, s) in enumerate(zip(base_fates, base_scores, strict=True))
    ]
    rows = [
        row("grpo", "i", f"q{n}", s) | {"fates": f}
        for n, (f, s) in enumerate(zip(fates, scores, strict=True))
    ]
    rows += [row("grpo", "i", "q9", 1.0) | {"fates": ["old"]}, row("grpo", "j", "q0", 0.0)]
    redone = row("grpo", "i", "q1", 1.0) | {"fates": ["both"]}  # q1 again, before its last row
    moves = fate_moves(base, [redone, *rows])
    assert moves == {
        ("old", "overwritten"): {"questions": 1, "score_change": 1.0},
        ("overwritten", "lost"): {"questions": 1, "score_change": -1.0},
        ("both", "overwritten"): {"questions": 1, "score_change": 0.0},
        ("overwritten", "mixed"): {"questions": 1, "score_change": 0.0},
    }
    shared = len(fates)
    cr_change = (sum(scores) - sum(base_scores[:shared])) / shared
    assert sum(m["score_change"] for m in moves.values()) / shared == cr_change
    assert fate_moves(base, [row("grpo", "i", "q0", 1.0) | {"scale": 16, "fates": ["old"]}]) == {}


def test_the_share_of_changed_facts_overwritten_pairs_like_a_competency(tmp_path):
    """The writer's part of conflict resolution, per instance, paired: a seed that overwrites
    every changed fact where the warm start overwrote half of them is +0.5 on each instance;
    a pool carries its members' mean; a method without fates (rag) is not paired on it; and a
    report from the stored summaries pairs it the same way."""

    def fated(method, instance, kinds):
        return [
            row(method, instance, f"q{n}", 1.0) | {"fates": [kind]} for n, kind in enumerate(kinds)
        ]

    rows = []
    for i in ("i0", "i1", "i2"):
        rows += fated("warm", i, ["overwritten", "both"])
        rows += fated("seed0", i, ["overwritten", "overwritten"])
        rows += fated("seed1", i, ["lost", "both"])
        rows += [row("rag", i, f"q{n}", 1.0) for n in range(2)]
    summary = summarize(rows + pooled_rows(rows, {"seeds": ["seed0", "seed1"]}))
    paired = summary["paired"]["1"]
    assert paired["seed0 - warm"]["overwritten"] == {
        "diff": 0.5,
        "interval": (0.5, 0.5),
        "instances": 3,
    }
    assert paired["seed1 - warm"]["overwritten"]["diff"] == -0.5
    assert paired["seeds - warm"]["overwritten"]["diff"] == 0.0  # (1 + 0) / 2 against 0.5
    assert "overwritten" not in paired["rag - warm"] and "AR" in paired["rag - warm"]
    assert "| seed0 - warm | overwritten | +0.500 [+0.500, +0.500] * |" in markdown(summary)
    stored = tmp_path / "run.json"
    stored.write_text(json.dumps(summary), "utf-8")
    report = compare_runs([stored], pools={"s": ["run/seed0", "run/seed1"]})
    assert "| run/seed0 - run/warm | overwritten | +0.500 [+0.500, +0.500] * |" in report
    assert "| run/warm - s | overwritten | +0.000" in report  # the pool: seeds pooled again


@pytest.mark.parametrize(
    "pools",
    [{"a": ["a", "b"]}, {"ab": ["a"]}, {"ab": ["a", "a"]}, {"ab": ["a", "missing"]}],
)
def test_a_pool_needs_a_new_name_and_two_methods_of_the_config(pools):
    methods = [{"name": n, "kind": "rule-writer"} for n in ("a", "b")]
    with pytest.raises(ValidationError, match="pool"):
        EvalConfig(methods=methods, files=["x.jsonl"], pools=pools)
    assert EvalConfig(methods=methods, files=["x.jsonl"], pools={"ab": ["a", "b"]}).pools


def test_reports_of_many_methods_give_each_its_own_colour(tmp_path):
    """Thirteen writers in one plot (configs/eval/select.yaml): the default cycle of ten
    colours drew two methods alike."""
    assert len(set(_colors(13))) == 13 and len(set(_colors(4))) == 4
    rows = [
        row(f"m{m}", f"i{i}", "q", (m + i) % 2, scale)
        for m in range(13)
        for i in range(2)
        for scale in (1, 4)
    ]
    write_summary(tmp_path, rows, {"pool": ["m0", "m1"]})
    assert (tmp_path / "scores.png").stat().st_size > 0 and (tmp_path / "length.png").is_file()


def test_report_pairs_and_pools_methods_of_runs_whose_directories_are_gone(tmp_path):
    """Each seed trained and evaluated in its own session: only the summary files are left
    (committed under benchmarks/results), and they still pair instance by instance and pool
    the seeds as one evaluation run's pool would."""
    warm = [row("warm", f"i{i}", q, 0.5) for i in range(4) for q in ("q1", "q2")]
    seed0 = [row("grpo", f"i{i}", "q1", s) for i, s in enumerate((1.0, 0.0, 1.0, 0.5))]
    seed0 += [row("grpo", f"i{i}", "q2", s) for i, s in enumerate((1.0, 1.0, 1.0, 0.5))]
    seed1 = [
        row("grpo", f"i{i}", q, s) for i, s in enumerate((0.5, 1.0, 0.5, 1.0)) for q in ("q1", "q2")
    ]  # seed0's instance means are 1.0, 0.5, 1.0, 0.5: the pool is 0.75 on every instance
    session_a, session_b = tmp_path / "eval_a_summary.json", tmp_path / "session-b"
    session_a.write_text(json.dumps(summarize(warm + seed0)))
    session_b.mkdir()
    (session_b / "summary.json").write_text(json.dumps(summarize(warm + seed1)))
    pool = {"seeds": ["eval_a_summary/grpo", "session-b/grpo"]}
    md = compare_runs([session_a, session_b], pool)
    one_run = summarize(warm + seed0 + [r | {"method": "grpo1"} for r in seed1])
    same = markdown(one_run).replace("grpo", "eval_a_summary/grpo")
    same = same.replace("eval_a_summary/grpo1", "session-b/grpo")
    assert "| eval_a_summary/grpo - eval_a_summary/warm | AR | +0.250 [+0.000, +0.500] |" in md
    assert "| seeds - session-b/warm | AR | +0.250 [+0.250, +0.250] * |" in md
    seeds = ("| eval_a_summary/grpo |", "| session-b/grpo |")
    rows_of_seeds = [line for line in same.splitlines() if line.startswith(seeds)]
    assert len(rows_of_seeds) == 2  # per seed: what one run holding both seeds reports
    assert all(line in md for line in rows_of_seeds)
    with pytest.raises(DataError, match="no instance scores for session-b/missing"):
        compare_runs([session_a, session_b], {"x": ["eval_a_summary/grpo", "session-b/missing"]})
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(DataError, match="not an evaluation summary"):
        compare_runs([tmp_path / "bad.json"])


def test_report_shows_summaries_without_instance_scores_unpaired(tmp_path):
    """Summaries written before they kept instance scores (most of benchmarks/results)."""
    old = summarize([row("rule", f"r{i}", "q", s) for i, s in enumerate((0.5, 1.0))])
    del old["methods"]["rule"]["1"]["by_instance"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    new = summarize([row("rule", f"r{i}", "q", s) for i, s in enumerate((0.5, 0.5))])
    (tmp_path / "new.json").write_text(json.dumps(new))
    md = compare_runs([tmp_path / "old.json", tmp_path / "new.json"])
    assert "| old/rule |" in md and "| new/rule |" in md
    assert "old/rule - " not in md and "- old/rule" not in md


def test_an_interval_that_touches_zero_is_not_beyond_noise():
    """The second seed of the keep recipe against its warm start, paired on 8 six-question
    instances (benchmarks/RESULTS.md, "Two seeds of the keep recipe"). The 2.5th percentile
    of the resampled means is exactly 0; summed in floats it came out 3.5e-18 and was marked
    beyond noise."""
    right = {"grpo": [[3, 3, 2, 3], [4, 4, 0, 0]], "warm": [[2, 1, 2, 2], [2, 2, 1, 1]]}
    rows = [
        row(method, f"{source}{i}", f"q{q}", float(q < n)) | {"data_source": source}
        for method, sources in right.items()
        for source, counts in zip(("conflict", "synth_cr"), sources, strict=True)
        for i, n in enumerate(counts)
        for q in range(6)
    ]
    summary = summarize(rows)
    pair = summary["paired"]["1"]["grpo - warm"]["AR"]
    assert pair["interval"][0] == 0.0 and pair["diff"] == 0.125
    (line,) = [x for x in markdown(summary).splitlines() if x.startswith("| grpo - warm")]
    assert line.endswith("+0.125 [+0.000, +0.271] |")  # touches 0: no "*"
    # only 0 is snapped: equal scores keep an interval that holds their mean exactly
    # (rounding every end to 12 decimals put 5/12's above it, and the bar chart refused)
    assert stratified_interval([[5 / 12] * 4, [5 / 12] * 4]) == (5 / 12, 5 / 12)


def test_report_warns_when_the_runs_compared_wrote_under_other_thread_counts(tmp_path):
    """Greedy bf16 writing differs with the thread count (the same warm start overwrote 25
    changed facts under two threads, 23 under one: benchmarks/RESULTS.md, "Groups of 8 at
    change chunks"), so a difference between runs written under two counts includes it."""
    two = summarize([row("warm", f"i{i}", "q", 0.5) | {"threads": 2} for i in range(2)])
    one = summarize([row("grpo", f"i{i}", "q", 1.0) | {"threads": 1} for i in range(2)])
    also_one = summarize([row("rule", f"i{i}", "q", 1.0) | {"threads": 1} for i in range(2)])
    unknown = summarize([row("old", f"i{i}", "q", 1.0) for i in range(2)])
    for name, summary in [("two", two), ("one", one), ("also", also_one), ("unknown", unknown)]:
        (tmp_path / f"{name}.json").write_text(json.dumps(summary))
    assert one["methods"]["grpo"]["1"]["threads"] == [1]
    assert unknown["methods"]["old"]["1"]["threads"] == []
    warned = compare_runs([tmp_path / "two.json", tmp_path / "one.json", tmp_path / "unknown.json"])
    assert warned.startswith("**Written under different thread counts** (")
    assert "(one/grpo 1, two/warm 2, unknown/old ?; ?: not recorded)" in warned
    assert "| one/grpo - two/warm | AR | +0.500" in warned  # still paired, with the warning
    same = compare_runs([tmp_path / "one.json", tmp_path / "also.json", tmp_path / "unknown.json"])
    assert "thread counts" not in same


def test_report_compares_runs_at_a_longer_scale_and_names_a_run_without_it(tmp_path):
    """Seeds evaluated at 1x and 16x in separate runs pool at 16x as at 1x (the length study:
    a recipe's 16x score is its seeds pooled)."""
    runs, scores = {}, {"a": ((1.0, 1.0), (0.5, 1.0)), "b": ((1.0, 0.0), (0.0, 0.5))}
    for name, (short, long) in scores.items():
        rows = [row("grpo", f"i{i}", "q", s, 1) for i, s in enumerate(short)]
        rows += [row("grpo", f"i{i}", "q", s, 16) for i, s in enumerate(long)]
        runs[name] = tmp_path / f"{name}.json"
        runs[name].write_text(json.dumps(summarize(rows)))
    pool = {"seeds": ["a/grpo", "b/grpo"]}
    at_16 = compare_runs([runs["a"], runs["b"]], pool, scale=16)
    assert at_16.startswith("At input length ×16.")
    assert "| seeds | 0.500 | 0.500 | 0.500 | 10 |" in at_16  # instances 0.25 and 0.75
    assert "| a/grpo - b/grpo | AR | +0.500 [+0.500, +0.500] * |" in at_16
    at_1 = compare_runs([runs["a"], runs["b"]], pool)
    assert "| seeds | 0.750 | 0.750 | 0.750 | 10 |" in at_1 and "×16" not in at_1
    assert "| a/grpo - b/grpo | AR | +0.500 [+0.000, +1.000] |" in at_1
    only_1 = tmp_path / "c.json"
    only_1.write_text(json.dumps(summarize([row("rule", "i0", "q", 1.0)])))
    with pytest.raises(DataError, match=r"c/rule was not answered at scale 16; its scales: 1"):
        compare_runs([runs["a"], only_1], scale=16)
