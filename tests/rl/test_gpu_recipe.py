"""Issue 25's GPU run (scripts/learning_gpu.sh): its configs must be the CPU recipe it scales up,
changed only in the keys that set its size and device, and must name each other's outputs.
The CPU smoke of the whole script (SMOKE=1 DEVICE=cpu) is the slow test at the end."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from memalpha.config import load_config
from memalpha.eval import EvalConfig
from memalpha.rl import SFTConfig, TrainConfig


def _flat(tree: object, prefix: str = "") -> dict[str, object]:
    """Dotted key → leaf of a model dump (lists are leaves: a data list is one setting)."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, object] = {}
    for key, value in tree.items():
        out.update(_flat(value, f"{prefix}{key}."))
    return out


def _changed(model: type, gpu: str, cpu: str, repo_root) -> set[str]:
    a = load_config(model, repo_root / gpu).model_dump(mode="json")
    b = load_config(model, repo_root / cpu).model_dump(mode="json")
    fa, fb = _flat(a), _flat(b)
    assert fa.keys() == fb.keys()
    return {k.rstrip(".") for k in fa if fa[k] != fb[k]}


def test_gpu_grpo_is_the_sparse_wide_recipe_scaled(repo_root):
    changed = _changed(
        TrainConfig,
        "configs/train/gpu-select-sparse-wide.yaml",
        "configs/train/cpu-smollm2-select-branch-idafter-fate-sparse-wide-keep025.yaml",
        repo_root,
    )
    scale = {
        "out_dir", "threads", "train_layers", "policy.model", "policy.device",
        "policy.batch_size", "rollout.instances_per_step", "rollout.group_size",
        "ppo.micro_batch_size", "data.train", "schedule.steps", "schedule.save_every",
        "schedule.keep_last",
    }  # fmt: skip
    assert changed <= scale, changed - scale  # reward, grouping, sampling, optimiser: the recipe's
    assert {"rollout.group_size", "rollout.instances_per_step", "data.train"} <= changed


def test_gpu_warm_start_is_the_idafter_warm_start_scaled(repo_root):
    changed = _changed(
        SFTConfig,
        "configs/sft/gpu-select-idafter.yaml",
        "configs/sft/cpu-smollm2-select-idafter.yaml",
        repo_root,
    )
    scale = {
        "out_dir", "policy.device", "policy.batch_size", "data.train", "examples",
        "batch_size", "micro_batch_size",
    }  # fmt: skip
    assert changed <= scale, changed - scale


def test_gpu_configs_name_each_others_outputs(repo_root):
    """The eval reads the policies the SFT and the three seeds write, at the last step, on
    instances of the test split only, at 1x, 4x and 16x."""
    sft = load_config(SFTConfig, repo_root / "configs/sft/gpu-select-idafter.yaml")
    train = load_config(TrainConfig, repo_root / "configs/train/gpu-select-sparse-wide.yaml")
    ev = load_config(EvalConfig, repo_root / "configs/eval/gpu-select-length.yaml")
    models = {m.name: str(m.policy.model) for m in ev.methods if m.policy is not None}
    assert str(train.policy.model) == models["warm-start"] == f"{sft.out_dir}/policy"
    step = f"step_{train.schedule.steps:06d}"
    for seed in (0, 1, 2):
        assert models[f"grpo-s{seed}"] == f"runs/gpu-select/grpo-s{seed}/checkpoints/{step}/policy"
    assert sorted(ev.scales) == [1, 4, 16]
    assert {d.split for d in ev.datasets} == {"test"}
    assert {d.split for d in (*sft.data.train, *train.data.train)} == {"train"}
    assert all(m.policy.device == "cuda" for m in ev.methods if m.policy is not None)
    assert ev.reader.model is not None and ev.reader.model.device == "cuda"
    # scripts/learning_gpu.sh sets these paths by list index and checkpoint step
    assert [m.name for m in ev.methods][2:6] == ["warm-start", "grpo-s0", "grpo-s1", "grpo-s2"]
    script = (repo_root / "scripts/learning_gpu.sh").read_text("utf-8")
    assert re.search(r"^STEP=(\d+)", script, re.M).group(1) == str(train.schedule.steps)
    assert re.search(r"^LONG=(\d+)", script, re.M).group(1) == str(max(ev.scales))


@pytest.mark.slow
def test_learning_gpu_script_runs_end_to_end_on_cpu(repo_root, tiny_model, tmp_path):
    """SMOKE=1 DEVICE=cpu: warm start, three GRPO seeds, the length study (the real reader) and
    the reports, with the tiny random model as the writer (3 min 14 s on 2 cores)."""
    env = {**os.environ, "SMOKE": "1", "DEVICE": "cpu", "MODEL": str(tiny_model)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # this memalpha
    env |= {"ROOT": str(tmp_path / "gpu-select"), "COLUMNS": "200"}
    done = subprocess.run(
        ["bash", str(repo_root / "scripts/learning_gpu.sh")],
        capture_output=True, text=True, env=env, timeout=1200,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "gpu-select-smoke" / "eval-length"
    summary = json.loads((run / "summary.json").read_text())
    assert {"warm-start", "grpo-s0", "grpo-s1", "grpo-s2", "grpo-seeds"} <= set(summary["methods"])
    assert set(summary["methods"]["grpo-seeds"]) == {"1", "2"}  # both scales answered
    assert "eval-length/grpo-seeds" in (run / "report-1x.md").read_text()
    ratio = json.loads((run / "length_ratio.json").read_text())["rows"]
    assert [r["method"] for r in ratio] == ["grpo-s0", "grpo-s1", "grpo-s2", "seeds pooled"]
