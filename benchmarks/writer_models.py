"""Small models as memory writers without a warm start: do they call the tools validly, how
fast, and what do their memories answer? SmolLM2-135M-Instruct and Qwen2.5-Coder-0.5B-Instruct
(both from PyPI, bf16 where the CPU has it, greedy, Hermes tool calls) against the rule writer,
on the same test instances, every memory answered by the Qwen reader and the extractive one.

    python benchmarks/writer_models.py [--instances 3] [--prompt compact]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from memalpha.agent import RuleWriterLLM, WriterConfig, build_agent
from memalpha.data import BuildConfig, build
from memalpha.llm import FORMATS, ModelConfig, SamplingParams, make_llm
from memalpha.memory import Memory
from memalpha.metrics import score
from memalpha.reader import ExtractiveReader, Question, RagReader, query_prompt
from memalpha.tokens import make_token_counter
from report import save

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
QWEN = "qwen2.5-coder-0.5b-instruct"
SOURCES = ("squad", "trec_coarse")


def write(writer_llm, cfg: WriterConfig, instances, counter) -> tuple[list[Memory], dict]:
    """Every instance memorized by one writer; tool-call and time statistics."""
    agent = build_agent(cfg, counter)
    memories = [Memory(cfg.memory, counter) for _ in instances]
    t = time.perf_counter()
    episodes = agent.memorize_many(
        writer_llm, cfg.sampling(), memories, [i.chunks for i in instances]
    )
    seconds = time.perf_counter() - t
    steps = [s for e in episodes for s in e.steps]
    calls = [ok for s in steps for ok in s.successes]
    return memories, {
        "chunks": len(steps),
        "chunks_with_calls": sum(bool(s.results) for s in steps) / len(steps),
        "calls_per_chunk": len(calls) / len(steps),
        "call_success": sum(calls) / len(calls) if calls else 0.0,
        "seconds_per_chunk": seconds / len(steps),
        "generated_tokens_per_chunk": statistics.fmean(len(s.generation.token_ids) for s in steps),
        "memory_tokens": statistics.fmean(m.total_tokens for m in memories),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=3, help="per source")
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--prompt", choices=("compact", "published"), default="compact")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("results") / "writer_models.json"
    )
    args = parser.parse_args()
    counter = make_token_counter()
    cfg = WriterConfig(prompt=args.prompt, max_new_tokens=args.max_new_tokens)
    instances = {
        source: build(
            BuildConfig(
                source=source,
                split="test",
                instances=args.instances,
                max_tokens=512,
                chunk_tokens=128,
                questions=args.questions,
                data_dir=args.data,
            ),
            counter,
        )
        for source in SOURCES
    }
    rows = []
    with make_llm(ModelConfig(model=QWEN, batch_size=8)) as qwen:
        readers = {
            "qwen": RagReader(
                qwen, counter.count, k=10, sampling=SamplingParams(max_new_tokens=48)
            ),
            "extractive": ExtractiveReader(k=10),
        }
        writers = {
            "rule writer": None,
            "smollm2-135m": "smollm2-135m-instruct",
            "qwen2.5-0.5b": QWEN,
        }
        for name, model in writers.items():
            llm = (
                RuleWriterLLM(FORMATS[cfg.format])
                if model is None
                else qwen
                if model == QWEN
                else make_llm(ModelConfig(model=model, batch_size=8))
            )
            for source, insts in instances.items():
                memories, row = write(llm, cfg, insts, counter)
                questions = [
                    (Question(m, q.question, query_prompt(source)), i.metric, q.answers)
                    for m, i in zip(memories, insts, strict=True)
                    for q in i.questions
                ]
                for reader_name, reader in readers.items():
                    answers = reader.answer([q for q, _, _ in questions])
                    row[f"qa_{reader_name}"] = statistics.fmean(
                        score(metric, a.text, gold)
                        for a, (_, metric, gold) in zip(answers, questions, strict=True)
                    )
                rows.append({"writer": name, "source": source, "questions": len(questions), **row})
                print(rows[-1], flush=True)
            if model not in (None, QWEN):
                llm.close()
    table = Table(title=f"writers without a warm start ({args.prompt} prompt, greedy)")
    cols = ("writer", "source", "chunks", "with calls", "calls/chunk", "call success",
            "s/chunk", "memory tokens", "QA qwen", "QA extractive")  # fmt: skip
    for col in cols:
        table.add_column(col, justify="left" if col in ("writer", "source") else "right")
    for r in rows:
        table.add_row(
            r["writer"],
            r["source"],
            str(r["chunks"]),
            f"{r['chunks_with_calls']:.2f}",
            f"{r['calls_per_chunk']:.1f}",
            f"{r['call_success']:.2f}",
            f"{r['seconds_per_chunk']:.2f}",
            f"{r['memory_tokens']:.0f}",
            f"{r['qa_qwen']:.3f}",
            f"{r['qa_extractive']:.3f}",
        )
    Console(width=140).print(table)
    save(args.out, {"rows": rows}, args)


if __name__ == "__main__":
    main()
