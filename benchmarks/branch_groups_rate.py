"""Branch groups per minute of GRPO at several instances per step (`rollout.instances_per_step`),
one epoch each, in one run.

    python benchmarks/branch_groups_rate.py [--config configs/train/quickstart-longer.yaml]
        [--per-step 2 8] [--epochs 1] [--threads 2]
        [--out benchmarks/results/branch_groups_rate.json]

Why: a branch group's responses are generated with every other row of its chunk index in one
call, which runs until its longest row ends, and on a CPU a decode step of more rows costs
little more. More instances a step should put more groups behind each update (the noise the
recipe ledger points to) for less than their share of time. Measured (RESULTS.md, "More
instances a step"): 8 a step form 1.94x the groups per minute of 2. Each setting is `memalpha train`
(`memalpha.rl.trainer.Trainer`) on the config from the same warm start and seed, one after the
other in this process, to `<out_dir>-ips<N>`. The default config is the quickstart's GRPO on its
own run's data and warm start: run `memalpha quickstart` first.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from rich.console import Console
from rich.table import Table

from memalpha.config import load_config
from memalpha.rl.config import TrainConfig
from memalpha.rl.parts import load_instances
from memalpha.rl.trainer import Trainer, read_metrics
from memalpha.tokens import make_token_counter
from report import save

COLUMNS = [
    "instances_per_step",
    "steps",
    "steps_without_group",
    "branch_groups",
    "samples_trained",
    "generation_s",
    "update_s",
    "groups_per_minute",
]


def run_setting(path: Path, per_step: int, epochs: int, threads: int) -> dict:
    """Train `epochs` passes over the training instances at `per_step` instances a step (the
    config at `path` with `--set` overrides, as `memalpha train` takes them); the totals of
    its step records."""
    base = load_config(TrainConfig, path)
    counter = make_token_counter(base.memory.tokenizer)
    instances = len(load_instances(base.data.train, base.data.train_files, counter))
    steps = math.ceil(epochs * instances / per_step)
    overrides = [
        f"out_dir={base.out_dir}-ips{per_step}",
        f"threads={threads}",
        f"rollout.instances_per_step={per_step}",
        f"schedule.steps={steps}",
        f"schedule.save_every={steps}",
    ]
    cfg = load_config(TrainConfig, path, overrides)
    Trainer(cfg, fresh=True).run()
    records = [r for r in read_metrics(cfg.out_dir) if r["kind"] == "train"]
    generation = sum(r["time_generation"] for r in records)
    update = sum(r["time_update"] for r in records)
    groups = sum(r["branch_groups"] for r in records)
    return {
        "instances_per_step": per_step,
        "steps": len(records),
        "steps_without_group": sum(r["branch_groups"] == 0 for r in records),
        "branch_groups": groups,
        "samples_trained": sum(r["samples_trained"] for r in records),
        "generation_s": generation,
        "update_s": update,
        "groups_per_minute": 60 * groups / (generation + update),
        "run": str(cfg.out_dir),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=Path("configs/train/quickstart-longer.yaml"))
    ap.add_argument("--per-step", type=int, nargs="+", default=[2, 8])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/branch_groups_rate.json"))
    args = ap.parse_args()
    rows = [run_setting(args.config, n, args.epochs, args.threads) for n in args.per_step]
    for row in rows:
        row["ratio"] = row["groups_per_minute"] / rows[0]["groups_per_minute"]
    table = Table(title=f"branch groups per minute of GRPO, {args.epochs} epoch(s) each")
    for column in [*COLUMNS, "ratio"]:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            *(
                f"{row[c]:.2f}" if isinstance(row[c], float) else str(row[c])
                for c in [*COLUMNS, "ratio"]
            )
        )
    Console().print(table)
    save(args.out, {"settings": rows}, args)


if __name__ == "__main__":
    main()
