"""Memorizing throughput of the SmolLM2 writer: batched lock-step generation vs one chunk at
a time (local transformers backend), and through an OpenAI-compatible HTTP server
(`transformers serve` on 127.0.0.1, started here); the rule writer for reference.

    python benchmarks/agent_throughput.py [--instances 8] [--max-new-tokens 64]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from memalpha.agent import MemoryAgent, RuleWriterLLM
from memalpha.data import BuildConfig, build
from memalpha.llm import FORMATS
from memalpha.llm.protocol import SamplingParams
from memalpha.llm.registry import ModelConfig, make_llm, resolve_folder
from memalpha.memory import Memory, MemoryConfig, ToolExecutor, ToolRegistry, ViewConfig
from memalpha.tokens import make_token_counter


def run(llm, instances, sampling, counter, *, lock_step: bool, count_tokens) -> dict:
    agent = MemoryAgent(
        llm, FORMATS["hermes"], ToolExecutor(ToolRegistry()), ViewConfig(), sampling, counter.count
    )
    memories = [Memory(MemoryConfig(), counter) for _ in instances]
    t = time.perf_counter()
    if lock_step:
        episodes = agent.memorize_many(memories, [i.chunks for i in instances])
    else:
        episodes = [agent.memorize(m, i.chunks) for m, i in zip(memories, instances, strict=True)]
    seconds = time.perf_counter() - t
    steps = [s for e in episodes for s in e.steps]
    tokens = sum(count_tokens(s.generation) for s in steps)
    return {
        "chunks": len(steps),
        "seconds": seconds,
        "chunks_per_s": len(steps) / seconds,
        "gen_tokens": tokens,
        "tokens_per_s": tokens / seconds,
        "prompt_tokens": sum(s.generation.prompt_tokens for s in steps),
    }


def serve(folder: Path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        ["transformers", "serve", str(folder), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    for _ in range(240):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc, f"http://127.0.0.1:{port}/v1"
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("transformers serve did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=8)
    parser.add_argument("--chunk-tokens", type=int, default=256)
    parser.add_argument("--max-tokens", type=int, default=768, help="input tokens per instance")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("results") / "agent_throughput.json"
    )
    args = parser.parse_args()
    counter = make_token_counter()
    instances = build(
        BuildConfig(
            source="synth_ar",
            instances=args.instances,
            facts=6,
            max_tokens=args.max_tokens,
            chunk_tokens=args.chunk_tokens,
        ),
        counter,
    )
    sampling = SamplingParams(temperature=1.0, max_new_tokens=args.max_new_tokens, seed=0)
    cfg = ModelConfig(batch_size=args.instances)
    folder = resolve_folder(cfg)
    rows = {}
    with make_llm(cfg) as llm:
        tok = llm.tokenizer
        by_ids = lambda g: len(g.token_ids)  # noqa: E731
        rows["local, batched lock-step"] = run(
            llm, instances, sampling, counter, lock_step=True, count_tokens=by_ids
        )
        rows["local, one chunk at a time"] = run(
            llm, instances, sampling, counter, lock_step=False, count_tokens=by_ids
        )
    proc, base_url = serve(folder)
    try:
        http_cfg = ModelConfig(
            backend="openai", model=str(folder), base_url=base_url, concurrency=args.instances
        )
        with make_llm(http_cfg) as llm:
            by_text = lambda g: len(tok(g.text, add_special_tokens=False).input_ids)  # noqa: E731
            rows["HTTP (transformers serve), concurrent"] = run(
                llm, instances, sampling, counter, lock_step=True, count_tokens=by_text
            )
    finally:
        proc.kill()
    rows["rule writer (no LLM)"] = run(
        RuleWriterLLM(FORMATS["hermes"]),
        instances,
        sampling,
        counter,
        lock_step=True,
        count_tokens=lambda g: 0,
    )
    table = Table(
        title=f"memorizing {args.instances} instances × "
        f"{len(instances[0].chunks)} chunks, ≤{args.max_new_tokens} new tokens"
    )
    for col in (
        "writer",
        "chunks",
        "seconds",
        "chunks/s",
        "prompt tokens",
        "gen. tokens",
        "(prompt+gen.) tokens/s",
    ):
        table.add_column(col, justify="left" if col == "writer" else "right")
    for name, r in rows.items():
        table.add_row(
            name,
            str(r["chunks"]),
            f"{r['seconds']:.1f}",
            f"{r['chunks_per_s']:.2f}",
            f"{r['prompt_tokens']:,}",
            f"{r['gen_tokens']:,}",
            f"{(r['prompt_tokens'] + r['gen_tokens']) / r['seconds']:.0f}"
            if r["gen_tokens"]
            else "-",
        )
    Console(width=120).print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "rows": rows,
                "config": {k: str(v) for k, v in vars(args).items()},
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            },
            indent=1,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
