"""Whether the writer's view shows the entry a chunk changes, as the memory grows: the selective
rule writer (it overwrites every changed fact whose old entry its prompt shows, and inserts the
new value as a plain fact when it cannot see it) writes an eval config's instances at each
scale under each view mode, and the table counts its conflict questions by the fate of the
changed fact in the final memory (overwritten / both / old / lost, `Superseded.fate`). A writer
that looks up perfectly, so every "both" is an entry the view did not show when the change came.
No model: seconds on one core.

Why: the GRPO writers overwrite far fewer changed facts at 16x their training length than at 1x
(benchmarks/RESULTS.md, "What the memories hold of each changed fact"); this separates what the
view hides from what the writer misses.

    python benchmarks/view_fates.py --config configs/eval/length-idafter-fate.yaml \
        --mode retrieved --mode sentences [--k 8] [--out benchmarks/results/view_fates.json]

Also the view's cost: milliseconds of rule-writer memorising per chunk (the rule writer's own work
is regular expressions, so this is mostly rendering the view: one BM25 search per list, or one
per sentence).
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from memalpha.eval import EvalConfig, MethodConfig
from memalpha.eval.methods import make_method
from memalpha.eval.runner import load_jobs
from memalpha.eval.summary import FATES
from memalpha.tokens import make_token_counter
from report import save


def fates(mode: str, k: int, jobs: list) -> dict:
    """One view mode at one scale: fate counts, mean memory tokens, seconds per chunk."""
    counter = make_token_counter()
    view = {"mode": mode, "k": k, "ids": "after"}
    method = make_method(
        MethodConfig(name=mode, kind="rule-writer", selective=True, memory={"view": view}),
        counter,
        None,
    )
    start = time.perf_counter()
    recalls = method.recall_many([j.instance for j in jobs])
    seconds = time.perf_counter() - start
    counts: Counter[str] = Counter()
    for job, recall in zip(jobs, recalls, strict=True):
        contents = recall.memory.contents()
        counts.update(
            change.fate(contents) for qa in job.instance.questions for change in qa.superseded
        )
    chunks = sum(len(j.instance.chunks) for j in jobs)
    return {
        **{f: counts[f] for f in FATES if f != "mixed"},
        "memory_tokens": sum(r.memory_tokens for r in recalls) / len(recalls),
        "chunks": chunks,
        "ms_per_chunk": 1000 * seconds / chunks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="memalpha eval config")
    parser.add_argument("--mode", action="append", help="view mode (default: every mode)")
    parser.add_argument("--k", type=int, default=8, help="entries shown per list")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("results") / "view_fates.json"
    )
    args = parser.parse_args()
    cfg = EvalConfig.model_validate(yaml.safe_load(args.config.read_text()))
    jobs = load_jobs(cfg.model_copy(update={"methods": cfg.methods[:1]}), make_token_counter())
    modes = args.mode or ["recent", "retrieved", "sentences"]
    rows = [
        {"mode": mode, "scale": scale, **fates(mode, args.k, [j for j in jobs if j.scale == scale])}
        for mode in modes
        for scale in cfg.scales
    ]
    heads = ["mode", "scale", "overwritten", "both", "old", "lost", "memory_tokens", "ms_per_chunk"]
    table = Table(title=f"Selective rule writer's conflict questions by fate, K = {args.k}")
    for head in heads:
        table.add_column(head, justify="left" if head == "mode" else "right")
    for r in rows:
        table.add_row(*(f"{r[h]:.1f}" if isinstance(r[h], float) else str(r[h]) for h in heads))
    Console(width=140).print(table)
    save(args.out, {"rows": rows}, args)


if __name__ == "__main__":
    main()
