"""Where a writer's memory lost the changed facts it ends without: chunk by chunk, what memory
held of each change (`memalpha.aim.episode_fates`), for the writers of an eval config: replayed
from the calls the eval kept, or written again as that eval wrote them (same instances, batches
and threads, greedy; no reader).

Why: GRPO seeds at 16 instances a step ended level with their warm start, losing changed facts
the warm start had overwritten, and a dearer keep (r6) did not keep them (benchmarks/RESULTS.md,
"Keep 0.5 at 16 instances a step"). Branch groups, and so every per-chunk reward, form only at
chunks that want a change (memory still states an old value the chunk overwrites). A fact
dropped at any other chunk, or never stored, is charged by nothing but the episode's QA terms.
This says which it is.

A change's *path* is its fate after each chunk. Ending overwritten or both, memory *holds* it;
ending old, the new value was never written, or written and then dropped; ending lost, memory
never stated either value, or it *dropped* the last one at some chunk: before the chunk that
first announces the change, at it, or after it, and that chunk formed a group or was quiet.

    python benchmarks/fate_chunks.py \
        --config configs/eval/select-c128-idafter-sparse-wide16-keep05-step4.yaml \
        --eval runs/eval-select-c128-idafter-sparse-wide16-keep05-step4 \
        --method warm-start-idafter --method wide16-keep05-s0-step4 --from warm-start-idafter \
        --out benchmarks/results/fate_chunks.json [--plot benchmarks/fate_chunks.png]

With `--eval`, a job whose calls that run kept (`memories.jsonl`, since 2026-12-07) is replayed
from them and not written again (seconds, not an hour), and each final memory is checked against
the one that run kept: the paths are of the memories the eval's answers were read from.
`--from BASE`: a second table, of the changes BASE's memory held and the method's did not.
`--base-rows JSON` takes BASE's rows from an earlier result of this script on the same instances
(its writer is greedy, so they are what writing it again would give) instead of writing BASE
again when the eval kept no calls for it.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.table import Table

from memalpha.aim import (
    PATH_CLASSES,
    ChunkFates,
    announced_at,
    changes_of,
    episode_fates,
    path_class,
)
from memalpha.config import load_config
from memalpha.data import Instance
from memalpha.eval import EvalConfig
from memalpha.eval.methods import Method, make_method
from memalpha.eval.runner import Job, batches, load_jobs, read_calls, read_memories
from memalpha.memory import Memory, ToolCall, snapshot_to_dict
from memalpha.tokens import make_token_counter
from report import save


def instance_rows(method: str, instance: Instance, fates: list[ChunkFates]) -> list[dict]:
    """One row per change of `instance`: its path, class, and where it was dropped."""
    rows = []
    for k, change in enumerate(changes_of(instance)):
        path = [f.fates[k] for f in fates]
        announced = announced_at(instance, change)
        cls, dropped = path_class(path, len(path) if announced is None else announced)
        rows.append(
            {
                "method": method,
                "instance_id": instance.id,
                "change": change.model_dump(),
                "path": path,
                "grouped": [f.grouped for f in fates],
                "announced": announced,
                "class": cls,
                "dropped": dropped,
                "dropped_in_group": None if dropped is None else fates[dropped].grouped,
            }
        )
    return rows


_METHODS: dict[str, Method] = {}


def _write(cfg_json: str, jobs: list[Job]) -> tuple[list[dict], dict[str, dict]]:
    """The change rows and final memories (exported) of one batch, written as the eval did."""
    from memalpha.llm import pin_threads

    cfg = EvalConfig.model_validate_json(cfg_json)
    pin_threads(cfg.threads)
    name = jobs[0].method
    if name not in _METHODS:
        mcfg = next(m for m in cfg.methods if m.name == name)
        _METHODS[name] = make_method(mcfg, make_token_counter(), None)
    method = _METHODS[name]
    rows, memories = [], {}
    for job, recall in zip(jobs, method.recall_many([j.instance for j in jobs]), strict=True):
        assert recall.memory is not None and recall.episode is not None, f"{name} keeps no memory"
        calls = [[r.call for r in step.results] for step in recall.episode.steps]
        fates = episode_fates(job.instance, calls, recall.memory.config, method.counter)
        rows += instance_rows(name, job.instance, fates)
        memories[job.instance.id] = snapshot_to_dict(recall.memory.snapshot())
    return rows, memories


def _replay(cfg: EvalConfig, job: Job, calls: list[list[ToolCall]]) -> tuple[list[dict], dict]:
    """The change rows and final memory (exported) of one job, from the calls its eval kept."""
    writer = next(m for m in cfg.methods if m.name == job.method).writer
    counter = make_token_counter(writer.memory.tokenizer)
    memory = Memory(writer.memory, counter)
    fates = episode_fates(job.instance, calls, writer.memory, counter, memory)
    return instance_rows(job.method, job.instance, fates), snapshot_to_dict(memory.snapshot())


def beside_resolution(row: dict, rows: list[dict]) -> bool:
    """Whether, at the chunk that dropped `row`'s fact, another change of the same writer and
    instance went from old or both to overwritten: the drop paid for a resolution."""
    t = row["dropped"]
    return any(
        o is not row
        and (o["method"], o["instance_id"]) == (row["method"], row["instance_id"])
        and o["path"][t] == "overwritten"
        and (t == 0 or o["path"][t - 1] in ("old", "both"))
        for o in rows
    )


def tally(rows: list[dict], context: list[dict] | None = None) -> dict:
    """Changes by class; of those dropped, how many at a chunk that formed a group, and of
    those how many beside a resolution (`context`: the rows to look for it in, default `rows`)."""
    classes = Counter(r["class"] for r in rows)
    dropped = [r for r in rows if r["dropped"] is not None]
    in_group = [r for r in dropped if r["dropped_in_group"]]
    return {
        "changes": len(rows),
        **{c: classes[c] for c in PATH_CLASSES},
        "dropped": len(dropped),
        "dropped_in_group": len(in_group),
        "in_group_beside_resolution": sum(beside_resolution(r, context or rows) for r in in_group),
    }


def given_up(rows: list[dict], base: str) -> dict[str, list[dict]]:
    """method → its rows of the changes `base`'s memory held and the method's did not."""
    held = {
        (r["instance_id"], str(r["change"]))
        for r in rows
        if r["method"] == base and r["class"] == "held"
    }
    out: dict[str, list[dict]] = {}
    for r in rows:
        if (
            r["method"] != base
            and r["class"] != "held"
            and (r["instance_id"], str(r["change"])) in held
        ):
            out.setdefault(r["method"], []).append(r)
    return out


def rows_of(path: Path, method: str) -> list[dict]:
    """`method`'s change rows from an earlier result of this script."""
    rows = [r for r in json.loads(path.read_text("utf-8"))["rows"] if r["method"] == method]
    if not rows:
        raise SystemExit(f"{path} holds no rows of {method}")
    return rows


