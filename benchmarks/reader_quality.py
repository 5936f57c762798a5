"""How the extractive reader and the LLM readers (SmolLM2-135M, Qwen2.5-Coder-0.5B, both from
PyPI, bf16 where the CPU has it) score the same memories: the rule writer memorizes SQuAD and
TREC-coarse test instances from ../shared/data, then every reader answers every question from
those memories (the published QA prompt, greedy, batched) with the source's metric.

    python benchmarks/reader_quality.py [--instances 3] [--questions 20]
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
from memalpha.llm import FORMATS
from memalpha.llm.protocol import SamplingParams
from memalpha.llm.registry import ModelConfig, make_llm
from memalpha.memory import Memory, MemoryConfig
from memalpha.metrics import score
from memalpha.reader import ExtractiveReader, Question, RagReader, query_prompt
from memalpha.tokens import make_token_counter
from report import save

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--k", type=int, default=5, help="entries per list for both readers")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("results") / "reader_quality.json"
    )
    args = parser.parse_args()
    counter = make_token_counter()
    writer_cfg = WriterConfig(max_new_tokens=512)
    writer, rule = build_agent(writer_cfg, counter), RuleWriterLLM(FORMATS["hermes"])
    rows = []
    sampling = SamplingParams(max_new_tokens=48)
    with (
        make_llm(ModelConfig(batch_size=4)) as smol,
        make_llm(ModelConfig(model="qwen2.5-coder-0.5b-instruct", batch_size=4)) as qwen,
    ):
        readers = {
            "extractive": ExtractiveReader(k=args.k),
            "smollm2-135m (RAG)": RagReader(smol, counter.count, k=args.k, sampling=sampling),
            "qwen2.5-coder-0.5b (RAG)": RagReader(qwen, counter.count, k=args.k, sampling=sampling),
        }
        for source in ("squad", "trec_coarse"):
            instances = build(
                BuildConfig(
                    source=source,
                    split="test",
                    instances=args.instances,
                    max_tokens=4000,
                    chunk_tokens=1024,
                    questions=args.questions,
                    data_dir=args.data,
                ),
                counter,
            )
            questions, golds = [], []
            for inst in instances:
                memory = Memory(MemoryConfig(), counter)
                writer.memorize(rule, writer_cfg.sampling(), memory, inst.chunks)
                questions += [
                    Question(memory, q.question, query_prompt(source)) for q in inst.questions
                ]
                golds += [(inst.metric, q.answers) for q in inst.questions]
            for name, reader in readers.items():
                t = time.perf_counter()
                answers = reader.answer(questions)
                scores = [score(m, a.text, g) for a, (m, g) in zip(answers, golds, strict=True)]
                rows.append(
                    {
                        "source": source,
                        "reader": name,
                        "questions": len(scores),
                        "score": statistics.fmean(scores),
                        "seconds": time.perf_counter() - t,
                        "seconds_per_question": (time.perf_counter() - t) / len(scores),
                    }
                )
    table = Table(title=f"rule-writer memories, both readers, k={args.k} per list")
    for col in ("source", "reader", "questions", "score", "seconds", "s/question"):
        table.add_column(col, justify="left" if col in ("source", "reader") else "right")
    for r in rows:
        table.add_row(
            r["source"],
            r["reader"],
            str(r["questions"]),
            f"{r['score']:.3f}",
            f"{r['seconds']:.1f}",
            f"{r['seconds_per_question']:.2f}",
        )
    Console(width=120).print(table)
    save(args.out, {"rows": rows}, args)


if __name__ == "__main__":
    main()
