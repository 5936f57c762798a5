"""Aggregation and reports of an evaluation run: summary.json, summary.md, scores.png and,
with several length scales, length.png; `merge_runs` and `compare_runs` put runs side by side.

How the overall mean is computed (stated in every report): a question scores by its source's
metric; an instance's score is the mean over its questions; a source's score is the mean over
its instances; a competency's score is the mean over its sources; the overall score is the
unweighted mean over competencies. Memory size is the mean over instances of the tokens the
method kept (the memory, the kept context window, or the indexed chunks for RAG).

Conflict questions answered from a writer's memory also count by that memory's fate of the
changed facts they ask about (`fates`): the share overwritten is the writer's part of the
score, the score within each fate the reader's. That part is also paired like a competency
(`OVERWRITTEN`: per instance, the share of its conflict questions whose changed facts the memory
holds overwritten), so "does this writer overwrite more than its warm start" has an interval,
not only two counts.
"""

from __future__ import annotations

import json
from collections import defaultdict
from itertools import combinations
from pathlib import Path
from statistics import mean
from typing import Any, get_args

from memalpha.data import Fate
from memalpha.eval.stats import apart, stratified_interval

AGGREGATION = (
    "instance = mean over its questions; source = mean over instances; competency = mean over "
    "its sources; overall = unweighted mean over competencies"
)
SUMMARY = "summary.json"
FATES = (*get_args(Fate), "mixed")  # "mixed": a question whose changed facts fared apart
OVERWRITTEN = "overwritten"  # paired beside the competencies: the writer's part of CR


