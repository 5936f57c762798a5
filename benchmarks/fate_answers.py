"""How the reader answers a conflict question, by what the writer's memory kept of the fact it
asks about. Why: a writer can overwrite more changed facts (benchmarks/tool_use.py) while its
QA does not move; this says how much an overwrite is worth to the reader, i.e. whether the
writer or the reader is what holds the score down.

Joins the per-question fates of a `benchmarks/tool_use.py` JSON (`fates_by_question`) to the
answers of a `memalpha eval` run on the same instances (configs/eval/select-branch.yaml is
built for this), writer to method by `--pair WRITER=METHOD`. A question's fate is that of the
changed facts it depends on, or "mixed" when they differ.

    python benchmarks/fate_answers.py --tool-use benchmarks/results/tool_use_branch_cut_seeds.json \
        --eval runs/eval-select-branch --pair warm=warm-start --pair rule-writer=rule-writer \
        [--out benchmarks/results/fate_answers.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import get_args

from rich.console import Console
from rich.table import Table

from memalpha.data import Fate
from memalpha.eval.runner import read_rows
from memalpha.eval.summary import by_instance
from report import save

FATES = (*get_args(Fate), "mixed")  # "mixed": a question whose changed facts fared apart


def question_fate(fates: list[str]) -> str:
    """One fate for a question: its changed facts' common fate, else "mixed"."""
    return fates[0] if len(set(fates)) == 1 else "mixed"


def scores_by_fate(fates_by_question: dict[str, list[str]], answers) -> dict[str, list[float]]:
    """fate → the reader's scores of the questions whose memory had that fate.

    Raises:
        SystemExit: no answered question has a fate: the two runs are not on the same instances.
    """
    out: dict[str, list[float]] = defaultdict(list)
    for row in answers:
        fates = fates_by_question.get(f"{row['instance_id']}/{row['question_id']}")
        if fates:
            out[question_fate(fates)].append(float(row["score"]))
    if not out:
        raise SystemExit("no answered question has a fate: were both runs on the same instances?")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tool-use", type=Path, required=True, help="tool_use.py JSON")
    parser.add_argument("--eval", type=Path, required=True, help="memalpha eval run folder")
    parser.add_argument("--pair", action="append", required=True, help="WRITER=METHOD")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("results") / "fate_answers.json"
    )
    args = parser.parse_args()
    tool_use = json.loads(args.tool_use.read_text())
    writers = {r["writer"]: r for r in tool_use["rows"]}
    scale = int(tool_use["config"]["scale"])  # the input length the fates were measured at
    answered = by_instance(read_rows(args.eval / "predictions.jsonl"))
    rows, overall = [], defaultdict(list)
    for spec in args.pair:
        writer, _, method = spec.partition("=")
        if writer not in writers or "fates_by_question" not in writers[writer]:
            raise SystemExit(f"--pair {spec!r}: {args.tool_use} has no fates for {writer!r}")
        answers = [r for k, qs in answered.items() if k[:2] == (method, scale) for r in qs]
        if not answers:
            raise SystemExit(f"--pair {spec!r}: {args.eval} has no answers of {method!r} ×{scale}")
        by_fate = scores_by_fate(writers[writer]["fates_by_question"], answers)
        for fate, scores in by_fate.items():
            overall[fate] += scores
        rows.append({"writer": writer, "method": method, **_cells(by_fate)})
    rows.append({"writer": "all pairs", "method": "", **_cells(overall)})
    table = Table(title="Reader's score on conflict questions, by the memory's fate of the fact")
    for head in ("writer", "method", *FATES):
        table.add_column(head, justify="left" if head in ("writer", "method") else "right")
    for r in rows:
        table.add_row(r["writer"], r["method"], *(_shown(r[f]) for f in FATES))
    Console(width=160).print(table)
    save(args.out, {"rows": rows}, args)


def _cells(by_fate: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {
        f: {"questions": len(by_fate[f]), "score": statistics.fmean(by_fate[f] or [0.0])}
        for f in FATES
    }


def _shown(cell: dict[str, float]) -> str:
    return f"{cell['score']:.2f} ({cell['questions']})" if cell["questions"] else "—"


if __name__ == "__main__":
    main()
