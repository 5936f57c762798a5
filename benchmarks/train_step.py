"""Seconds per GRPO step and their split (generation, reader, judge, update), measured by
running the real trainer for a few steps of a config in a scratch run directory.

    python benchmarks/train_step.py [--config configs/train/cpu-smollm2.yaml] [--steps 3]
        [--set policy.device=cuda --set policy.dtype=float32 --set ppo.autocast_bf16=true]
        [--baseline-src /path/to/older/checkout/src]

With --baseline-src, one run measures both: the same steps with the code at that path
(imported first on PYTHONPATH, with the environment's own OpenMP settings) and with this
checkout, each in a fresh process, one after the other; it prints the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from memalpha.config import load_config
from memalpha.rl.config import TrainConfig
from memalpha.rl.trainer import Trainer, read_metrics
from report import save

PHASES = ["time_generation", "time_reader", "time_judge", "time_update"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=Path("configs/train/cpu-smollm2.yaml"))
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/train_step.json"))
    p.add_argument("--baseline-src", type=Path, default=None)
    p.add_argument(
        "--after-set",
        action="append",
        default=[],
        help="Overrides for the current code only (e.g. rollout.engine=vllm).",
    )
    args = p.parse_args()
    if args.baseline_src is not None:
        compare(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        overrides = args.overrides + [
            f"out_dir={tmp}",
            f"schedule.steps={args.steps}",
            "schedule.val_before_train=false",
            f"schedule.val_every={args.steps + 1}",
            f"schedule.save_every={args.steps + 1}",
        ]
        cfg = load_config(TrainConfig, args.config, overrides)
        # the last step validates and checkpoints; its phases are timed like the others
        Trainer(cfg).run()
        train = [r for r in read_metrics(Path(tmp)) if r["kind"] == "train"]
    rows = []
    for r in train:
        total = sum(r[k] for k in PHASES)
        rows.append(
            {
                "step": r["step"],
                "samples": r["samples"],
                "total_s": total,
                "response_tokens": r["response_tokens"],
                **{k.removeprefix("time_") + "_s": r[k] for k in PHASES},
            }
        )
    table = Table(title=f"GRPO step time ({args.config.name}, {cfg.policy.model})")
    for col in rows[0]:
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(*(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row.values()))
    Console().print(table)
    summary = {"median_step_s": statistics.median(r["total_s"] for r in rows)}
    Console().print(summary)
    save(args.out, {"steps": rows, **summary, "device": cfg.policy.device}, args)


def compare(args: argparse.Namespace) -> None:
    """Baseline then current code, each in its own process; the ratio of median step times."""
    results = {}
    here = Path(__file__).resolve()
    for label, src in (("before", args.baseline_src), ("after", here.parents[1] / "src")):
        out = args.out.with_name(f"{args.out.stem}_{label}.json")
        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        env["PYTHONPATH"] = f"{src.resolve()}{os.pathsep}{here.parent}"
        command = [
            sys.executable,
            str(here),
            "--config",
            str(args.config),
            "--steps",
            str(args.steps),
            "--out",
            str(out),
        ]
        for item in args.overrides + (args.after_set if label == "after" else []):
            command += ["--set", item]
        subprocess.run(command, env=env, check=True)
        results[label] = json.loads(out.read_text())
    before, after = results["before"]["median_step_s"], results["after"]["median_step_s"]
    summary = {
        "before_median_step_s": before,
        "after_median_step_s": after,
        "speedup": before / after,
    }
    Console().print(summary)
    save(args.out, {**summary, "before": results["before"], "after": results["after"]}, args)


if __name__ == "__main__":
    main()
