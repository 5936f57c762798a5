"""The quickstart's two verdicts, asked of writers trained outside it: each `--writer` of an
evaluation run, and the writers pooled, against its warm start, on the run's instances.

Verdict 1: QA (instance = mean over its questions) − warm start, paired by instance, beyond
noise. Verdict 2: memory at least `--cut` smaller with that difference's interval above
`-tolerance`. Both are computed by `memalpha.quickstart`'s own functions, so a run of
`configs/train/quickstart-*.yaml` is judged as `memalpha quickstart` judges its GRPO writer.
Reads the run's predictions only (no model runs). Seeds are pooled instance by instance.

    python benchmarks/quickstart_verdicts.py runs/eval-quickstart-priced \
        --writer priced8-s0 --writer priced8-s1 \
        --out benchmarks/results/quickstart_priced_verdicts.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from statistics import mean

from rich.console import Console
from rich.table import Table

from memalpha.quickstart import (
    compare_writers,
    memory_by_instance,
    memory_verdict,
    per_instance_scores,
)
from report import save

POOLED = "seeds pooled"


def read_run(run: Path) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """writer -> instance -> QA score, and writer -> instance -> memory tokens, of one run."""
    rows = [json.loads(line) for line in (run / "predictions.jsonl").open(encoding="utf-8")]
    tokens: dict[str, dict[str, float]] = {}
    for row in rows:
        tokens.setdefault(row["method"], {})[row["instance_id"]] = row["memory_tokens"]
    return per_instance_scores(rows), tokens


def verdicts(
    scores: dict[str, dict[str, float]],
    tokens: dict[str, dict[str, float]],
    writer: str,
    warm: str,
    cut: float,
    tolerance: float,
) -> dict[str, object]:
    """Both verdicts of `writer` against `warm`, as the quickstart states them."""
    qa = compare_writers(scores, writer, warm)
    ids = sorted(tokens[warm])
    rows = [
        {"method": name, "instance_id": i, "memory_tokens": tokens[key][i]}
        for name, key in (("sft", warm), ("sft+grpo", writer))
        for i in ids
    ]
    before, after = mean(tokens[warm][i] for i in ids), mean(tokens[writer][i] for i in ids)
    change, met = memory_verdict(before, after, qa["low"], cut, tolerance)
    return {
        "writer": writer,
        "qa": mean(scores[writer][i] for i in ids),
        "qa_diff": qa,
        "memory_tokens": after,
        "warm_start_tokens": before,
        "memory_change": change,
        "memory_by_instance": memory_by_instance(rows),
        "smaller_at_no_qa_cost": met,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="an evaluation run directory")
    parser.add_argument("--writer", action="append", required=True, help="a trained writer")
    parser.add_argument("--warm-start", default="warm-start")
    parser.add_argument("--cut", type=float, default=0.2, help="the quickstart's memory_cut")
    parser.add_argument("--tolerance", type=float, default=0.02, help="its qa_tolerance")
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/quickstart_verdicts.json")
    )
    args = parser.parse_args()
    scores, tokens = read_run(args.run)
    ids = sorted(scores[args.warm_start])
    scores[POOLED] = {i: mean(scores[w][i] for w in args.writer) for i in ids}
    tokens[POOLED] = {i: mean(tokens[w][i] for w in args.writer) for i in ids}
    rows = [
        verdicts(scores, tokens, w, args.warm_start, args.cut, args.tolerance)
        for w in [*args.writer, POOLED]
    ]
    table = Table(title=f"against {args.warm_start} ({len(ids)} instances)")
    for column in ("writer", "QA", "− warm start [95%]", "memory", "change", "by instance", "2"):
        table.add_column(column, justify="left" if column == "writer" else "right")
    for r in rows:
        d, m = r["qa_diff"], r["memory_by_instance"]
        table.add_row(
            str(r["writer"]),
            f"{r['qa']:.3f}",
            f"{d['diff']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]",
            f"{r['memory_tokens']:.0f} vs {r['warm_start_tokens']:.0f}",
            f"{r['memory_change']:+.0%}",
            f"{m['smaller']} smaller, {m['larger']} larger",
            "met" if r["smaller_at_no_qa_cost"] else "not met",
        )
    Console(width=160).print(table)
    save(args.out, {"rows": rows}, args)


if __name__ == "__main__":
    main()
