"""The quickstart's warm start with every layer trained against one that trains only the top
N (`train_layers`, as the GRPO run after it does): wall time and loss, in one run.

    python benchmarks/sft_layers.py [--layers all 10] [--out-dir runs]
        [--out benchmarks/results/sft_layers.json]

Each warm start is `memalpha.rl.sft.run_sft` on the quickstart's own SFT config (the package's
quickstart-store-all.yaml, `--recipe store-all`) and training instances (built as the
quickstart builds them, into
`<out-dir>/sft-qs-data/`, with its held-out test instances), written to
`<out-dir>/sft-qs-<layers>`; the time includes loading the model, as the quickstart's stage
does. What the warm starts then answer is measured with the quickstart's evaluation on those
test instances: `memalpha eval --config configs/eval/sft-layers.yaml`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from memalpha.quickstart import QuickstartConfig, dataset_files, load_quickstart_config
from memalpha.rl.config import DataConfig
from memalpha.rl.sft import run_sft
from report import save


def warm_start(cfg: QuickstartConfig, layers: str, data: Path, out_dir: Path) -> dict:
    """One warm start; its seconds and losses."""
    sft = cfg.sft.model_copy(
        update={
            "out_dir": out_dir / f"sft-qs-{layers}",
            "policy": cfg.sft.policy.model_copy(update={"model": cfg.base_model}),
            "data": DataConfig(train_files=[data]),
            "train_layers": None if layers == "all" else int(layers),
        }
    )
    started = time.perf_counter()
    run_sft(sft)
    seconds = time.perf_counter() - started
    losses = [json.loads(line)["loss"] for line in (sft.out_dir / "metrics.jsonl").open()]
    return {
        "train_layers": layers,
        "seconds": seconds,
        "steps": len(losses),
        "first_loss": losses[0],
        "mean_loss_last_half": statistics.mean(losses[len(losses) // 2 :]),
        "policy": str(sft.out_dir / "policy"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", nargs="+", default=["all", "10"], help="'all' or a layer count")
    ap.add_argument("--out-dir", type=Path, default=Path("runs"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/sft_layers.json"))
    args = ap.parse_args()
    cfg = load_quickstart_config(None, [], "store-all")
    train_file, _ = dataset_files(cfg, args.out_dir / "sft-qs-data")
    rows = [warm_start(cfg, layers, train_file, args.out_dir) for layers in args.layers]
    table = Table(title="quickstart warm start: trained layers")
    for col in ("train_layers", "seconds", "ratio", "steps", "first loss", "loss, last half"):
        table.add_column(col)
    for row in rows:
        table.add_row(
            row["train_layers"],
            f"{row['seconds']:.0f}",
            f"{rows[0]['seconds'] / row['seconds']:.2f}x",
            str(row["steps"]),
            f"{row['first_loss']:.3f}",
            f"{row['mean_loss_last_half']:.3f}",
        )
    Console().print(table)
    save(args.out, {"rows": rows}, args)


if __name__ == "__main__":
    main()
