"""Load on `memalpha serve`: N concurrent clients, each with its own session, memorize chunks,
ask questions and search entries for a fixed time. Reports throughput, p50/p99 latency per
operation, errors, and lost writes: after the run the server is killed (SIGKILL) and restarted
on the same store, and every session must hold exactly the entries its memorize responses
acknowledged.

    python benchmarks/server_load.py --clients 32 --seconds 60                 # rule writer
    python benchmarks/server_load.py --clients 4 --seconds 60 --writer llm \
        --model runs/grpo-smollm2/checkpoints/step_000015/policy          # a trained SmolLM2
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from memalpha.server.process import serve_subprocess
from report import save

NAMES = ["Alice", "Bob", "Chen", "Dara", "Emeka", "Farah", "Goran", "Hana"]
CITIES = ["Paris", "Lyon", "Osaka", "Lima", "Oslo", "Accra", "Quito", "Hanoi"]
OPS = ("memorize", "memorize", "ask", "search")  # each client's loop


def chunk(client: int, n: int, rng: random.Random) -> str:
    name, city = rng.choice(NAMES), rng.choice(CITIES)
    return (
        f"[Note {n} from client {client}] {name} moved to {city} in {1990 + n % 30}. "
        f"{name} keeps a notebook numbered {client * 100_000 + n}."
    )


async def client(url: str, i: int, until: float, stats: dict, headers: dict) -> None:
    rng = random.Random(i)
    session = f"load{i}"
    acked: set[tuple[str, str]] = set()
    async with httpx.AsyncClient(base_url=url, timeout=120, headers=headers) as c:
        await c.post("/sessions", json={"name": session})
        n = 0
        while time.monotonic() < until:
            n += 1
            op = OPS[n % len(OPS)]
            start = time.perf_counter()
            try:
                if op == "memorize":
                    r = await c.post(
                        f"/sessions/{session}/memorize", json={"chunks": [chunk(i, n, rng)]}
                    )
                elif op == "ask":
                    r = await c.post(
                        f"/sessions/{session}/ask",
                        json={"questions": [f"Where did {rng.choice(NAMES)} move?"]},
                    )
                else:
                    r = await c.post(
                        f"/sessions/{session}/search",
                        json={"query": f"{rng.choice(NAMES)} {rng.choice(CITIES)}", "k": 5},
                    )
            except httpx.HTTPError as exc:
                stats["errors"].append(f"{op}: {exc!r}")
                continue
            stats[op].append(time.perf_counter() - start)
            if r.status_code != 200:
                stats["errors"].append(f"{op}: {r.status_code} {r.text[:200]}")
            elif op == "memorize":
                for d in r.json()["chunks"][0]["diff"]:
                    if d["component"] == "core":
                        continue
                    key = (d["component"], d["id"])
                    (acked.add if d["op"] != "delete" else acked.discard)(key)
    stats["acked"][session] = acked


async def run(url: str, clients: int, seconds: float, headers: dict) -> dict:
    stats: dict = {"memorize": [], "ask": [], "search": [], "errors": [], "acked": {}}
    until = time.monotonic() + seconds
    start = time.monotonic()
    await asyncio.gather(*(client(url, i, until, stats, headers) for i in range(clients)))
    stats["elapsed"] = time.monotonic() - start
    return stats


def lost_writes(url: str, acked: dict[str, set]) -> int:
    lost = 0
    with httpx.Client(base_url=url, timeout=60) as c:
        for session, keys in acked.items():
            memory = c.get(f"/sessions/{session}/memory").json()
            stored = {(comp, e["id"]) for comp in ("semantic", "episodic") for e in memory[comp]}
            lost += len(keys - stored) + len(stored - keys)
    return lost


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--writer", choices=["rule", "llm"], default="rule")
    p.add_argument(
        "--model",
        default="smollm2-135m-instruct",
        help="The LLM writer (a registry name or an HF folder, e.g. a trained policy).",
    )
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    out = args.out or Path(f"benchmarks/results/server_load_{args.writer}.json")
    extra = (
        [
            "--set",
            "writer.kind=llm",
            "--set",
            f"writer.model.model={args.model}",
            "--set",
            "writer.max_new_tokens=192",
            "--set",
            "writer.prompt=compact",
            "--set",
            "backend_timeout_s=600",
        ]
        if args.writer == "llm"
        else []
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "load.db"
        with serve_subprocess(store, *extra) as url:
            stats = asyncio.run(run(url, args.clients, args.seconds, {}))
        # the server was SIGKILLed; a new one must find every acknowledged entry
        with serve_subprocess(store, *extra) as url:
            lost = lost_writes(url, stats["acked"])
    ops = len(stats["memorize"]) + len(stats["ask"]) + len(stats["search"])
    row = {
        "writer": args.writer if args.writer == "rule" else args.model,
        "clients": args.clients,
        "seconds": round(stats["elapsed"], 1),
        "ops_per_s": ops / stats["elapsed"],
        "memorize_per_s": len(stats["memorize"]) / stats["elapsed"],
        "memorize_p50_ms": 1000 * pct(stats["memorize"], 50),
        "memorize_p99_ms": 1000 * pct(stats["memorize"], 99),
        "ask_p50_ms": 1000 * pct(stats["ask"], 50),
        "ask_p99_ms": 1000 * pct(stats["ask"], 99),
        "search_p50_ms": 1000 * pct(stats["search"], 50),
        "search_p99_ms": 1000 * pct(stats["search"], 99),
        "errors": len(stats["errors"]),
        "acknowledged_entries": sum(len(v) for v in stats["acked"].values()),
        "lost_writes": lost,
    }
    table = Table(title=f"memalpha serve under load ({args.writer} writer)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in row.items():
        table.add_row(k, f"{v:.1f}" if isinstance(v, float) else str(v))
    Console().print(table)
    for e in stats["errors"][:5]:
        Console().print(f"[red]{e}")
    save(out, {"rows": [row], "first_errors": stats["errors"][:20]}, args)


if __name__ == "__main__":
    main()
