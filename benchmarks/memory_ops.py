"""Memory operation speed: inserts, BM25 search latency at 1K/10K/100K entries, durable store.

Entries are real sentences (SQuAD dev contexts, Pride and Prejudice, BANKING77, TREC; joined
in consecutive pairs when more are needed); queries are real SQuAD questions. The baseline is
the published code's search: a rank_bm25 BM25Okapi index rebuilt for every query.

    python benchmarks/memory_ops.py                 # full run (~10 min on 2 cores)
    python benchmarks/memory_ops.py --entries 20000 --queries 200   # quick look
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

from rank_bm25 import BM25Okapi
from rich.console import Console
from rich.table import Table

from memalpha.memory import Component, Memory, MemoryConfig, SqliteStore
from memalpha.retrieval import tokenize
from memalpha.tokens import make_token_counter
from report import save

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"“])")


def real_sentences(data: Path) -> list[str]:
    squad = json.loads((data / "squad-v1.1" / "dev-v1.1.json").read_text("utf-8"))
    out = [s for a in squad["data"] for p in a["paragraphs"] for s in _SENT.split(p["context"])]
    book = (data / "gutenberg-1342-pride-and-prejudice" / "1342-0.txt").read_text("utf-8")
    out += _SENT.split(" ".join(book.split()))
    with open(data / "banking77" / "train.csv", encoding="utf-8") as f:
        out += [row["text"] for row in csv.DictReader(f)]
    out += [
        line.split(" ", 1)[1].strip()
        for line in (data / "trec" / "train_5500.label").read_text("latin-1").splitlines()
        if " " in line
    ]
    seen, unique = set(), []
    for s in (s.strip() for s in out):
        if len(s) > 12 and s not in seen:
            seen.add(s)
            unique.append(s)
    return unique


def make_entries(sentences: list[str], n: int) -> list[str]:
    entries, seen, step = list(sentences[:n]), set(sentences[:n]), 1
    while len(entries) < n:  # more needed: join sentence i with sentence i+step (still real text)
        for i in range(len(sentences) - step):
            joined = f"{sentences[i]} {sentences[i + step]}"
            if joined not in seen:
                seen.add(joined)
                entries.append(joined)
                if len(entries) == n:
                    break
        step += 1
    return entries


def questions(data: Path, n: int) -> list[str]:
    squad = json.loads((data / "squad-v1.1" / "dev-v1.1.json").read_text("utf-8"))
    qs = [q["question"] for a in squad["data"] for p in a["paragraphs"] for q in p["qas"]]
    return qs[:: max(1, len(qs) // n)][:n]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1]
        if len(values) > 1
        else values[0]
    )


def time_queries(search, qs: list[str]) -> dict[str, float]:
    lat = []
    for q in qs:
        t = time.perf_counter()
        search(q)
        lat.append((time.perf_counter() - t) * 1000)
    return {
        "queries": len(qs),
        "p50_ms": pct(lat, 50),
        "p99_ms": pct(lat, 99),
        "mean_ms": statistics.fmean(lat),
    }


def published_search(docs: list[str], query: str, k: int = 20) -> list[int]:
    """What the published Memory.memory_search does: build BM25Okapi, score, sort, top-k."""
    bm25 = BM25Okapi([tokenize(d) for d in docs])
    scores = bm25.get_scores(tokenize(query))
    return sorted(range(len(docs)), key=lambda i: scores[i], reverse=True)[:k]


def run(args: argparse.Namespace) -> dict:
    counter = make_token_counter()
    entries = make_entries(real_sentences(args.data), args.entries)
    qs = questions(args.data, args.queries)
    memory = Memory(MemoryConfig(), counter)
    memory.search(
        Component.SEMANTIC, "warm up", 1
    )  # index is live from here: every insert updates it
    rss0 = rss_mb()
    results: dict = {"search": [], "baseline": []}
    done, t_insert = 0, 0.0
    for size in [s for s in args.sizes if s <= args.entries]:
        t = time.perf_counter()
        for text in entries[done:size]:
            memory.insert(Component.SEMANTIC, text)
        t_insert += time.perf_counter() - t
        done = size
        stats = time_queries(lambda q: memory.search(Component.SEMANTIC, q, 20), qs)
        results["search"].append({"entries": size, **stats})
        n_base = min(len(qs), args.baseline_budget_s * 1000 // max(1, size // 10))
        if size <= args.baseline_max:
            docs = [e.content for e in memory.entries(Component.SEMANTIC)]
            base = time_queries(lambda q, d=docs: published_search(d, q), qs[: max(3, n_base)])
            results["baseline"].append(
                {"entries": size, **base, "speedup_p50": base["p50_ms"] / stats["p50_ms"]}
            )
    results["insert"] = {
        "entries": done,
        "seconds": t_insert,
        "per_s": done / t_insert,
        "memory_rss_mb": rss_mb() - rss0,
        "tokens": memory.total_tokens,
    }
    results["store"] = store_bench(memory, counter)
    return results


def store_bench(memory: Memory, counter) -> dict:
    """Durable inserts (one transaction each), a whole-session load, and the file size."""
    entries = memory.entries(Component.SEMANTIC)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        with SqliteStore(path) as store:
            store.create_session("bench")
            durable = store.open_memory("bench", MemoryConfig(), counter)
            t = time.perf_counter()
            for e in entries:
                durable.insert(Component.SEMANTIC, e.content)
            t_ops = time.perf_counter() - t
        rss0 = rss_mb()
        t = time.perf_counter()
        with SqliteStore(path) as store:
            loaded = store.open_memory("bench", MemoryConfig(), counter)
        t_load = time.perf_counter() - t
        assert loaded.count(Component.SEMANTIC) == len(entries)
        size_mb = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 2**20
        return {
            "entries": len(entries),
            "ops_per_s": len(entries) / t_ops,
            "op_seconds": t_ops,
            "load_seconds": t_load,
            "file_mb": size_mb,
            "loaded_rss_mb": rss_mb() - rss0,
        }


def render(results: dict, console: Console) -> None:
    table = Table(title="BM25 search over semantic memory, top-20 (ms per query)")
    for col in (
        "entries",
        "queries",
        "memalpha p50",
        "memalpha p99",
        "published p50",
        "published p99",
        "speed-up (p50)",
    ):
        table.add_column(col, justify="right")
    base = {b["entries"]: b for b in results["baseline"]}
    for s in results["search"]:
        b = base.get(s["entries"])
        table.add_row(
            str(s["entries"]),
            str(s["queries"]),
            f"{s['p50_ms']:.2f}",
            f"{s['p99_ms']:.2f}",
            f"{b['p50_ms']:.1f} ({b['queries']} q)" if b else "not run",
            f"{b['p99_ms']:.1f}" if b else "-",
            f"{b['speedup_p50']:.0f}×" if b else "-",
        )
    console.print(table)
    ins, st = results["insert"], results["store"]
    console.print(
        f"insert (RAM, live index): {ins['entries']} entries in {ins['seconds']:.1f} s "
        f"= {ins['per_s']:.0f}/s; RSS +{ins['memory_rss_mb']:.0f} MB; "
        f"{ins['tokens']} tokens"
    )
    console.print(
        f"store: {st['ops_per_s']:.0f} durable inserts/s; load {st['entries']} entries "
        f"in {st['load_seconds']:.1f} s (RSS +{st['loaded_rss_mb']:.0f} MB); "
        f"file {st['file_mb']:.1f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument(
        "--baseline-max",
        type=int,
        default=100_000,
        help="largest size at which the rebuild-per-query baseline runs",
    )
    parser.add_argument(
        "--baseline-budget-s",
        type=int,
        default=60,
        help="rough seconds of baseline queries per size",
    )
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("results") / "memory_ops.json"
    )
    args = parser.parse_args()
    results = run(args)
    render(results, Console(width=120))
    save(args.out, results, args)


if __name__ == "__main__":
    main()
