"""What the writers of an evaluation run did with their tool calls, held out: each call replayed
on a fresh memory configured as the writer's (`memalpha.memory.ToolExecutor`, the executor the
agent runs), counted by tool and by whether it succeeded, and how many final memories hold a
core memory and how many are empty.

Why: a memory's size and a QA score do not say whether a writer's updates work. The quickstart
warm start's 13 held-out updates all fail: they come at the first chunks, where its teacher
sets core memory, as semantic updates of made-up ids, and it sets no core memory at all; so no
GRPO recipe from it has a working update to reinforce (benchmarks/RESULTS.md, "Undivided
advantages"). Reads the calls the run kept (`memories.jsonl`); no model runs.

    python benchmarks/call_outcomes.py --config configs/eval/quickstart-charged.yaml \
        --eval runs/eval-quickstart-charged --out benchmarks/results/quickstart_call_outcomes.json
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from memalpha.config import load_config
from memalpha.eval import EvalConfig
from memalpha.eval.runner import read_calls
from memalpha.memory import Memory, ToolCall, ToolExecutor, ToolRegistry
from memalpha.tokens import make_token_counter
from report import save


def outcomes(cfg: EvalConfig, calls: dict[tuple[str, int, str], list[list[ToolCall]]]) -> dict:
    """method -> {"tool:ok" / "tool:failed": count, "memories": n, "core set": n, "empty": n}."""
    writers = {m.name: m.writer for m in cfg.methods if getattr(m, "writer", None) is not None}
    out: dict[str, Counter] = {}
    for (method, _scale, _instance), chunks in sorted(calls.items()):
        memory_config = writers[method].memory
        memory = Memory(memory_config, make_token_counter(memory_config.tokenizer))
        executor = ToolExecutor(ToolRegistry(memory_config.disabled))
        tally = out.setdefault(method, Counter())
        for call in (c for chunk in chunks for c in chunk):
            ok = executor.execute(memory, call).ok
            tally[f"{call.name}:{'ok' if ok else 'failed'}"] += 1
        tally["memories"] += 1
        tally["core set"] += bool(memory.core)
        tally["empty"] += not memory.contents()
    return {method: dict(tally) for method, tally in out.items()}


def show(table_rows: dict[str, dict[str, int]]) -> None:
    """One row per method: each tool's succeeded / failed calls, the memories with a core memory
    and the empty ones."""
    tools = sorted({k.split(":")[0] for row in table_rows.values() for k in row if ":" in k})
    table = Table(title="calls held out, replayed (succeeded / failed)")
    for column in ["method", *tools, "core set", "empty memories"]:
        table.add_column(column, justify="left" if column == "method" else "right")
    for method, row in table_rows.items():
        cells = [f"{row.get(f'{t}:ok', 0)} / {row.get(f'{t}:failed', 0)}" for t in tools]
        of = f" of {row['memories']}"
        table.add_row(method, *cells, f"{row['core set']}{of}", f"{row['empty']}{of}")
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="the eval config that ran")
    parser.add_argument("--eval", type=Path, required=True, help="its run directory")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rows = outcomes(load_config(EvalConfig, args.config), read_calls(args.eval))
    show(rows)
    save(args.out, {"methods": rows}, args)


if __name__ == "__main__":
    main()
