"""Every GRPO recipe tried for "learning beyond the teacher" on one page: each against the warm
start it started from and against the store-everything rule writer, on every test set it was
answered on, read back from the stored evaluation summaries (`benchmarks/results/eval_*_summary
.json`). Nothing is run: the differences and their 95% intervals are the ones `memalpha eval`
computed (paired by instance, resampled within sources); this script only gathers them, so the
question "did any recipe beat its warm start beyond noise?" is answered by one table and one
plot instead of twenty sections of RESULTS.md.

The recipes, their test sets and the method names they were evaluated under are listed in
`benchmarks/recipe_ledger.yaml` (a pooled method = the recipe's training seeds averaged
question by question). A name missing from its summary is an error, not a blank row. A set
may be a summary that `memalpha report --out` merged from several runs (seeds evaluated in
different sessions); its methods are then named RUN/METHOD, and the set names its rule writer
(`rule_writer:`) as well as its warm start.

    python benchmarks/recipe_ledger.py [--ledger benchmarks/recipe_ledger.yaml] \
        [--results benchmarks/results] [--out benchmarks/results/recipe_ledger.json] \
        [--plot benchmarks/recipe_ledger.png]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from memalpha.eval.stats import snap_zero
from report import save

HERE = Path("benchmarks")  # run from the repository root, as the docstring shows
CR, AR = "conflict_resolution", "accurate_retrieval"
RULE = "rule-writer"


def paired(summary: dict[str, Any], a: str, b: str, competency: str) -> dict[str, Any] | None:
    """a − b on `competency` at scale 1 as the summary stored it (under "a - b" or, with the
    sign turned, "b - a": the evaluation names each pair once, in sorted order); interval ends
    snapped to 0 as `memalpha eval` now does (older summaries hold ~1e-17 there)."""
    pairs = summary["paired"].get("1", {})
    for key, sign in ((f"{a} - {b}", 1), (f"{b} - {a}", -1)):
        if (cell := pairs.get(key, {}).get(competency)) is not None:
            ends = sorted(snap_zero(sign * end) for end in cell["interval"])
            return {"diff": sign * cell["diff"], "interval": ends, "instances": cell["instances"]}
    return None


def beyond_noise(cell: dict[str, Any] | None) -> bool:
    return cell is not None and (cell["interval"][0] > 0 or cell["interval"][1] < 0)


def ledger_rows(ledger: dict[str, Any], results: Path) -> list[dict[str, Any]]:
    """One row per (recipe, test set): the differences to the warm start and the rule writer.

    Raises:
        SystemExit: a summary file or a method it should hold is missing.
    """
    summaries: dict[str, dict[str, Any]] = {}
    rows = []
    for recipe in ledger["recipes"]:
        for set_name, method in recipe["evaluated"].items():
            test_set = ledger["sets"][set_name]
            if set_name not in summaries:
                path = results / test_set["summary"]
                if not path.is_file():
                    raise SystemExit(f"{set_name}: no summary {path}")
                summaries[set_name] = json.loads(path.read_text("utf-8"))
            summary = summaries[set_name]
            warm, rule = test_set["warm_start"], test_set.get("rule_writer", RULE)
            for name in (method, warm, rule):
                if name not in summary["methods"]:
                    raise SystemExit(
                        f"{recipe['label']}: {set_name} ({test_set['summary']}) has no method "
                        f"{name}; it has {', '.join(sorted(summary['methods']))}"
                    )
            cells = {m: summary["methods"][m]["1"] for m in (method, warm, rule)}
            rows.append(
                {
                    "recipe": recipe["label"],
                    "seeds": recipe["seeds"],
                    "steps": recipe["steps"],
                    "section": recipe["section"],
                    "set": set_name,
                    "method": method,
                    "instances": cells[method]["instances"],
                    "cr": cells[method]["competencies"].get(CR),
                    "cr_vs_warm_start": paired(summary, method, warm, CR),
                    "ar_vs_warm_start": paired(summary, method, warm, AR),
                    "cr_vs_rule_writer": paired(summary, method, rule, CR),
                    "memory_tokens": cells[method]["memory_tokens"],
                    "memory_of_warm_start": cells[method]["memory_tokens"]
                    / cells[warm]["memory_tokens"],
                    "memory_of_rule_writer": cells[method]["memory_tokens"]
                    / cells[rule]["memory_tokens"],
                }
            )
    return rows


def _diff_text(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return "-"
    low, high = cell["interval"]
    star = " *" if beyond_noise(cell) else ""
    return f"{cell['diff']:+.3f} [{low:+.3f}, {high:+.3f}]{star}"


def print_table(rows: list[dict[str, Any]]) -> None:
    table = Table(
        title="GRPO recipes against their warm start and the rule writer (* beyond noise)"
    )
    for column in (
        "recipe",
        "seeds x steps",
        "test set",
        "CR - warm start",
        "AR - warm start",
        "CR - rule writer",
        "memory / rule writer",
    ):
        table.add_column(column, justify="left" if column in ("recipe", "test set") else "right")
    for row in rows:
        table.add_row(
            row["recipe"],
            f"{row['seeds']} x {row['steps']}",
            f"{row['set']} ({row['instances']})",
            _diff_text(row["cr_vs_warm_start"]),
            _diff_text(row["ar_vs_warm_start"]),
            _diff_text(row["cr_vs_rule_writer"]),
            f"{row['memory_of_rule_writer']:.0%}",
        )
    Console(width=200).print(table)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Two panels, one line per (recipe, test set): CR − warm start and CR − rule writer, with
    their 95% intervals; filled where the interval excludes 0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['recipe']} ({r['seeds']}x{r['steps']}) · {r['set']}" for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.32 * len(rows) + 1.4), sharey=True)
    for ax, key, title in (
        (axes[0], "cr_vs_warm_start", "CR − its warm start"),
        (axes[1], "cr_vs_rule_writer", "CR − rule writer (memory: % of its tokens)"),
    ):
        for y, row in enumerate(rows):
            cell = row[key]
            if cell is None:
                continue
            low, high = cell["interval"]
            ax.plot([low, high], [y, y], color="tab:blue", lw=1.5)
            ax.plot(
                cell["diff"],
                y,
                "o",
                color="tab:blue",
                mfc="tab:blue" if beyond_noise(cell) else "white",
            )
            if key == "cr_vs_rule_writer":
                ax.annotate(
                    f"{row['memory_of_rule_writer']:.0%}",
                    (high, y),
                    xytext=(4, -3),
                    textcoords="offset points",
                    fontsize=7,
                )
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("paired difference, 95% interval (filled: beyond noise)", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(rows)), labels, fontsize=7)
    axes[0].invert_yaxis()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ledger", type=Path, default=HERE / "recipe_ledger.yaml")
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "recipe_ledger.json")
    parser.add_argument("--plot", type=Path, default=HERE / "recipe_ledger.png")
    args = parser.parse_args()
    ledger = yaml.safe_load(args.ledger.read_text("utf-8"))
    rows = ledger_rows(ledger, args.results)
    print_table(rows)
    for name, test_set in ledger["sets"].items():
        print(f"  {name}: {test_set['summary']}, {test_set['about']}")
    apart = [r for r in rows if beyond_noise(r["cr_vs_warm_start"])]
    above = [f"{r['recipe']} on {r['set']}" for r in apart if r["cr_vs_warm_start"]["diff"] > 0]
    below = [f"{r['recipe']} on {r['set']}" for r in apart if r["cr_vs_warm_start"]["diff"] < 0]
    print(
        f"{len(rows)} rows, {len(ledger['recipes'])} recipes: CR beyond noise above the warm "
        f"start in {len(above)} ({'; '.join(above) or 'none'}), below it in {len(below)} "
        f"({'; '.join(below) or 'none'})"
    )
    plot(rows, args.plot)
    save(args.out, {"sets": ledger["sets"], "rows": rows}, args)


if __name__ == "__main__":
    main()
