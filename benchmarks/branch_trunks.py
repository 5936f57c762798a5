"""Branch-group GRPO with whole trunks against trunks cut after the last chunk that announces a
change (`ppo.branch_trunks`): groups formed per minute of the GRPO stage, in one run.

    python benchmarks/branch_trunks.py [--config configs/train/quickstart-longer.yaml]
        [--epochs 1] [--threads 2] [--out benchmarks/results/branch_trunks.json]

Each mode is `memalpha train` (`memalpha.rl.trainer.Trainer`) on the given config, from the same
warm start and seed, for the same number of epochs over the instances that mode draws (whole
trunks draw every training instance; cut trunks only those that announce a change), one after
the other in this process. The default config is the quickstart's GRPO on its own run's data
and warm start: run `memalpha quickstart` first. The runs go to `<out_dir>-<mode>`.
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
from memalpha.rl.trainer import Trainer, branchable, read_metrics
from memalpha.tokens import make_token_counter
from report import save

MODES = ("whole", "to_last_change")


def run_mode(base: TrainConfig, mode: str, epochs: int, threads: int) -> dict:
    """Train one mode for `epochs` passes over the instances it draws; its step records."""
    train = load_instances(
        base.data.train, base.data.train_files, make_token_counter(base.memory.tokenizer)
    )
    drawn = len(branchable(train, mode))
    steps = math.ceil(epochs * drawn / base.rollout.instances_per_step)
    cfg = base.model_copy(
        update={
            "out_dir": Path(f"{base.out_dir}-{mode}"),
            "threads": threads,
            "ppo": base.ppo.model_copy(update={"branch_trunks": mode}),
            "schedule": base.schedule.model_copy(update={"steps": steps, "save_every": steps}),
        }
    )
    Trainer(TrainConfig.model_validate(cfg.model_dump()), fresh=True).run()
    records = [r for r in read_metrics(cfg.out_dir) if r["kind"] == "train"]
    generation = sum(r["time_generation"] for r in records)
    update = sum(r["time_update"] for r in records)
    groups = sum(r["branch_groups"] for r in records)
    return {
        "mode": mode,
        "instances_drawn": drawn,
        "instances": len(train),
        "steps": len(records),
        "steps_without_group": sum(r["branch_groups"] == 0 for r in records),
        "trunk_chunks": sum(r["trunk_chunks"] for r in records),
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
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/branch_trunks.json"))
    args = ap.parse_args()
    base = load_config(TrainConfig, args.config)
    rows = [run_mode(base, mode, args.epochs, args.threads) for mode in MODES]
    speedup = rows[1]["groups_per_minute"] / rows[0]["groups_per_minute"]
    table = Table(title=f"branch groups per minute of GRPO, {args.epochs} epoch(s) each")
    columns = [
        "mode",
        "instances_drawn",
        "steps",
        "steps_without_group",
        "trunk_chunks",
        "branch_groups",
        "generation_s",
        "update_s",
        "groups_per_minute",
    ]
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(
            *(f"{row[c]:.1f}" if isinstance(row[c], float) else str(row[c]) for c in columns)
        )
    Console().print(table)
    print(f"groups per minute, cut / whole: {speedup:.2f}x")
    save(args.out, {"modes": rows, "groups_per_minute_ratio": speedup}, args)


if __name__ == "__main__":
    main()
