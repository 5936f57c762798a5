"""Where a step's branch groups push the writer: the responses a branch run logged
(`branches.jsonl`, one record per response) sorted into those that hit a wanted change, those
that aimed an update or delete and hit nothing, and those that aimed nothing, with each kind's
summed advantage: the direction and weight GRPO moves the policy by. Scored as the run scored
them, and as each `--keep` weight would have (a response's score with keep weight k is its
logged score plus (k − the run's) × its r6; advantages recomputed within its group by
`memalpha.rl.group_advantages`). Nothing is run: the records are read back.

Why: a seed of the keep-0.25 recipe left updating as the keep-1 seed of the same number did,
though at keep 0.25 a miss costs an aiming response little (benchmarks/RESULTS.md, "Keep
weighted 0.25"); step means cannot say which responses the update favoured.

    python benchmarks/branch_advantages.py --run runs/branch-probe-keep025-s1 \
        [--run ...] [--keep 1 --keep 0.25] [--step 1 | --by-step] \
        [--out benchmarks/results/branch_advantages.json]

A group's advantages sum to zero, so the unaimed responses' sum is minus the push towards aiming
an update at all (hits and misses together), which a draw with as many misses as hits leaves near
zero. `--by-step` gives a row per step, to follow a seed's push through its run.

A second table sorts the same responses by outcome, at the run's own keep weight: at a chunk that
wants a change, whether it resolved one and whether it left a due fact unstated (a *trade* does
both: under `keep_charge: share` trades outranked doing nothing, benchmarks/RESULTS.md, "Where
the lost facts go"); at a quiet chunk (a drop group, `ppo.branch_chunks: drops`), whether it kept
every due fact.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from memalpha.rl import group_advantages
from memalpha.rl.trainer import BRANCHES, read_step_log
from report import save

KINDS = ("hit", "missed", "unaimed")
OUTCOMES = ("clean", "trade", "nothing", "loss", "keeps", "drops")


def kind(record: dict[str, Any]) -> str:
    """hit: hit a wanted change; missed: aimed, hit none; unaimed: no update or delete."""
    if record["hits"]:
        return "hit"
    return "missed" if record["aimed"] else "unaimed"


def outcome(record: dict[str, Any]) -> str:
    """At a chunk that wants a change: clean (resolved one, kept every due fact), trade
    (resolved one, left a due fact unstated), nothing (neither) or loss (left a fact, resolved
    none); at a quiet chunk: keeps or drops."""
    lost = record["kept"] < record["due"]
    if not record["wanted"]:
        return "drops" if lost else "keeps"
    if record["resolved"]:
        return "trade" if lost else "clean"
    return "loss" if lost else "nothing"


def by_outcome(records: list[dict[str, Any]], advantages: list[float]) -> dict[str, dict]:
    """Per outcome: responses and their mean advantage."""
    rows: dict[str, list[float]] = defaultdict(list)
    for r, a in zip(records, advantages, strict=True):
        rows[outcome(r)].append(a)
    return {
        o: {
            "responses": len(rows[o]),
            "advantage_mean": sum(rows[o]) / len(rows[o]) if rows[o] else None,
        }
        for o in OUTCOMES
    }


def run_keep(run: Path) -> float:
    """The keep weight the run scored with, from its saved config."""
    saved = yaml.safe_load((run / "config.yaml").read_text("utf-8"))
    return float(saved.get("reward", {}).get("keep_weight", 0.0))


def group_of(record: dict[str, Any]) -> tuple[int, int, int]:
    """A branch group: one chunk of one instance at one step."""
    return record["step"], record["instance"], record["chunk"]


def advantages_at(records: list[dict[str, Any]], shift: float) -> list[float]:
    """Each record's advantage had its score been `shift` × r6 higher, within its group."""
    scores = [r["score"] + shift * r["r6"] for r in records]
    return group_advantages(scores, [group_of(r) for r in records])


