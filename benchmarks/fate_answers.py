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

Without `--tool-use`, the fates are those the eval recorded itself (a row's `fates`, from the
memory the method wrote in that run: `memalpha eval` keeps them since 2026-12-05), one table row
per (method, scale), for every method that has them or the `--method`s named, over one run or
several (`--eval` repeated: a question answered in two runs counts once, as the last run named
answered it, fates or none):

    python benchmarks/fate_answers.py --eval runs/eval-length-idafter-fate \
        --eval runs/eval-length-idafter-fates [--method M ...] [--plot benchmarks/fate_answers.png]

`--by-qtype` (no `--tool-use`): each row split by question type (the source's `qtype`: the
conflict sources ask single-hop questions, an attribute that changed, and multi-hop ones, the
headquarters city of a person's new employer), taken from the rows where the eval recorded it
(since 2026-12-07) and else from the run's own instances (its `config.yaml`). Why: the 0.5B
reader answers an overwritten single-hop fact almost always and an overwritten multi-hop one
rarely, so a CR difference between writers can only come from one half (RESULTS.md, "What the
reader can answer").

`--plot`: one bar a table row, split by the share of its questions in each fate (the writer's
part), each part labelled with the reader's score there.

`--from BASE` (no `--tool-use`): also where each method's questions moved from BASE's, e.g. a
GRPO writer from its warm start: (fate in BASE's memory → fate in the method's), with the summed
score change, which adds up to the CR difference on those questions (RESULTS.md, "32 instances
a step"):

    python benchmarks/fate_answers.py \
        --eval runs/eval-select-c128-idafter-sparse-wide32-keep025-s0 --from warm-start-idafter \
        --out benchmarks/results/fate_moves_wide32_s0.json
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from memalpha.config import load_config
from memalpha.eval import EvalConfig
from memalpha.eval.runner import load_jobs, read_rows
from memalpha.eval.summary import FATES, by_instance, fate_cell_text, fate_cells, fate_moves
from memalpha.tokens import make_token_counter
from report import save


def joined(fates_by_question: dict[str, list[str]], answers: list[dict]) -> list[dict]:
    """The answers whose question has measured fates, each with its fates.

    Raises:
        SystemExit: no answered question has a fate: the two runs are not on the same instances.
    """
    out = [
        r | {"fates": fates}
        for r in answers
        if (fates := fates_by_question.get(f"{r['instance_id']}/{r['question_id']}"))
    ]
    if not out:
        raise SystemExit("no answered question has a fate: were both runs on the same instances?")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tool-use", type=Path, help="tool_use.py JSON (default: the eval's own)")
    parser.add_argument(
        "--eval", type=Path, action="append", required=True, help="memalpha eval run (repeatable)"
    )
    parser.add_argument("--pair", action="append", default=[], help="WRITER=METHOD (--tool-use)")
    parser.add_argument("--method", action="append", default=[], help="eval method (no --tool-use)")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("results") / "fate_answers.json"
    )
    parser.add_argument("--plot", type=Path, help="PNG: each row's questions by fate")
    parser.add_argument("--by-qtype", action="store_true", help="split rows by question type")
    parser.add_argument(
        "--from", dest="base", help="eval method: where the others' questions moved from its fates"
    )
    args = parser.parse_args()
    if args.tool_use and (args.base or args.by_qtype):
        raise SystemExit("--from and --by-qtype read the eval's own fates: drop --tool-use")
    answered = by_instance([r for run in args.eval for r in run_rows(run, args.by_qtype)])
    if args.tool_use:
        heads, rows = ("writer", "method"), tool_use_rows(args, answered)
    else:
        heads = ("method", "scale", "qtype") if args.by_qtype else ("method", "scale")
        rows = eval_rows(args, answered)
    overall: dict[str, dict[str, float]] = {
        f: {"questions": sum(r[f]["questions"] for r in rows)} for f in FATES
    }
    for f in FATES:
        scored = sum(r[f]["score"] * r[f]["questions"] for r in rows)
        overall[f]["score"] = scored / max(1, overall[f]["questions"])
    rows.append({heads[0]: "all rows", **dict.fromkeys(heads[1:], ""), **overall})
    table = Table(title="Reader's score on conflict questions, by the memory's fate of the fact")
    for head in (*heads, *FATES):
        table.add_column(head, justify="left" if head in heads else "right")
    for r in rows:
        table.add_row(*(str(r[h]) for h in heads), *(fate_cell_text(r[f]) for f in FATES))
    Console(width=160).print(table)
    result: dict = {"rows": rows}
    if args.base:
        result["moves"] = move_rows(args.base, rows[:-1], answered)
    save(args.out, result, args)
    if args.plot:
        plot(rows[:-1], heads, args.plot)


def run_rows(run: Path, by_qtype: bool) -> list[dict]:
    """A run's answers; with `by_qtype`, each with its question's type, from the row where the
    eval recorded it, else from the run's instances rebuilt from its config.

    Raises:
        SystemExit: a question of the run is not among the instances its config builds.
    """
    rows = read_rows(run / "predictions.jsonl")
    if not by_qtype or all("qtype" in r for r in rows):
        return rows
    jobs = load_jobs(load_config(EvalConfig, run / "config.yaml"), make_token_counter())
    qtypes = {(j.scale, j.instance.id, q.id): q.qtype for j in jobs for q in j.instance.questions}
    for r in rows:
        key = (r["scale"], r["instance_id"], r["question_id"])
        if key not in qtypes:
            raise SystemExit(f"{run}: {key} is not among the instances of its config.yaml")
        r.setdefault("qtype", qtypes[key] or "none")
    return rows


def plot(rows: list[dict], heads: tuple[str, ...], path: Path) -> None:
    """Stacked horizontal bars: a row's questions by fate, as shares, labelled with scores."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = dict(
        zip(FATES, ("tab:green", "tab:orange", "tab:red", "tab:gray", "tab:purple"), strict=True)
    )
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.4))
    labels = [
        f"{r[heads[0]]} ×{r[heads[1]]}" + (f" {r['qtype']}" if "qtype" in heads else "")
        if heads[1] == "scale"
        else r[heads[0]]
        for r in rows
    ]
    for y, r in enumerate(rows):
        total = sum(r[f]["questions"] for f in FATES)
        left = 0.0
        for f in FATES:
            share = r[f]["questions"] / total
            if share:
                ax.barh(y, share, left=left, color=colors[f], label=f if y == 0 else None)
                ax.text(
                    left + share / 2,
                    y,
                    f"{r[f]['score']:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                )
                left += share
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(
        "share of conflict questions by the memory's fate of the changed fact "
        "(label: the reader's score there)",
        fontsize=8,
    )
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[f]) for f in FATES]
    ax.legend(
        handles,
        FATES,
        ncol=len(FATES),
        fontsize=7,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        frameon=False,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path}")


def tool_use_rows(args: argparse.Namespace, answered) -> list[dict]:
    """One row per `--pair`: fates measured by tool_use.py, answers from the eval.

    Raises:
        SystemExit: no `--pair`, or a pair whose writer or method has nothing to join.
    """
    if not args.pair:
        raise SystemExit("--tool-use needs at least one --pair WRITER=METHOD")
    tool_use = json.loads(args.tool_use.read_text())
    writers = {r["writer"]: r for r in tool_use["rows"]}
    scale = int(tool_use["config"]["scale"])  # the input length the fates were measured at
    rows = []
    for spec in args.pair:
        writer, _, method = spec.partition("=")
        if writer not in writers or "fates_by_question" not in writers[writer]:
            raise SystemExit(f"--pair {spec!r}: {args.tool_use} has no fates for {writer!r}")
        answers = [r for k, qs in answered.items() if k[:2] == (method, scale) for r in qs]
        if not answers:
            raise SystemExit(f"--pair {spec!r}: {args.eval} has no answers of {method!r} ×{scale}")
        cells = fate_cells(joined(writers[writer]["fates_by_question"], answers))
        rows.append({"writer": writer, "method": method, **cells})
    return rows


def eval_rows(args: argparse.Namespace, answered) -> list[dict]:
    """One row per (method, scale), or (method, scale, question type) with `--by-qtype`, whose
    answers carry the fates the eval recorded.

    Raises:
        SystemExit: a `--method` with no recorded fates, or none at all in the run.
    """
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for (method, scale, _), qs in sorted(answered.items()):
        if not args.method or method in args.method:
            for r in qs:
                if "fates" in r:
                    groups[(method, scale, r["qtype"]) if args.by_qtype else (method, scale)] += [r]
    for method in args.method:
        if not any(key[0] == method for key in groups):
            raise SystemExit(f"--method {method!r}: {args.eval} recorded no fates for it")
    rows = []
    for key, answers in sorted(groups.items()):
        names = dict(zip(("method", "scale", "qtype"), key, strict=False))
        rows.append(names | fate_cells(answers))
    if not rows:
        raise SystemExit(f"{args.eval} recorded no fates: run before memalpha eval kept them?")
    return rows


def move_rows(base: str, rows: list[dict], answered) -> list[dict]:
    """One row per (method, scale, fate in `base`'s memory → fate in the method's), printed.

    Raises:
        SystemExit: `base` recorded no fates in the runs.
    """
    if not any(r["method"] == base for r in rows):
        raise SystemExit(f"--from {base!r}: the runs recorded no fates for it")
    out = []
    table = Table(title=f"Conflict questions moved from {base}'s fates: questions (score change)")
    for head in ("method", "scale", "from", "to", "questions", "score change"):
        table.add_column(head, justify="right" if head in ("questions", "score change") else "left")
    for method, scale in dict.fromkeys((r["method"], r["scale"]) for r in rows):
        if method == base:
            continue
        mine, theirs = (
            [q for (m, s, _), qs in answered.items() if (m, s) == (name, scale) for q in qs]
            for name in (method, base)
        )
        moves = sorted(fate_moves(theirs, mine).items(), key=lambda kv: -kv[1]["questions"])
        for (was, now), cell in moves:
            out.append({"method": method, "scale": scale, "from": was, "to": now, **cell})
            change = f"{cell['score_change']:+.1f}"
            table.add_row(method, str(scale), was, now, str(cell["questions"]), change)
    Console(width=160).print(table)
    return out


if __name__ == "__main__":
    main()
