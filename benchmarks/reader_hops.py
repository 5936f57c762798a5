"""Whether the reader, shown both facts a multi-hop conflict question needs, joins them.

A multi-hop conflict question ("In which city is the company that X works for now
headquartered?") needs two entries: where X works now, and where that company is headquartered.
Over the final memories an eval kept, this asks for each conflict question of the methods named:
were the entries the reader was shown (BM25 top-k plus core, as in the eval) holding the
*bridge*, a headquarters sentence of a company the memory says X works at; and the eval's score
with and without it. Why: the reader answers an overwritten single-hop fact almost always and an
overwritten multi-hop one rarely (`fate_answers.py --by-qtype`); this says whether retrieval or
the reader's reasoning drops the second hop (RESULTS.md, "What the reader can answer").

`--second-pass` also asks each question again with the entries BM25 ranks for the question plus
the eval's answer to it (the first hop's company then names the bridge), a two-round retrieval
in the manner of iterative retrieval-augmented readers, and scores that answer too.

    python benchmarks/reader_hops.py --eval runs/eval-select-c128-idafter-sparse-wide16-keepfact \\
        --method rule-writer --method wide16-keepfact-s1-step4 --second-pass \\
        --out benchmarks/results/reader_hops_keepfact.json
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fate_answers import run_rows
from memalpha import metrics
from memalpha.config import load_config
from memalpha.data.sources import SOURCES
from memalpha.data.synthetic import COMPANIES
from memalpha.eval import EvalConfig
from memalpha.eval.reader import EvalReader
from memalpha.eval.runner import read_memories
from memalpha.llm import pin_threads
from memalpha.memory import Memory, MemoryConfig
from memalpha.memory.export import snapshot_from_dict
from memalpha.reader import Question, query_prompt
from memalpha.tokens import make_token_counter
from report import save

BRIDGE = "{company} is headquartered in"


def subject(question: str) -> str | None:
    """The person a multi-hop conflict question asks about (None: another question)."""
    _, found, tail = question.partition("the company that ")
    return tail.partition(" works")[0] if found else None


def bridge_shown(question: str, shown: list[str]) -> bool:
    """Whether `shown` (the texts the reader saw) holds a headquarters sentence of a company
    that a shown entry naming the question's person names: both hops in view."""
    person = subject(question)
    about = [t for t in shown if person and person in t]
    companies = {c for t in about for c in COMPANIES if c in t}
    return any(BRIDGE.format(company=c) in t for c in companies for t in shown)


def asked(row: dict, memories: dict, configs: dict[str, MemoryConfig], counter) -> Question:
    """The question of an eval row, asked of the memory its method kept, under that method's
    memory config (which lists the reader searches), as the eval asked it."""
    memory = Memory(configs[row["method"]], counter)
    memory.restore(snapshot_from_dict(memories[(row["method"], row["scale"], row["instance_id"])]))
    return Question(memory, row["question"], query_prompt(row["data_source"]))


def shown_texts(reader: EvalReader, question: Question) -> list[str]:
    """Core and the entries the reader is shown for `question`, as in the eval."""
    _, evidence = reader.memory_reader.prompt(question)
    core = [question.memory.core] if question.memory.core else []
    return core + [e.content for e in evidence]


def second_answers(reader: EvalReader, rows: list[dict], questions: list[Question]) -> list[str]:
    """Each question answered again from the entries BM25 ranks for it plus the eval's answer."""
    prompts = []
    for row, q in zip(rows, questions, strict=True):
        widened = Question(q.memory, f"{q.text} {row['prediction']}", q.query_prompt)
        messages, _ = reader.memory_reader.prompt(widened)
        messages[-1] = {"role": "user", "content": q.user_message}  # the bare question
        prompts.append(messages)
    return [g.text.strip() for g in reader.llm.generate(prompts, reader.sampling)]


def tally(rows: list[dict]) -> list[dict]:
    """Per (method, question type): questions, eval score, bridge shown and the score then,
    and the second pass's score where it ran."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        groups[r["method"], r["qtype"]].append(r)
    out = []
    for (method, qtype), rs in sorted(groups.items()):
        with_bridge = [r for r in rs if r["bridge_shown"]]
        cell = {"method": method, "qtype": qtype, "questions": len(rs)}
        cell["score"] = sum(r["score"] for r in rs) / len(rs)
        cell["bridge_shown"] = len(with_bridge)
        cell["score_bridge_shown"] = (
            sum(r["score"] for r in with_bridge) / len(with_bridge) if with_bridge else None
        )
        if "second_score" in rs[0]:
            cell["second_pass_score"] = sum(r["second_score"] for r in rs) / len(rs)
        out.append(cell)
    return out


def print_table(cells: list[dict]) -> None:
    table = Table(title="Conflict questions: the bridge in the reader's view, and its answers")
    heads = ("method", "qtype", "questions", "score", "bridge shown", "score then", "2nd pass")
    for head in heads:
        table.add_column(head, justify="left" if head in heads[:2] else "right")
    for c in cells:
        then = c["score_bridge_shown"]
        table.add_row(
            c["method"],
            c["qtype"],
            str(c["questions"]),
            f"{c['score']:.2f}",
            str(c["bridge_shown"]) if c["qtype"] == "multi_hop" else "–",
            f"{then:.2f}" if then is not None and c["qtype"] == "multi_hop" else "–",
            f"{c['second_pass_score']:.2f}" if "second_pass_score" in c else "–",
        )
    Console(width=140).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=Path, required=True, help="a memalpha eval run")
    parser.add_argument("--method", action="append", required=True, help="eval method")
    parser.add_argument("--second-pass", action="store_true", help="also ask with 2 rounds")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("results") / "reader_hops.json"
    )
    args = parser.parse_args()
    cfg = load_config(EvalConfig, args.eval / "config.yaml")
    memories = read_memories(args.eval)
    rows = [
        r
        for r in run_rows(args.eval, by_qtype=True)
        if r["method"] in args.method and r.get("fates") and r["scale"] == 1
    ]
    if missing := sorted(set(args.method) - {r["method"] for r in rows}):
        raise SystemExit(f"{args.eval} has no conflict answers with fates for {missing}")
    pin_threads(cfg.threads)
    counter = make_token_counter()
    reader = EvalReader(cfg.reader, counter, cfg.reader_max_new_tokens)
    configs = {m.name: m.writer.memory for m in cfg.methods if m.name in args.method}
    questions = [asked(r, memories, configs, counter) for r in rows]
    for r, q in zip(rows, questions, strict=True):
        r["bridge_shown"] = bridge_shown(r["question"], shown_texts(reader, q))
    if args.second_pass:
        start = time.perf_counter()
        for r, answer in zip(rows, second_answers(reader, rows, questions), strict=True):
            metric = SOURCES[r["data_source"]].metric
            r["second_answer"] = answer
            r["second_score"] = metrics.score(metric, answer, r["gold"])
        print(f"second pass: {len(rows)} questions in {time.perf_counter() - start:.0f} s")
    reader.close()
    cells = tally(rows)
    print_table(cells)
    keep = ("method", "instance_id", "question_id", "qtype", "fates", "score", "bridge_shown")
    answers = [{k: r[k] for k in (*keep, "second_answer", "second_score") if k in r} for r in rows]
    save(args.out, {"cells": cells, "answers": answers}, args)


if __name__ == "__main__":
    main()