def by_kind(records: list[dict[str, Any]], advantages: list[float]) -> dict[str, dict[str, float]]:
    """Per kind: responses, their mean r5 and r6, and their summed and mean advantage."""
    rows: dict[str, list[tuple[dict[str, Any], float]]] = defaultdict(list)
    for r, a in zip(records, advantages, strict=True):
        rows[kind(r)].append((r, a))
    out = {}
    for k in KINDS:
        got = rows.get(k, [])
        n = len(got)
        out[k] = {
            "responses": n,
            "r5": sum(r["r5"] for r, _ in got) / n if n else None,
            "r6": sum(r["r6"] for r, _ in got) / n if n else None,
            "advantage_sum": sum(a for _, a in got),
            "advantage_mean": sum(a for _, a in got) / n if n else None,
        }
    return out


def run_records(run: Path) -> list[dict[str, Any]]:
    """Every response record the run logged, its redone steps dropped."""
    path = run / BRANCHES
    if not path.is_file():
        raise SystemExit(f"{run} has no {BRANCHES}: only branch runs since e31c92c write it")
    return read_step_log(path)


def measure(
    run: Path, logged: list[dict[str, Any]], keeps: list[float], step: int | None
) -> dict[str, Any]:
    """The run's records (of `step`, or all) by kind, at its own keep weight and at `keeps`."""
    records = [r for r in logged if step is None or r["step"] == step]
    if not records:
        raise SystemExit(f"{run / BRANCHES} holds no record of step {step}")
    own = run_keep(run)
    weights = [own, *(k for k in keeps if k != own)]
    advantages = {k: advantages_at(records, k - own) for k in weights}
    return {
        "run": str(run),
        "keep_weight": own,
        "step": step,
        "responses": len(records),
        "groups": len({group_of(r) for r in records}),
        "by_keep": {str(k): by_kind(records, a) for k, a in advantages.items()},
        "quiet_groups": len({group_of(r) for r in records if not r["wanted"]}),
        "by_outcome": by_outcome(records, advantages[own]),
    }


def table(results: list[dict[str, Any]]) -> Table:
    t = Table(title="branch responses by kind: summed advantage (mean) — where GRPO pushes")
    for col in ("run", "step", "keep", *KINDS):
        t.add_column(col, justify="left" if col == "run" else "right")
    for res in results:
        for keep, kinds in res["by_keep"].items():
            mark = " (run)" if float(keep) == res["keep_weight"] else ""
            cells = [
                f"{c['advantage_sum']:+.2f} ({c['advantage_mean']:+.2f}) n={c['responses']}"
                if c["responses"]
                else "–"
                for c in kinds.values()
            ]
            step = "all" if res["step"] is None else str(res["step"])
            t.add_row(Path(res["run"]).name, step, f"{keep}{mark}", *cells)
    return t


def outcome_table(results: list[dict[str, Any]]) -> Table:
    t = Table(title="branch responses by outcome, at the run's keep: count (mean advantage)")
    for col in ("run", "step", "quiet groups", *OUTCOMES):
        t.add_column(col, justify="left" if col == "run" else "right")
    for res in results:
        cells = [
            f"{c['responses']} ({c['advantage_mean']:+.2f})" if c["responses"] else "–"
            for c in res["by_outcome"].values()
        ]
        step = "all" if res["step"] is None else str(res["step"])
        t.add_row(Path(res["run"]).name, step, str(res["quiet_groups"]), *cells)
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, action="append", required=True)
    parser.add_argument("--keep", type=float, action="append", default=[])
    steps = parser.add_mutually_exclusive_group()
    steps.add_argument("--step", type=int, default=None, help="one step only (default: all)")
    steps.add_argument("--by-step", action="store_true", help="a row per step of each run")
    default_out = Path("benchmarks/results/branch_advantages.json")
    parser.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args()
    results = []
    for run in args.run:
        logged = run_records(run)
        steps = sorted({r["step"] for r in logged}) if args.by_step else [args.step]
        results += [measure(run, logged, args.keep, step) for step in steps]
    console = Console(width=160)
    console.print(table(results))
    console.print(outcome_table(results))
    save(args.out, {"runs": results}, args)


if __name__ == "__main__":
    main()
