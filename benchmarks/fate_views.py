"""When a writer's final memory holds a changed fact twice (old and new value side by side,
fate "both"), whether the entry with the old value was in the writer's view when the new value
came: a view that hid it, or a writer that saw it and inserted beside it. Read from a
`memalpha eval` run's kept memories (`memories.jsonl`) and its config; no model.

The memory at the change is rebuilt from the final one: the semantic entries older than the
first entry stating the new value (ids are given in order), shown to the view of each mode
against the chunk that states the change. An approximation: entries deleted before the end are
missing from it and updated ones hold their final text. A change whose old-value entry is newer
than its new-value entry counts as `old after new` (neither view could have shown it).

    python benchmarks/fate_views.py --eval runs/eval-length-idafter-fate \
        [--eval RUN ...] [--method M ...] [--k 8] [--out benchmarks/results/fate_views.json]

Why: the fate seeds overwrite far fewer changed facts at 16x their training length than at 1x,
and keep the old value beside the new for 9-16 of 24 questions (benchmarks/RESULTS.md, "What
the memories hold of each changed fact"); `benchmarks/view_fates.py` shows a perfect updater
loses changes to the whole-chunk view at 16x. This says which of the two the writers' losses are.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from memalpha.data import Instance, Superseded
from memalpha.eval import EvalConfig, read_memories
from memalpha.eval.runner import load_jobs
from memalpha.memory import (
    Component,
    Entry,
    Memory,
    MemoryConfig,
    MemorySnapshot,
    snapshot_from_dict,
)
from memalpha.memory.views import visible_entries
from memalpha.tokens import TokenCounter, make_token_counter
from report import save

MODES = ("retrieved", "sentences")


def order(entry: Entry) -> int:
    return int(entry.id[1:])


def about(entries: list[Entry], change: Superseded, value: str) -> list[Entry]:
    """Entries naming the change's subject and stating `value` (and, for the old value, not the
    new one: an entry naming both states the change, as `Superseded.fate` reads it)."""
    subject, value, new = (x.casefold() for x in (change.subject, value, change.new))
    return [
        e
        for e in entries
        if subject in (text := e.content.casefold())
        and value in text
        and (value == new or new not in text)
    ]


def in_view(
    change: Superseded, entries: list[Entry], instance: Instance, counter: TokenCounter, k: int
) -> dict[str, str] | None:
    """mode → 'shown' or 'hidden', for a change whose memory holds both; None when the entry
    with the old value is newer than the first with the new (no view could have shown it)."""
    first_new = min(order(e) for e in about(entries, change, change.new))
    olds = [e for e in about(entries, change, change.old) if order(e) < first_new]
    if not olds:
        return None
    subject, new = change.subject.casefold(), change.new.casefold()
    chunk = next(c for c in instance.chunks if subject in c.casefold() and new in c.casefold())
    before = tuple(e for e in entries if order(e) < first_new)
    memory = Memory(MemoryConfig(), counter)
    memory.restore(MemorySnapshot("", before, (), {"semantic": first_new, "episodic": 1}))
    out = {}
    for mode in MODES:
        shown = {e.id for e in visible_entries(memory, Component.SEMANTIC, mode, k, chunk)}
        out[mode] = "shown" if any(e.id in shown for e in olds) else "hidden"
    return out


def run_rows(run: Path, methods: list[str], k: int) -> list[dict]:
    """One row per (method, scale) of a run's kept memories: changes by fate, and for 'both'
    whether each view mode showed the old entry."""
    cfg = EvalConfig.model_validate(yaml.safe_load((run / "config.yaml").read_text()))
    counter = make_token_counter()
    jobs = load_jobs(cfg.model_copy(update={"methods": cfg.methods[:1]}), counter)
    instances = {(j.scale, j.instance.id): j.instance for j in jobs}
    counts: dict[tuple[str, int], Counter[str]] = {}
    for (method, scale, instance_id), data in sorted(read_memories(run).items()):
        if methods and method not in methods:
            continue
        instance = instances[scale, instance_id]
        entries = list(snapshot_from_dict(data).semantic)
        contents = [e.content for e in entries]
        count = counts.setdefault((method, scale), Counter())
        changes = {c for qa in instance.questions for c in qa.superseded}
        for change in sorted(changes, key=lambda c: (c.subject, c.new)):
            fate = change.fate(contents)
            count[fate] += 1
            if fate != "both":
                continue
            seen = in_view(change, entries, instance, counter, k)
            if seen is None:
                count["old after new"] += 1
            else:
                count.update(f"{mode} {shown}" for mode, shown in seen.items())
    return [{"run": run.name, "method": m, "scale": s, **dict(c)} for (m, s), c in counts.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=Path, action="append", required=True, help="eval run")
    parser.add_argument("--method", action="append", default=[], help="writer method (all)")
    parser.add_argument("--k", type=int, default=8, help="entries each view shows per list")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("results") / "fate_views.json"
    )
    args = parser.parse_args()
    rows = [r for run in args.eval for r in run_rows(run, args.method, args.k)]
    if not rows:
        raise SystemExit(f"{args.eval}: no kept memories (run before memalpha eval kept them?)")
    heads = ["overwritten", "both", *(f"{m} {s}" for m in MODES for s in ("shown", "hidden"))]
    heads += ["old after new", "old", "lost"]
    table = Table(title="Changed facts by fate; for 'both', was the old entry in view?")
    for head in ("method", "scale", *heads):
        table.add_column(head, justify="left" if head == "method" else "right")
    for r in rows:
        table.add_row(r["method"], str(r["scale"]), *(str(r.get(h, 0)) for h in heads))
    Console(width=180).print(table)
    save(args.out, {"rows": rows}, args)


if __name__ == "__main__":
    main()
