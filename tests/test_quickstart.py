"""`memalpha quickstart` end to end through the real CLI, on the shipped data with the tiny
random model standing in for SmolLM2 (tests/tiny.py): every stage runs its real code (data
build, eval harness, warm start, GRPO trainer, report); only the model is small."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from memalpha.quickstart import _memory_verdict, load_quickstart_config, memory_by_instance

SMALL = [
    "train_data.0.instances=2",
    "train_data.1.instances=2",
    "train_data.2.instances=2",
    "test_data.0.instances=2",
    "test_data.1.instances=2",
    "test_data.2.instances=2",
    "sft.examples=4",
    "sft.batch_size=2",
    "sft.policy.batch_size=16",
    "train.policy.batch_size=16",
    "train.rollout.max_new_tokens=3",
    "train.schedule.steps=3",
    "reader.kind=extractive",  # no LLM reader: the tiny model could not answer anyway
]


def _quickstart(out, model, *extra: str, minutes: float = 10, recipe: str = "store-all"):
    cmd = [sys.executable, "-m", "memalpha.cli", "quickstart", "--out", str(out)]
    cmd += ["--recipe", recipe, "--minutes", str(minutes), "--set", f"base_model={model}"]
    for item in SMALL + list(extra):
        cmd += ["--set", item]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "COLUMNS": "200"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def first_run(tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("quickstart") / "qs"
    return out, _quickstart(out, tiny_model)


def test_quickstart_runs_every_stage_and_prints_the_table(first_run):
    out, done = first_run
    assert done.returncode == 0, done.stderr[-3000:]
    for stage in ("[1/5] dataset", "[3/5] supervised warm start", "[4/5] GRPO"):
        assert stage in done.stderr
    for writer in ("rule-writer", "untrained", "sft", "sft+grpo"):
        assert writer in done.stdout
    assert "sft+grpo - sft" in done.stdout
    result = json.loads((out / "result.json").read_text())
    assert result["grpo_steps"] == 3
    assert result["instances"] == 6
    assert set(result["writers"]) == {"rule-writer", "untrained", "sft", "sft+grpo"}
    # the rule writer stores the input, the extractive reader finds answers in it
    assert result["writers"]["rule-writer"]["overall"] > 0.3
    for name in ("summary.md", "scores.png", "curves.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "sft" / "policy" / "config.json").is_file()
    assert sum(1 for _ in (out / "data" / "test.jsonl").open()) == 6
    memory = result["memory"]
    assert memory["sft_tokens"] == result["writers"]["sft"]["memory_tokens"]
    assert memory["sft+grpo_tokens"] == result["writers"]["sft+grpo"]["memory_tokens"]
    assert memory["qa_low"] == result["comparisons"]["sft+grpo - sft"]["low"]
    assert "Memory: the GRPO writer holds" in done.stdout
    by = memory["by_instance"]  # the change's breadth, from the evaluations' own rows
    assert by["instances"] == 6 and by["smaller"] + by["larger"] <= 6
    mean_change = memory["sft+grpo_tokens"] - memory["sft_tokens"]
    assert by["diff_tokens"] == pytest.approx(mean_change)
    assert by["low"] <= by["diff_tokens"] <= by["high"]
    said = " ".join(done.stdout.split())  # rich wraps long lines
    assert f"smaller in {by['smaller']} of 6, larger in {by['larger']};" in said
    verdicts = {c["verdict"] for c in result["comparisons"].values()}
    assert verdicts <= {"better, beyond noise", "worse, beyond noise", "no difference beyond noise"}


def test_rerun_resumes_without_redoing_work(first_run, tiny_model):
    out, done = first_run
    assert done.returncode == 0
    rows = (out / "eval-trained" / "predictions.jsonl").read_text()
    sft_stamp = (out / "sft" / "sft.json").stat().st_mtime_ns
    again = _quickstart(out, tiny_model)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (out / "eval-trained" / "predictions.jsonl").read_text() == rows
    assert (out / "sft" / "sft.json").stat().st_mtime_ns == sft_stamp
    assert json.loads((out / "result.json").read_text())["grpo_steps"] == 3


def test_another_config_in_the_same_folder_is_refused(first_run, tiny_model):
    out, _ = first_run
    other = _quickstart(out, tiny_model, "train.rollout.temperature=0.5")
    assert other.returncode == 2
    assert "different config" in other.stderr and "--fresh" in other.stderr


def test_the_selective_recipe_on_a_spent_budget_evaluates_its_teacher_and_its_one_grpo_step(
    tmp_path, tiny_model
):
    """The default recipe end to end with the tiny model: 512-token inputs, the selective
    teacher's warm start, GRPO branch groups at change chunks, and the selective teacher as a
    reference writer (no untrained writer) in the table and the comparisons. Stages 1-3
    outlast its 0.06-second budget: the run warns before GRPO, trains one step (the trainer's
    minimum), finishes the last evaluation, and reports how far over it went (a 3-second
    budget was not always spent before GRPO began: on a quiet machine the whole run took
    less). One evaluation worker: two processes' starts were half this test's time."""
    out = tmp_path / "qs"
    one_each = [f"{split}_data.{i}.instances=1" for split in ("train", "test") for i in range(3)]
    done = _quickstart(
        out, tiny_model, *one_each, "eval_workers=1", minutes=0.001, recipe="selective"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "[2/5] evaluate the reference writers (rule-writer, selective-teacher)" in done.stderr
    result = json.loads((out / "result.json").read_text())
    assert result["budget"]["grpo_window_s"] < 0
    assert "GRPO runs its first step only" in " ".join(done.stderr.split())
    assert result["grpo_steps"] == 1
    assert result["over_budget_s"] >= result["budget"]["grpo_s"] > 0
    assert "over the time budget by" in done.stdout
    assert list(result["writers"]) == ["rule-writer", "selective-teacher", "sft", "sft+grpo"]
    assert list(result["comparisons"]) == [
        "sft - selective-teacher",
        "sft+grpo - sft",
        "sft+grpo - rule-writer",
    ]
    writers = result["writers"]
    # the teacher drops the chatter the rule writer stores, on the same test instances
    teacher, rule = writers["selective-teacher"], writers["rule-writer"]
    assert teacher["memory_tokens"] < rule["memory_tokens"] / 2
    assert teacher["competencies"]["conflict_resolution"] > 0
    assert json.loads((out / "data" / "test.jsonl").open().readline())["chunks"][3]
    if result["comparisons"]["sft+grpo - sft"]["low"] <= 0:  # no gain: the recipe's longer run
        assert "Learning beyond the teacher" in " ".join(done.stdout.split())


@pytest.mark.slow
def test_quickstart_on_its_shipped_defaults(tmp_path):
    """README command 1's job exactly as shipped (SmolLM2-135M, 20 minutes on 2 cores, the
    selective recipe): it keeps its budget, and the warm start writes a memory less than half
    the rule writer's from which the reader still answers most retrieval questions.

    The budget is sized for a CPU with native bf16 (AMX), where the run ends inside it (895 s
    in a fresh clone). On a CPU without, everything computes in float32 and stages 1-3 can leave
    GRPO no time; its first step, which always runs, is then the one overrun allowed."""
    cmd = [sys.executable, "-m", "memalpha.cli", "quickstart", "--out", str(tmp_path / "qs")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "qs" / "result.json").read_text())
    budget = result["budget"]
    assert result["grpo_steps"] >= 1
    # GRPO's first step always runs: what it took beyond the time GRPO had (negative where
    # stages 1-3 ate into the last evaluation's reserve) is an overrun the run cannot avoid
    forced = budget["grpo_s"] - budget["grpo_window_s"] if result["grpo_steps"] == 1 else 0.0
    assert result["over_budget_s"] < 60 + max(0.0, forced)
    writers = result["writers"]
    assert writers["sft"]["memory_tokens"] < writers["rule-writer"]["memory_tokens"] / 2
    assert writers["sft"]["competencies"]["accurate_retrieval"] > 0.5
    assert "sft+grpo - sft" in result["comparisons"]


@pytest.mark.parametrize(
    ("sft_tokens", "grpo_tokens", "qa_low", "smaller"),
    [
        (100, 75, -0.01, True),  # 25% smaller, QA's interval above -0.02
        (100, 85, -0.01, False),  # only 15% smaller
        (100, 75, -0.03, False),  # smaller, but QA may have dropped by more than 0.02
        (0, 0, 0.01, False),  # no memory to shrink
    ],
)
def test_the_memory_verdict_needs_both_a_cut_and_a_bounded_qa_cost(
    sft_tokens, grpo_tokens, qa_low, smaller
):
    cfg = load_quickstart_config(None, [])
    result = {
        "writers": {
            "sft": {"memory_tokens": sft_tokens},
            "sft+grpo": {"memory_tokens": grpo_tokens},
        },
        "comparisons": {"sft+grpo - sft": {"low": qa_low}},
    }
    assert _memory_verdict(cfg, result)["smaller_at_no_qa_cost"] is smaller


def test_a_memory_cut_from_one_instance_is_shown_as_not_beyond_noise():
    """The AVX2 runs' case (benchmarks/RESULTS.md): the warm start loops to its cap on one of
    12 inputs, GRPO does not, and the mean falls by a quarter while 11 instances do not move."""
    sft = {f"i{n}": 50 for n in range(11)} | {"loop": 326}
    grpo = {f"i{n}": 50 for n in range(11)} | {"loop": 39}
    rows = [
        {"method": method, "instance_id": i, "memory_tokens": t, "score": 1.0}
        for method, tokens in (("sft", sft), ("sft+grpo", grpo))
        for i, t in tokens.items()
    ]
    by = memory_by_instance(rows)
    assert (by["instances"], by["smaller"], by["larger"]) == (12, 1, 0)
    assert by["diff_tokens"] == pytest.approx(-287 / 12)
    assert by["high"] == 0  # resamples without the loop instance: no change at all
    # a second instance shrinking as well (a later row of the same instance replaces it)
    rows += [{"method": "sft+grpo", "instance_id": "i0", "memory_tokens": 20, "score": 1.0}]
    assert memory_by_instance(rows)["smaller"] == 2


def test_reference_writers_are_the_configured_baselines_in_the_trained_writers_layout():
    """The selective recipe (the default) evaluates the selective teacher where the store-all
    recipe evaluates the untrained policy, each writing the memory layout GRPO trains."""
    from memalpha.quickstart import _baseline_methods, comparison_pairs

    cfg = load_quickstart_config(None, [], "selective")
    methods = {m.name: m for m in _baseline_methods(cfg)}
    assert list(methods) == ["rule-writer", "selective-teacher"]
    assert methods["selective-teacher"].selective and not methods["rule-writer"].selective
    assert {m.memory for m in methods.values()} == {cfg.train.memory}
    assert cfg.train.memory.view.ids == "after"
    assert comparison_pairs(cfg.baselines) == [
        ("sft", "selective-teacher"),
        ("sft+grpo", "sft"),
        ("sft+grpo", "rule-writer"),
    ]
    assert load_quickstart_config(None, []) == cfg  # the default recipe
    store_all = load_quickstart_config(None, [], "store-all")
    assert [m.name for m in _baseline_methods(store_all)] == ["rule-writer", "untrained"]
    assert ("sft", "untrained") in comparison_pairs(store_all.baselines)


def test_an_unknown_recipe_is_refused_with_the_known_ones():
    from memalpha.errors import ConfigError

    with pytest.raises(ConfigError, match="selective, store-all"):
        load_quickstart_config(None, [], "selectve")


def test_evaluation_workers_share_this_processs_threads():
    """Two workers each get half the threads (the end-to-end tests run one worker to spare the
    process starts; the shipped recipe runs two, checked by the slow shipped-defaults test)."""
    import torch

    from memalpha.quickstart import _threads_per_worker

    found = torch.get_num_threads()
    assert _threads_per_worker(1) is None  # this process, as it is
    assert _threads_per_worker(2) == max(1, found // 2)
    assert _threads_per_worker(found + 1) == 1  # never zero
    assert torch.get_num_threads() == found


def test_the_longer_run_config_is_the_quickstarts_grpo_run_longer(repo_root):
    """configs/train/quickstart-longer.yaml restates the shipped recipe's train keys (a config
    can extend a file, not a file's sub-tree): they must stay what the quickstart trains with,
    on the paths it writes, but for the schedule and the thread count."""
    from pathlib import Path

    from memalpha.config import load_config
    from memalpha.rl.config import TrainConfig

    shipped = load_quickstart_config(None, [])
    longer = load_config(TrainConfig, repo_root / "configs" / "train" / "quickstart-longer.yaml")
    apart = {"out_dir", "threads", "schedule", "policy", "data"}
    assert longer.model_dump(exclude=apart) == shipped.train.model_dump(exclude=apart)
    assert longer.policy.model_dump(exclude={"model"}) == shipped.train.policy.model_dump(
        exclude={"model"}
    )
    out = Path(shipped.out_dir)
    assert Path(longer.policy.model) == out / "sft" / "policy"
    assert [Path(p) for p in longer.data.train_files] == [out / "data" / "train.jsonl"]
    epoch = sum(spec.instances for spec in shipped.train_data)  # one pass, not the budget's
    assert longer.schedule.steps * longer.rollout.instances_per_step == epoch
