"""Memorizing throughput of the SmolLM2 writer: batched lock-step generation vs one chunk at
a time (local transformers backend), and through an OpenAI-compatible HTTP server
(`transformers serve` on 127.0.0.1, started here); the rule writer for reference.

    python benchmarks/agent_throughput.py [--instances 8] [--max-new-tokens 64]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from memalpha.agent import RuleWriterLLM, WriterConfig, build_agent
from memalpha.data import BuildConfig, build
from memalpha.llm import FORMATS
from memalpha.llm.protocol import SamplingParams
from memalpha.llm.registry import ModelConfig, make_llm, resolve_folder
from memalpha.llm.transformers_server import transformers_server
from memalpha.memory import Memory, MemoryConfig
from memalpha.tokens import make_token_counter
from report import save


def run(llm, instances, sampling, counter, *, lock_step: bool, count_tokens) -> dict:
    agent = build_agent(WriterConfig(max_new_tokens=sampling.max_new_tokens), counter)
    memories = [Memory(MemoryConfig(), counter) for _ in instances]
    t = time.perf_counter()
    if lock_step:
        episodes = agent.memorize_many(llm, sampling, memories, [i.chunks for i in instances])
    else:
        episodes = [
            agent.memorize(llm, sampling, m, i.chunks)
            for m, i in zip(memories, instances, strict=True)
        ]
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
    with transformers_server(folder) as base_url:
        http_cfg = ModelConfig(
            backend="openai", model=str(folder), base_url=base_url, concurrency=args.instances
        )
        with make_llm(http_cfg) as llm:
            by_text = lambda g: len(tok(g.text, add_special_tokens=False).input_ids)  # noqa: E731
            rows["HTTP (transformers serve), concurrent"] = run(
                llm, instances, sampling, counter, lock_step=True, count_tokens=by_text
            )
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
    save(args.out, {"rows": rows}, args)


if __name__ == "__main__":
    main()
