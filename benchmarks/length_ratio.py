"""A recipe's score at a long scale as a share of its score at 1x, its seeds pooled, with a
bootstrap interval: the length study's target ("16x >= 80% of 1x") asked of a recipe, not of
its best seed. Reads stored evaluation summaries only (no model runs).

Seeds are averaged instance by instance (each seed answered the same instances); the instances
of 1x and of the long scale are different draws, so each scale is resampled on its own, within
sources, and the interval is that of the ratio of the two resampled means.

    python benchmarks/length_ratio.py --scale 16 --method SUMMARY:METHOD --method SUMMARY:METHOD ...

SUMMARY is an evaluation run directory or its summary file (benchmarks/results/eval_*.json);
benchmarks/RESULTS.md ("Seeds 2 and 3 of the sparse fate recipe") has a full command.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from statistics import mean

from rich.console import Console
from rich.table import Table

from report import save


def instance_scores(spec: str, scale: int) -> dict[str, dict[str, float]]:
    """source -> instance -> score of one `SUMMARY:METHOD` at `scale`."""
    where, _, method = spec.rpartition(":")
    path = Path(where) / "summary.json" if Path(where).is_dir() else Path(where)
    cell = json.loads(path.read_text("utf-8"))["methods"][method][str(scale)]
    return {
        source: {i: r["score"] for i, r in rec["instances"].items()}
        for source, rec in cell["by_instance"].items()
    }


def pooled(specs: list[str], scale: int) -> dict[str, list[float]]:
    """source -> per-instance score averaged over the seeds (`specs`)."""
    seeds = [instance_scores(s, scale) for s in specs]
    return {
        source: [mean(seed[source][i] for seed in seeds) for i in sorted(seeds[0][source])]
        for source in sorted(seeds[0])
    }


def score(by_source: dict[str, list[float]]) -> float:
    return mean(mean(v) for v in by_source.values())


def ratio_interval(
    short: dict[str, list[float]], long: dict[str, list[float]], n: int = 2000, seed: int = 0
) -> tuple[float, float] | None:
    """95% percentile interval of score(long) / score(short), each scale resampled within
    its sources; a resample whose short score is 0 is dropped (None: every one was)."""
    rng = random.Random(seed)

    def draw(by_source):
        return score({s: rng.choices(v, k=len(v)) for s, v in by_source.items()})

    ratios = sorted(r for _ in range(n) if (a := draw(short)) > 0 for r in [draw(long) / a])
    if not ratios:
        return None
    return ratios[int(0.025 * len(ratios))], ratios[int(0.975 * len(ratios)) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", action="append", required=True, help="SUMMARY:METHOD")
    parser.add_argument("--scale", type=int, default=16)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/length_ratio.json"))
    args = parser.parse_args()
    rows = []
    for label, specs in [(s.rpartition(":")[2], [s]) for s in args.method] + [
        ("seeds pooled", args.method)
    ]:
        short, long = pooled(specs, 1), pooled(specs, args.scale)
        interval = ratio_interval(short, long)  # None where the 1x score is 0: no ratio
        rows.append(
            {
                "method": label,
                "score_1x": score(short),
                f"score_{args.scale}x": score(long),
                "ratio": score(long) / score(short) if interval else None,
                "ratio_interval": list(interval) if interval else None,
            }
        )
    table = Table(title=f"score at {args.scale}x as a share of 1x")
    for column in ("method", "1x", f"{args.scale}x", "ratio [95% interval]"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for r in rows:
        if r["ratio_interval"] is None:
            shown = "none: scores 0 at 1x"
        else:
            low, high = r["ratio_interval"]
            shown = f"{r['ratio']:.0%} [{low:.0%}, {high:.0%}]"
        table.add_row(
            r["method"], f"{r['score_1x']:.3f}", f"{r[f'score_{args.scale}x']:.3f}", shown
        )
    Console(width=160).print(table)
    save(args.out, {"rows": rows}, args)


if __name__ == "__main__":
    main()