def print_table(title: str, tallies: dict[str, dict]) -> None:
    table = Table(title=title)
    heads = ("changes", *PATH_CLASSES, "dropped in a group", "of those beside a resolution")
    table.add_column("method")
    for h in heads:
        table.add_column(h.replace(": ", ":\n"), justify="right")
    for method, t in tallies.items():
        cells = [
            t["changes"],
            *(t[c] for c in PATH_CLASSES),
            f"{t['dropped_in_group']}/{t['dropped']}",
            f"{t['in_group_beside_resolution']}/{t['dropped_in_group']}",
        ]
        table.add_row(method, *map(str, cells))
    Console(width=200).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="the eval config")
    parser.add_argument("--method", action="append", default=[], help="writer (default: all)")
    parser.add_argument(
        "--eval", type=Path, help="that config's run: its kept calls, and the final memories"
    )
    parser.add_argument("--from", dest="base", help="method: the changes it held that others lost")
    parser.add_argument("--base-rows", type=Path, help="earlier result holding BASE's rows")
    parser.add_argument("--workers", type=int, help="processes (default: the config's)")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("results") / "fate_chunks.json"
    )
    parser.add_argument("--plot", type=Path, help="PNG: each method's changes by class")
    args = parser.parse_args()
    if args.base_rows and not args.base:
        parser.error("--base-rows names the rows of --from BASE; give --from too")
    cfg = load_config(EvalConfig, args.config)
    writers = [m.name for m in cfg.methods if m.kind in ("memalpha", "rule-writer")]
    methods = args.method or writers
    if unknown := sorted(set(methods) - set(writers)):
        raise SystemExit(f"not a writer of {args.config}: {', '.join(unknown)}")
    base_rows = rows_of(args.base_rows, args.base) if args.base and args.base_rows else []
    if args.base and not base_rows and args.base not in methods:
        methods.append(args.base)
    jobs = [j for j in load_jobs(cfg, make_token_counter()) if j.method in methods and j.scale == 1]
    made = read_calls(args.eval) if args.eval else {}
    rows: list[dict] = []
    written: dict[tuple[str, str], dict] = {}
    for job in (j for j in jobs if j.key in made):
        job_rows, written[(job.method, job.instance.id)] = _replay(cfg, job, made[job.key])
        rows += job_rows
    if written:
        print(f"replayed {len(written)} jobs from the calls {args.eval} kept", flush=True)
    todo = batches([j for j in jobs if j.key not in made], cfg.batch_instances)
    cfg_json = cfg.model_dump_json(exclude_unset=True)
    with ProcessPoolExecutor(args.workers or cfg.workers) as pool:
        for batch, (batch_rows, memories) in zip(
            todo, pool.map(_write, [cfg_json] * len(todo), todo), strict=True
        ):
            rows += batch_rows
            written |= {(batch[0].method, i): m for i, m in memories.items()}
            print(f"wrote {batch[0].method}: {len(batch)} instances", flush=True)
    results: dict = {
        "rows": rows,
        "tallies": {m: tally([r for r in rows if r["method"] == m]) for m in methods},
    }
    if args.eval:
        kept = read_memories(args.eval)
        same = {
            m: sum(kept.get((m, 1, i)) == mem for (mm, i), mem in written.items() if mm == m)
            for m in methods
        }
        results["same_final_memory"] = {
            m: f"{same[m]}/{sum(mm == m for mm, _ in written)}" for m in methods
        }
        print("final memory as the eval kept it:", results["same_final_memory"])
    print_table("Each change's path through the chunks, by where it ended", results["tallies"])
    if args.base:
        lost = given_up(rows + base_rows, args.base)
        results["given_up"] = {m: tally(r, rows) for m, r in lost.items()}
        print_table(f"Changes {args.base} held and the method did not", results["given_up"])
    save(args.out, results, args)
    if args.plot:
        plot(results["tallies"], args.plot)


