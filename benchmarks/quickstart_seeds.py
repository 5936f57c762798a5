"""The quickstart's GRPO verdicts over training seeds: GRPO again from a finished quickstart's
warm start, once per seed (and, with --set, another reward or learning rate), each evaluated on
that run's held-out instances and compared, paired by instance, with that run's warm-start
rows. Stages 1-3 (dataset, baseline evaluation, warm start) are not redone, so a seed costs
its GRPO steps and one writer's evaluation (~10 min a step on 2 cores).

    python benchmarks/quickstart_seeds.py --run runs/quickstart --seeds 0 1 2 --steps 1 \
        --tag default --out benchmarks/results/quickstart_seeds_default.json \
        [--set train.reward.beta=0.5 ...]

Each seed's GRPO run and evaluation live in `<run>/seeds/<tag>-seed<k>/` and resume when
killed. Both of the quickstart's verdicts are reported per seed: QA beyond noise, and memory
≥`memory_cut` smaller with the QA interval's low end above -`qa_tolerance`.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from statistics import mean

from rich.console import Console
from rich.table import Table

from memalpha.eval import read_rows
from memalpha.quickstart import (
    QuickstartConfig,
    _evaluate,
    _grpo,
    _writer,
    compare_writers,
    load_quickstart_config,
    memory_report,
    per_instance_scores,
)
from random_update import write_twin


def memory_tokens(rows: list[dict]) -> float:
    """Mean final-memory tokens over instances, as the quickstart's summary counts them."""
    per_instance = {r["instance_id"]: r["memory_tokens"] for r in rows}
    return mean(per_instance.values())


def step_seconds(metrics: Path) -> float:
    """The GRPO steps' own time, from the run's log: the same whether this call trained them
    or found them done (a resumed run)."""
    parts = ("time_generation", "time_reader", "time_judge", "time_update")
    records = [json.loads(line) for line in metrics.read_text("utf-8").splitlines() if line]
    return sum(r.get(p, 0.0) for r in records if r.get("kind") == "train" for p in parts)


def one_seed(run: Path, tag: str, seed: int, steps: int, overrides: list[str], twin: bool) -> dict:
    """GRPO from `run`'s warm start with `seed`, evaluated and compared with the warm start;
    with `twin`, also its random twin (`random_update.py`: the same update size per tensor, a
    random direction), which tells what any move of that size does to the same writer."""
    cfg = load_quickstart_config(
        run / "config.yaml",
        [*overrides, f"train.seed={seed}", f"train.schedule.steps={steps}"],
    )
    folder = run / "seeds" / f"{tag}-seed{seed}"
    done = _grpo(
        cfg,
        folder / "grpo",
        run / "sft" / "policy",
        run / "data" / "train.jsonl",
        math.inf,
        lambda e: None,
    )
    grpo_s = step_seconds(folder / "grpo" / "metrics.jsonl")
    policy = folder / "grpo" / "checkpoints" / f"step_{done:06d}" / "policy"
    out = {"seed": seed, "grpo_steps": done, "grpo_s": grpo_s}
    out["grpo"] = compare(cfg, run, folder / "eval", policy)
    if twin:
        report = write_twin(run / "sft" / "policy", policy, folder / "twin" / "policy", seed)
        out["twin"] = {
            **compare(cfg, run, folder / "twin-eval", folder / "twin" / "policy"),
            **report,
        }
    return out


def compare(cfg: QuickstartConfig, run: Path, eval_dir: Path, policy: Path) -> dict:
    """`policy` evaluated on `run`'s test instances as 'sft+grpo' and compared with the warm
    start's rows of that run, as the quickstart's report compares them."""
    new = _evaluate(
        cfg,
        eval_dir,
        run / "data" / "test.jsonl",
        [_writer(cfg, "sft+grpo", policy)],
        lambda e: None,
    )
    warm = [
        r for r in read_rows(run / "eval-trained" / "predictions.jsonl") if r["method"] == "sft"
    ]
    per_instance = per_instance_scores(warm + new)
    result = {
        "writers": {
            name: {
                "memory_tokens": memory_tokens(rows),
                "overall": mean(per_instance[name].values()),
            }
            for name, rows in (("sft", warm), ("sft+grpo", new))
        },
        "comparisons": {"sft+grpo - sft": compare_writers(per_instance, "sft+grpo", "sft")},
    }
    result["memory"] = memory_report(cfg, result, warm + new)
    return result


def _cells(result: dict) -> list[str]:
    qa, mem = result["comparisons"]["sft+grpo - sft"], result["memory"]
    by = mem["by_instance"]
    return [
        f"{result['writers']['sft']['overall']:.3f}",
        f"{result['writers']['sft+grpo']['overall']:.3f}",
        f"{qa['diff']:+.3f} [{qa['low']:+.3f}, {qa['high']:+.3f}]",
        f"{mem['sft+grpo_tokens']:.0f} vs {mem['sft_tokens']:.0f}",
        f"{mem['change']:+.0%}",
        f"{by['smaller']} smaller, {by['larger']} larger of {by['instances']}",
        f"QA: {qa['verdict']}; memory: {'met' if mem['smaller_at_no_qa_cost'] else 'not met'}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a finished quickstart's out_dir")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=1, help="GRPO steps per seed")
    parser.add_argument("--tag", default="default", help="names this variant's folders")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", type=Path, required=True, help="the JSON written")
    parser.add_argument("--twin", action="store_true", help="also evaluate each seed's random twin")
    args = parser.parse_args()
    if not (args.run / "eval-trained" / "predictions.jsonl").is_file():
        parser.error(f"{args.run} is not a finished quickstart run (no eval-trained/)")

    rows = [
        one_seed(args.run, args.tag, s, args.steps, args.overrides, args.twin) for s in args.seeds
    ]
    table = Table(title=f"quickstart GRPO over seeds ({args.tag}, {args.steps} step(s))")
    for col in (
        "seed",
        "writer",
        "sft QA (instance mean)",
        "after",
        "diff [95%]",
        "memory",
        "change",
        "instances",
        "verdicts",
    ):
        table.add_column(col)
    for r in rows:
        for writer in ("grpo", "twin"):
            if writer in r:
                table.add_row(str(r["seed"]), writer, *_cells(r[writer]))
    Console(width=180).print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "run": str(args.run),
                "tag": args.tag,
                "steps": args.steps,
                "overrides": args.overrides,
                "config": (args.run / "config.yaml").read_text("utf-8"),
                "seeds": rows,
            },
            indent=1,
        )
        + "\n",
        "utf-8",
    )


if __name__ == "__main__":
    main()