def _latest(rows: list[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
    """(method, scale, instance_id, question_id) → its row. Of a job redone after a kill, the
    last rows count, so a resumed run scores each question once."""
    return {(r["method"], r["scale"], r["instance_id"], r["question_id"]): r for r in rows}


def by_instance(rows: list[dict[str, Any]]) -> dict[tuple, list[dict[str, Any]]]:
    """(method, scale, instance_id) → the rows of its questions, each question once."""
    latest = _latest(rows)
    instances: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for key in sorted(latest):
        instances[key[:3]].append(latest[key])
    return instances


def question_fate(fates: list[str]) -> str:
    """One fate for a question: its changed facts' common fate, else "mixed"."""
    return fates[0] if len(set(fates)) == 1 else "mixed"


def overwritten(row: dict[str, Any]) -> float | None:
    """1 if the question's changed facts are all overwritten in the memory, else 0; a pool's
    row carries its members' mean; None for a question without fates (another competency, or
    a method that keeps no memory)."""
    if (shared := row.get(OVERWRITTEN)) is not None:
        return shared
    if fates := row.get("fates"):
        return float(question_fate(fates) == "overwritten")
    return None


def fate_cells(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """fate → questions and their mean score, over the rows that record fates (a memory
    method's conflict questions); {} when none does."""
    by_fate: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if r.get("fates"):
            by_fate[question_fate(r["fates"])].append(float(r["score"]))
    if not by_fate:
        return {}
    return {
        f: {"questions": len(by_fate[f]), "score": mean(by_fate[f]) if by_fate[f] else 0.0}
        for f in FATES
    }


def fate_moves(
    base: list[dict[str, Any]], rows: list[dict[str, Any]]
) -> dict[tuple[str, str], dict[str, float]]:
    """(fate in `base`'s memory, fate in `rows`') → questions and their summed score change, over
    the conflict questions both answered with fates (e.g. a GRPO writer's rows against its warm
    start's). Why: a CR difference near zero can be gains (old → overwritten) and losses
    (overwritten → lost) of equal size; the moves say which facts a writer gave up for which, and
    their score changes sum to the CR difference over those questions."""
    before = {_question(r): r for r in base if r.get("fates")}
    after = {_question(r): r for r in rows}  # of a question redone after a kill, its last row
    moves: dict[tuple[str, str], dict[str, float]] = {}
    for r in after.values():
        if not r.get("fates") or (b := before.get(_question(r))) is None:
            continue
        cell = moves.setdefault(
            (question_fate(b["fates"]), question_fate(r["fates"])),
            {"questions": 0, "score_change": 0.0},
        )
        cell["questions"] += 1
        cell["score_change"] += float(r["score"]) - float(b["score"])
    return moves


def _question(row: dict[str, Any]) -> tuple:
    """A question of one input, at one length, whichever method answered it."""
    return row["scale"], row["instance_id"], row["question_id"]


def pooled_rows(rows: list[dict[str, Any]], pools: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Rows of each pool (name → member methods, e.g. the training seeds of one recipe): a
    question's score and memory are the mean of its members', on the questions every member
    answered. A pool then compares paired like any method: "does the recipe beat its warm
    start on average over these seeds", which no single seed's row says. Its intervals resample
    instances only, so they hold for the seeds drawn, not for seeds not yet drawn."""
    latest = _latest(rows)
    out = []
    for pool, members in pools.items():
        keys = {k[1:] for k in latest if k[0] == members[0]}
        for key in sorted(k for k in keys if all((m, *k) in latest for m in members)):
            answered = [latest[(m, *key)] for m in members]
            shares = [overwritten(r) for r in answered]
            out.append(
                {k: v for k, v in answered[0].items() if k != "fates"}  # one member's memory's
                | {
                    "method": pool,
                    "kind": "pool",
                    "score": mean(r["score"] for r in answered),
                    "memory_tokens": mean(r["memory_tokens"] for r in answered),
                    "prediction": None,
                    OVERWRITTEN: None if None in shares else mean(shares),
                }
            )
    return out


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Scores per (method, scale): by source, by competency, overall; memory and input tokens;
    and every instance's score and memory (`by_instance`), which `merge_runs` pairs and pools
    on across runs."""
    cells: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}  # method → scale → source → ids
    competency: dict[str, str] = {}  # source → its competency
    answered: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for (method, scale, instance_id), qs in by_instance(rows).items():
        answered[method, str(scale)] += qs
        source = qs[0]["data_source"]
        competency[source] = qs[0]["competency"]
        instances = cells.setdefault(method, {}).setdefault(str(scale), {}).setdefault(source, {})
        instances[instance_id] = {
            "score": mean(q["score"] for q in qs),
            "memory_tokens": qs[0]["memory_tokens"],
            "input_tokens": qs[0]["input_tokens"],
            "threads": qs[0].get("threads"),  # None: written before rows recorded it
        }
        if shares := [v for q in qs if (v := overwritten(q)) is not None]:
            instances[instance_id][OVERWRITTEN] = mean(shares)
    out: dict[str, Any] = {"aggregation": AGGREGATION, "methods": {}}
    for method, by_scale in sorted(cells.items()):
        out["methods"][method] = {}
        for scale, by_source in sorted(by_scale.items(), key=lambda kv: int(kv[0])):
            scores = {s: [r["score"] for r in ids.values()] for s, ids in sorted(by_source.items())}
            records = [r for ids in by_source.values() for r in ids.values()]
            sources = {s: mean(v) for s, v in scores.items()}
            comps: dict[str, list[str]] = defaultdict(list)
            for s in sources:
                comps[competency[s]].append(s)
            competencies = {k: mean(sources[s] for s in v) for k, v in sorted(comps.items())}
            out["methods"][method][scale] = {
                "sources": sources,
                "competencies": competencies,
                "intervals": {  # 95%, instances resampled within each source (≥ 2 each)
                    k: stratified_interval([scores[s] for s in v])
                    for k, v in sorted(comps.items())
                    if all(len(scores[s]) >= 2 for s in v)
                },
                "overall": mean(competencies.values()),
                "memory_tokens": mean(r["memory_tokens"] for r in records),
                "input_tokens": mean(r["input_tokens"] for r in records),
                "instances": len(records),
                "threads": sorted({r["threads"] for r in records if r.get("threads")}),
                "by_instance": {
                    s: {"competency": competency[s], "instances": dict(sorted(ids.items()))}
                    for s, ids in sorted(by_source.items())
                },
            }
            if fates := fate_cells(answered[method, scale]):
                out["methods"][method][scale]["fates"] = fates
    out["paired"] = _paired(cells, competency)
    return out


def _paired(
    cells: dict[str, dict[str, dict[str, dict[str, Any]]]], competency: dict[str, str]
) -> dict[str, dict[str, dict[str, Any]]]:
    """scale → "A - B" → competency → the mean per-instance difference of A and B on the
    instances both answered, with its 95% interval (differences resampled within each
    source, ≥ 2 instances each): paired, so much tighter than two methods' own intervals.
    Beside the competencies, `OVERWRITTEN` pairs the share of changed facts overwritten on the
    instances where both memories have fates."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for a, b in combinations(sorted(cells), 2):
        for scale in sorted(set(cells[a]) & set(cells[b]), key=int):
            ca, cb = cells[a][scale], cells[b][scale]
            comps: dict[str, list[list[float]]] = defaultdict(list)
            for source in sorted(ca):
                ids = sorted(set(ca[source]) & set(cb.get(source, {})))
                if len(ids) >= 2:
                    diffs = [ca[source][i]["score"] - cb[source][i]["score"] for i in ids]
                    comps[competency[source]].append(diffs)
                fated = [
                    i for i in ids if OVERWRITTEN in ca[source][i] and OVERWRITTEN in cb[source][i]
                ]
                if len(fated) >= 2:
                    shares = [
                        ca[source][i][OVERWRITTEN] - cb[source][i][OVERWRITTEN] for i in fated
                    ]
                    comps[OVERWRITTEN].append(shares)
            pair = {
                comp: {
                    "diff": mean(mean(g) for g in groups),
                    "interval": stratified_interval(groups),
                    "instances": sum(len(g) for g in groups),
                }
                for comp, groups in sorted(comps.items())
            }
            if pair:
                out.setdefault(scale, {})[f"{a} - {b}"] = pair
    return out


def markdown(summary: dict[str, Any], scale: str = "1") -> str:
    methods = {m: s[scale] for m, s in summary["methods"].items() if scale in s}
    if not methods:
        return ""
    comps = sorted({c for s in methods.values() for c in s["competencies"]})
    sources = sorted({c for s in methods.values() for c in s["sources"]})
    head = ["method", *comps, "overall", *sources, "memory tokens"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" + "---:|" * (len(head) - 1)]
    for name, s in methods.items():
        vals = [s["competencies"].get(c) for c in comps] + [s["overall"]]
        vals += [s["sources"].get(x) for x in sources]
        cells = ["–" if v is None else f"{v:.3f}" for v in vals]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {s['memory_tokens']:,.0f} |")
    lines += ["", f"{summary['aggregation'].capitalize()}.", "", *_separations(methods, comps)]
    lines += ["", *_paired_lines(summary.get("paired", {}).get(scale, {}))]
    lines += _fate_lines(methods)
    return "\n".join(lines) + "\n"


def _fate_lines(methods: dict[str, dict[str, Any]]) -> list[str]:
    """Conflict questions by the memory's fate of their changed facts: score (questions)."""
    fated = {m: s["fates"] for m, s in methods.items() if "fates" in s}
    if not fated:
        return []
    head = ["conflict questions by the memory's fate of the changed fact", *FATES]
    lines = ["", "| " + " | ".join(head) + " |", "|---|" + "---:|" * len(FATES)]
    for name, cells in fated.items():
        shown = [fate_cell_text(cells[f]) for f in FATES]
        lines.append(f"| {name} | " + " | ".join(shown) + " |")
    note = "Score (questions): how many questions' facts the memory overwrote is the writer's part"
    return [*lines, "", f"{note}; the score within a fate is the reader's."]


def fate_cell_text(cell: dict[str, float]) -> str:
    """A `fate_cells` cell as a report shows it: "score (questions)", or a dash."""
    return f"{cell['score']:.2f} ({cell['questions']})" if cell["questions"] else "–"


def _paired_lines(pairs: dict[str, dict[str, Any]]) -> list[str]:
    """The paired differences; `*` marks an interval that excludes 0."""
    if not pairs:
        return []
    lines = ["| paired difference (same instances) | competency | diff [95% interval] |"]
    lines.append("|---|---|---|")
    for name, comps in pairs.items():
        for comp, d in comps.items():
            low, high = d["interval"]
            mark = " *" if low > 0 or high < 0 else ""
            lines.append(f"| {name} | {comp} | {d['diff']:+.3f} [{low:+.3f}, {high:+.3f}]{mark} |")
    note = "`*`: the interval excludes 0 (beyond noise)."
    if any(OVERWRITTEN in comps for comps in pairs.values()):
        note += (
            f" `{OVERWRITTEN}`: the share of conflict questions whose changed facts the memory "
            "holds overwritten (the writer's part of conflict resolution)."
        )
    return [*lines, "", note]


def _separations(methods: dict[str, dict[str, Any]], comps: list[str]) -> list[str]:
    """Per competency: each method's 95% interval, and the methods apart beyond them."""
    lines = ["| competency | 95% intervals (instances resampled within sources) | apart |"]
    lines.append("|---|---|---|")
    for comp in comps:
        intervals = {
            m: tuple(s["intervals"][comp]) for m, s in methods.items() if comp in s["intervals"]
        }
        if not intervals:
            lines.append(f"| {comp} | none: a source with one instance has no interval | – |")
            continue
        shown = ", ".join(f"{m} [{lo:.2f}, {hi:.2f}]" for m, (lo, hi) in intervals.items())
        pairs = ", ".join(f"{a} > {b}" for a, b in apart(intervals)) or "none"
        lines.append(f"| {comp} | {shown} | {pairs} |")
    return lines


def save_summary(summary: dict[str, Any], path: Path) -> None:
    """A summary as JSON, in the one layout every summary file has (keys sorted, so the files
    committed under benchmarks/results diff by value)."""
    path.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n", "utf-8")


def write_summary(
    run_dir: Path, rows: list[dict[str, Any]], pools: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    """summary.json, summary.md and the plots of `rows`, with each pool's rows added."""
    summary = summarize(rows + pooled_rows(rows, pools or {}))
    save_summary(summary, run_dir / SUMMARY)
    scales = sorted({int(k) for s in summary["methods"].values() for k in s})
    md = [f"# Evaluation: {run_dir.name}\n"]
    for scale in scales:
        md += [f"## Input length ×{scale}\n", markdown(summary, str(scale))]
    (run_dir / "summary.md").write_text("\n".join(md), "utf-8")
    _bar_chart(summary, run_dir / "scores.png", str(scales[0]) if scales else "1")
    if len(scales) > 1:
        _length_plot(summary, run_dir / "length.png")
    return summary


def _bar_chart(summary: dict[str, Any], path: Path, scale: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = {m: s[scale] for m, s in summary["methods"].items() if scale in s}
    groups = sorted({c for s in methods.values() for c in s["competencies"]}) + ["overall"]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(groups)), 4))
    width = 0.8 / max(1, len(methods))
    colors = _colors(len(methods))
    for i, (name, s) in enumerate(methods.items()):
        values = [s["competencies"].get(g, 0.0) for g in groups[:-1]] + [s["overall"]]
        # the competency's 95% interval where it has one (none for "overall"; NaN draws none)
        spans = [s["intervals"].get(g) for g in groups[:-1]] + [None]
        none = float("nan")
        errors = [
            [v - span[0] if span else none for v, span in zip(values, spans, strict=True)],
            [span[1] - v if span else none for v, span in zip(values, spans, strict=True)],
        ]
        xs = [g + i * width for g in range(len(groups))]
        ax.bar(xs, values, width, label=name, color=colors[i], yerr=errors, capsize=1.5)
    ax.set_xticks([g + width * (len(methods) - 1) / 2 for g in range(len(groups))], groups)
    ax.set_ylabel("score")
    _save(fig, ax, "score by competency (same reader, same metric)", path)


def _colors(n: int) -> list:
    """n distinguishable colours: the default ten, then tab20 (more methods than the default
    cycle has colours made two bars look like one method)."""
    import matplotlib

    return [matplotlib.colormaps["tab10" if n <= 10 else "tab20"](i % 20) for i in range(n)]


def _length_plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    fig, ax = plt.subplots(figsize=(6, 4))
    colors = _colors(len(summary["methods"]))
    for i, (name, by_scale) in enumerate(summary["methods"].items()):
        points = sorted((s["input_tokens"], s["overall"]) for s in by_scale.values())
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        ax.plot(xs, ys, marker="o", label=name, color=colors[i])
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # decades only: minor labels collide
    ax.set_xlabel("input tokens per instance")
    ax.set_ylabel("overall score")
    _save(fig, ax, "length generalisation", path)


def _save(fig, ax, title: str, path: Path) -> None:
    """Scores in [0, 1], the legend beside the axes (inside, it hid bars), the title; write the
    PNG and free the figure."""
    import matplotlib.pyplot as plt

    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(title)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def compare_runs(
    sources: list[Path], pools: dict[str, list[str]] | None = None, scale: int | None = None
) -> str:
    """Markdown of `merge_runs`: every method of every run side by side, with their paired
    differences and pools.

    Raises:
        DataError: as `merge_runs`.
    """
    return comparison_markdown(merge_runs(sources, pools, scale), scale)


def comparison_markdown(merged: dict[str, Any], scale: int | None = None) -> str:
    """A `merge_runs` summary as markdown, warned when its rows' thread counts differ."""
    at = "" if scale is None else f"At input length ×{scale}.\n\n"
    return _thread_warning(merged) + at + markdown(merged)


def merge_runs(
    sources: list[Path], pools: dict[str, list[str]] | None = None, scale: int | None = None
) -> dict[str, Any]:
    """One summary (summary.json's shape, under scale "1") of every method of every run at
    `scale` (default: each method's first), named "RUN/METHOD", with paired differences on the
    instances two methods share and `pools` (name → such names: e.g. one recipe's seeds, each
    trained and evaluated in its own run) averaged instance by instance as `pooled_rows` does.
    A source is a run directory or a summary file (`benchmarks/results/eval_*_summary.json`), so
    runs whose directories are gone still pair. Summaries written before they kept instance
    scores are shown, unpaired.

    Raises:
        DataError: a source holds no summary, a method was not answered at `scale`, or a
            pool names a method with no instance scores.
    """
    from memalpha.errors import DataError

    rows: list[dict[str, Any]] = []
    unpaired: dict[str, Any] = {}
    for source in sources:
        name, summary = _read_summary(Path(source))
        for method, by_scale in summary["methods"].items():
            label = f"{name}/{method}"
            key = min(by_scale, key=int) if scale is None else str(scale)
            if key not in by_scale:
                raise DataError(
                    f"{label} was not answered at scale {scale}; its scales: "
                    f"{', '.join(sorted(by_scale, key=int))}"
                )
            cell = by_scale[key]
            if "by_instance" in cell:
                rows += _instance_rows(label, cell)
            else:
                unpaired[label] = {"1": cell}
    scored = {r["method"] for r in rows}
    for pool, members in (pools or {}).items():
        if pool in scored or pool in unpaired:
            raise DataError(f"pool {pool}: the name is a method's already")
        if missing := [m for m in members if m not in scored]:
            raise DataError(
                f"pool {pool}: no instance scores for {', '.join(missing)}; "
                f"methods with them: {', '.join(sorted(scored)) or 'none'}"
            )
    merged = summarize(rows + pooled_rows(rows, pools or {}))
    merged["methods"] |= unpaired
    return merged


def _thread_warning(summary: dict[str, Any]) -> str:
    """A warning line when the compared methods were written under different thread counts:
    greedy bf16 writing differs with the count, so their differences include it."""
    counts = {
        name: cell.get("threads", [])
        for name, by_scale in summary["methods"].items()
        for cell in [by_scale[min(by_scale, key=int)]]
    }
    if len({n for c in counts.values() for n in c}) < 2:
        return ""
    shown = ", ".join(f"{m} {'/'.join(map(str, c)) or '?'}" for m, c in counts.items())
    return (
        f"**Written under different thread counts** ({shown}; ?: not recorded): greedy bf16 "
        "writing differs with the count, so differences between these include it.\n\n"
    )


def _read_summary(source: Path) -> tuple[str, dict[str, Any]]:
    """(the name its methods are shown under, the summary) of a run directory or summary file."""
    from memalpha.errors import DataError

    path = source / SUMMARY if source.is_dir() or not source.suffix else source
    if not path.is_file():
        raise DataError(f"{source} has no {SUMMARY}; run `memalpha eval` there first")
    try:
        summary = json.loads(path.read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not an evaluation summary ({exc})") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("methods"), dict):
        raise DataError(f"{path} is not an evaluation summary (no methods mapping)")
    return (source.name if path.parent == source else source.stem), summary


def _instance_rows(label: str, cell: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per instance of a summary cell, scored with the instance's mean: `summarize`
    averages questions within an instance first, so these rows give it the same numbers."""
    return [
        {
            "method": label,
            "scale": 1,
            "instance_id": instance_id,
            "question_id": "",
            "data_source": source,
            "competency": rec["competency"],
            **record,
        }
        for source, rec in cell["by_instance"].items()
        for instance_id, record in rec["instances"].items()
    ]
