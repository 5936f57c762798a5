"""Does greedy writing depend on the CPU thread count, and does pinning the count in-process
(`threads:` in a run's config, `memalpha.llm.pin_threads`) write what a process started under
OMP_NUM_THREADS writes?

Each setting runs in a fresh process: `env` starts it with OMP_NUM_THREADS=N, `pin` starts it
without and calls `pin_threads(N)` before the policy loads. The policy writes held-out conflict
instances greedily, as the evaluation does (its folder's writer.json, batched over instances);
every generation's token ids are compared with the first setting's. The baseline is the first
`--settings` entry, in the same run.

    python benchmarks/thread_numerics.py --policy runs/sft-smollm2-select-idafter/policy \
        [--instances 2] [--settings env1,pin1,env2,pin2] \
        [--out benchmarks/results/thread_numerics.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from memalpha.agent import build_agent, policy_writer
from memalpha.data import BuildConfig, build
from memalpha.llm import ModelConfig, make_llm, pin_threads
from memalpha.memory import Memory
from memalpha.tokens import make_token_counter
from report import save

SOURCES = ("synth_cr", "conflict")


def write(policy: str, instances_per_source: int) -> dict:
    """Greedy writing of the held-out conflict instances: each step's generated ids and each
    memory's final contents."""
    cfg = policy_writer(policy)
    counter = make_token_counter(cfg.memory.tokenizer)
    spec = dict(split="test", seed=0, max_tokens=512, chunk_tokens=128, questions=6, facts=6)
    instances = [
        inst
        for source in SOURCES
        for inst in build(
            BuildConfig(source=source, instances=instances_per_source, **spec), counter
        )
    ]
    memories = [Memory(cfg.memory, counter) for _ in instances]
    llm = make_llm(ModelConfig(model=policy, batch_size=len(instances)))
    started = time.perf_counter()
    try:
        episodes = build_agent(cfg, counter).memorize_many(
            llm, cfg.sampling(), memories, [i.chunks for i in instances]
        )
    finally:
        llm.close()
    return {
        "seconds": time.perf_counter() - started,
        "steps": [[list(s.generation.token_ids) for s in e.steps] for e in episodes],
        "memories": [json.dumps(m.contents(), sort_keys=True, default=str) for m in memories],
    }


def child(args: argparse.Namespace) -> None:
    threads = pin_threads(args.threads if args.how == "pin" else None)
    result = write(args.policy, args.instances) | {"threads_in_use": threads}
    Path(args.child).write_text(json.dumps(result), "utf-8")


def run_setting(setting: str, args: argparse.Namespace) -> dict:
    """One setting (`env2`, `pin1`, ...) in a fresh process."""
    how, threads = setting[:-1], int(setting[-1])
    if how not in ("env", "pin"):
        raise SystemExit(f"--settings: {setting} is not env<N> or pin<N>")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    if how == "env":
        env |= {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        command = [sys.executable, __file__, "--policy", args.policy, "--child", str(out)]
        command += ["--how", how, "--threads", str(threads), "--instances", str(args.instances)]
        subprocess.run(command, env=env, check=True)
        return json.loads(out.read_text("utf-8"))


def compare(base: dict, other: dict) -> dict:
    steps = [
        (a, b)
        for ea, eb in zip(base["steps"], other["steps"], strict=True)
        for a, b in zip(ea, eb, strict=False)
    ]
    return {
        "steps_same": sum(a == b for a, b in steps),
        "steps": len(steps),
        "memories_same": sum(
            a == b for a, b in zip(base["memories"], other["memories"], strict=True)
        ),
        "memories": len(base["memories"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", required=True, help="HF folder of a trained writer")
    parser.add_argument("--instances", type=int, default=2, help="per source")
    parser.add_argument("--settings", default="env1,pin1,env2,pin2")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("results") / "thread_numerics.json"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--how", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    settings = args.settings.split(",")
    results = {s: run_setting(s, args) for s in settings}
    base = results[settings[0]]
    table = Table(title=f"Greedy writing of {args.policy} against {settings[0]}")
    for head in ("setting", "threads in use", "generations same", "memories same", "seconds"):
        table.add_column(head, justify="left" if head == "setting" else "right")
    rows = []
    for s in settings:
        row = {"setting": s, "threads_in_use": results[s]["threads_in_use"]}
        row |= compare(base, results[s]) | {"seconds": results[s]["seconds"]}
        rows.append(row)
        table.add_row(
            s,
            str(row["threads_in_use"]),
            f"{row['steps_same']}/{row['steps']}",
            f"{row['memories_same']}/{row['memories']}",
            f"{row['seconds']:.0f}",
        )
    Console(width=160).print(table)
    save(args.out, {"rows": rows}, args)


if __name__ == "__main__":
    main()