def plot(tallies: dict[str, dict], path: Path) -> None:
    """Stacked horizontal bars: each method's changes by class, as counts, and beside each how
    many of its drops came at chunks that formed no branch group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = ("tab:green", "tab:orange", "tab:red", "lightgray", "tab:gray", "tab:purple", "black")
    fig, ax = plt.subplots(figsize=(10, 0.5 * len(tallies) + 1.6))
    for y, t in enumerate(tallies.values()):
        left = 0
        for cls, color in zip(PATH_CLASSES, colors, strict=True):
            if t[cls]:
                ax.barh(
                    y,
                    t[cls],
                    left=left,
                    color=color,
                    label=cls if cls not in ax.get_legend_handles_labels()[1] else None,
                )
                ink = "white" if color in ("black", "tab:purple", "tab:gray") else "black"
                ax.text(
                    left + t[cls] / 2, y, t[cls], ha="center", va="center", fontsize=7, color=ink
                )
                left += t[cls]
        quiet = t["dropped"] - t["dropped_in_group"]
        ax.text(left + 0.5, y, f"{quiet} dropped at quiet chunks", va="center", fontsize=7)
    ax.set_xlim(0, max(t["changes"] for t in tallies.values()) * 1.3)
    ax.set_yticks(range(len(tallies)), list(tallies), fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("changed facts (held-out instances)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
