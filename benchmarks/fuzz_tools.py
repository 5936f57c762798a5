"""Model output as an attacker would write it, through the real parse → execute path: random
text, truncated real outputs and adversarial shapes (deep nesting, repeated ✿ markers, huge
arguments, thousands of calls, lone surrogates, invisible content, injected call markers),
per tool-call format. Reports crashes (any exception out of `MemoryAgent.execute`), time per
output (p50, p99, slowest) and invariant checks on memories backed by a real SQLite store.

    python benchmarks/fuzz_tools.py                      # 10,000 outputs per format (~2 min)
    python benchmarks/fuzz_tools.py --outputs 2000       # quick look
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from memalpha.agent import WriterConfig, build_agent, rule_calls
from memalpha.llm import FORMATS, FunctionCall, Generation
from memalpha.memory import Component, Memory, MemoryConfig, SqliteStore, snapshot_to_dict
from memalpha.tokens import make_token_counter
from report import save

WORDS = "Alice moved to Paris in 2019 she bakes bread at Le Pain the code is 42 and".split()
SPECIAL = [
    "<tool_call>",
    "</tool_call>",
    "✿FUNCTION✿: ",
    "✿ARGS✿: ",
    "✿RESULT✿: ",
    "✿RETURN✿",
    "\ud800",
    "\udfff",
    "\u200b",
    "\x00",
    "\ufeff",
    "😀",
    "\\ud83d",
    '{"',
    "[",
    "}",
    '"',
    "\\",
    "s²",
    "s1",
    "e99999999999999999999",
    "core_memory",
    "semantic_memory",
    "memory_delete",
    "\n",
]
TOOLS = ["new_memory_insert", "memory_update", "memory_delete"]
TYPES = ["core_memory", "semantic_memory", "episodic_memory", "procedural", ""]


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS + SPECIAL) for _ in range(rng.randint(1, 12))]
    return " ".join(words)


def random_call(rng: random.Random) -> FunctionCall:
    args = {"memory_type": rng.choice(TYPES)}
    key = rng.choice(["content", "new_content", "memory_id", "junk"])
    args[key] = rng.choice([sentence(rng), rng.choice(SPECIAL), f"s{rng.randint(0, 30)}"])
    if rng.random() < 0.3:
        args["memory_id"] = rng.choice([f"s{rng.randint(1, 9)}", f"e{rng.randint(1, 9)}", "s²"])
    return FunctionCall(rng.choice(TOOLS), args)


def random_text(rng: random.Random) -> str:
    n = rng.randint(0, 400)
    return "".join(
        rng.choice(SPECIAL) if rng.random() < 0.1 else chr(rng.randint(0, 0x2FFFF))
        for _ in range(n)
    )


def truncated(rng: random.Random, fmt: str) -> str:
    calls = [random_call(rng) for _ in range(rng.randint(1, 6))]
    calls += [FunctionCall(c.name, c.arguments) for c in rule_calls(sentence(rng), first=True)]
    text = FORMATS[fmt].render(calls)
    if rng.random() < 0.3:  # an escaped emoji cut mid-escape by the token budget
        text = text.replace("😀", "\\ud83d\\ude00")
    return text[: rng.randint(0, len(text))]


def adversarial(rng: random.Random, fmt: str) -> str:
    opener = "<tool_call>" if fmt == "hermes" else "✿FUNCTION✿: new_memory_insert\n✿ARGS✿: "
    kind = rng.randrange(9)
    size = rng.choice([100, 1000, 5000, 20000])
    if kind == 0:
        return opener + "[" * size
    if kind == 1:
        return "✿FUNCTION✿: " * (size // 4)
    if kind == 2:  # a huge argument cut off by the budget
        return opener + '{"name": "new_memory_insert", "arguments": {"content": "' + "x" * size * 10
    if kind == 3:  # thousands of tiny calls
        one = FORMATS[fmt].render([FunctionCall("memory_delete", {"memory_type": "core_memory"})])
        return "\n".join([one] * (size // 10))
    if kind == 4:
        return opener + '{"a": ' * size
    if kind == 5:  # invisible or broken content
        bad = rng.choice(["\u200b\u200b", "\x00", "\ufeff", "\ud800", "  \n\t", "\u2028"])
        call = FunctionCall("new_memory_insert", {"memory_type": "semantic_memory", "content": bad})
        return FORMATS[fmt].render([call])
    if kind == 6:  # ids that look like numbers but are not, or are huge
        bad = rng.choice(["s²", "s١", "s" + "9" * 40, "s-1", "s0", "[s1]"])
        call = FunctionCall("memory_delete", {"memory_type": "semantic_memory", "memory_id": bad})
        return FORMATS[fmt].render([call])
    if kind == 7:  # call markers injected into content
        content = rng.choice(SPECIAL[:6]) + sentence(rng) + rng.choice(SPECIAL[:6])
        call = FunctionCall(
            "new_memory_insert", {"memory_type": "semantic_memory", "content": content}
        )
        return FORMATS[fmt].render([call]) + "\n" + rng.choice(SPECIAL[:6]) * rng.randint(1, 50)
    return "".join(rng.choice(SPECIAL) for _ in range(size))


def outputs(n: int, fmt: str, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    makers = [
        ("random", lambda: random_text(rng)),
        ("truncated", lambda: truncated(rng, fmt)),
        ("adversarial", lambda: adversarial(rng, fmt)),
    ]
    return [(kind, make()) for kind, make in (makers[i % 3] for i in range(n))]


def invariants(memory: Memory, store: SqliteStore, name: str, cfg: MemoryConfig) -> list[str]:
    """What must hold whatever the model wrote."""
    bad = []
    snap = memory.snapshot()
    for c, entries in ((Component.SEMANTIC, snap.semantic), (Component.EPISODIC, snap.episodic)):
        ids = [e.id for e in entries]
        if len(set(ids)) != len(ids):
            bad.append(f"duplicate {c.value} ids")
    if memory.counter.count(memory.core) > cfg.core_max_tokens + 16:
        bad.append("core over its cap")
    if snapshot_to_dict(store.read(name)) != snapshot_to_dict(snap):
        bad.append("store and memory differ")
    return bad


def run_format(fmt: str, n: int, seed: int, folder: Path) -> dict:
    counter = make_token_counter()
    writer = WriterConfig(format=fmt, max_new_tokens=512)
    agent = build_agent(writer, counter)
    times: list[tuple[float, str, int]] = []
    crashes: Counter[str] = Counter()
    violations: Counter[str] = Counter()
    examples: list[str] = []
    with SqliteStore(folder / f"{fmt}.db") as store:
        for i, (kind, text) in enumerate(outputs(n, fmt, seed)):
            if i % 200 == 0:  # a fresh memory now and then, so caps and ids are exercised
                name = f"m{i}"
                store.create_session(name)
                memory = store.open_memory(name, writer.memory, counter)
            start = time.perf_counter()
            try:
                agent.execute(memory, [], Generation(text), 0)
            except Exception as exc:  # what this benchmark exists to count
                crashes[f"{kind}: {type(exc).__name__}"] += 1
                if len(examples) < 5:
                    examples.append(f"{kind} {text[:80]!r}: {traceback.format_exc(limit=2)}")
            times.append((time.perf_counter() - start, kind, len(text)))
            if i % 50 == 49:
                for v in invariants(memory, store, name, writer.memory):
                    violations[v] += 1
    ms = sorted(t * 1000 for t, _, _ in times)
    slowest = max(times)
    return {
        "format": fmt,
        "outputs": n,
        "crashes": sum(crashes.values()),
        "crash_kinds": dict(crashes),
        "invariant_violations": dict(violations),
        "p50_ms": statistics.median(ms),
        "p99_ms": ms[int(0.99 * (len(ms) - 1))],
        "max_ms": ms[-1],
        "slowest": {"kind": slowest[1], "chars": slowest[2]},
        "examples": examples,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--outputs", type=int, default=10_000, help="Outputs per format.")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/fuzz_tools.json"))
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("hermes", "qwen"):
            rows.append(run_format(fmt, args.outputs, args.seed, Path(tmp)))
    table = Table(title=f"fuzzed model outputs through parse → execute ({args.outputs} per format)")
    for col in (
        "format",
        "outputs",
        "crashes",
        "invariant violations",
        "p50 ms",
        "p99 ms",
        "max ms",
        "slowest",
    ):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            r["format"],
            str(r["outputs"]),
            str(r["crashes"]),
            str(sum(r["invariant_violations"].values())),
            f"{r['p50_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            f"{r['max_ms']:.1f}",
            f"{r['slowest']['kind']} ({r['slowest']['chars']:,} chars)",
        )
    Console(width=150).print(table)
    for r in rows:
        for e in r["examples"]:
            print(e)
    save(args.out, {"rows": rows}, args)
    print(json.dumps({r["format"]: r["crash_kinds"] for r in rows}))


if __name__ == "__main__":
    main()
