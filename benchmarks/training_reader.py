"""What the selective recipe's training reward can see: the QA score the training reader
(`reader` of configs/train/cpu-smollm2-select.yaml, extractive) gives each question type of the
conflict training instances, from the memories of the rule writer (keeps old and new values)
and of the selective teacher (overwrites), both greedy with the recipe's view. Scored three
ways: stale values scored 0 (`stale_credit: 0`), ignored (`stale_credit: 1`, published), and
conflict questions scored by what the memory holds of their changes (`cr_score: fate`). A
question type that scores 0 from the teacher's memories carries no training signal.

    python benchmarks/training_reader.py [--out benchmarks/results/training_reader.json]
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from memalpha.agent import RuleWriterLLM, WriterConfig, build_agent
from memalpha.config import load_config
from memalpha.llm import FORMATS
from memalpha.reader import build_reader
from memalpha.rl.config import TrainConfig
from memalpha.rl.parts import load_instances
from memalpha.rollout import Scoring, rollout, score_episodes
from memalpha.tokens import make_token_counter
from report import save

RECIPE = Path(__file__).parents[1] / "configs" / "train" / "cpu-smollm2-select.yaml"
CONFLICT = ("synth_cr", "conflict")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("results") / "training_reader.json"
    )
    args = parser.parse_args()
    cfg = load_config(TrainConfig, RECIPE)
    counter = make_token_counter(cfg.memory.tokenizer)
    built = load_instances(cfg.data.train, cfg.data.train_files, counter)
    instances = [i for i in built if i.data_source in CONFLICT]
    writer = WriterConfig(
        prompt=cfg.prompt, max_new_tokens=cfg.rollout.max_new_tokens, memory=cfg.memory
    )
    agent = build_agent(writer, counter)
    reader, _ = build_reader(cfg.reader, counter)
    variants = {
        "stale_credit 0": {"stale_credit": 0.0, "cr_score": "reader"},
        "stale_credit 1": {"stale_credit": 1.0, "cr_score": "reader"},
        "cr_score fate": {"cr_score": "fate"},
    }
    scorings = {
        name: Scoring(reader, None, cfg.reward.model_copy(update=knobs), counter)
        for name, knobs in variants.items()
    }
    rows = []
    for name, selective in (("rule-writer", False), ("selective-teacher", True)):
        llm = RuleWriterLLM(FORMATS[cfg.format], selective=selective)
        done = rollout(
            agent, llm, writer.sampling(), instances, 1, cfg.memory, next(iter(scorings.values()))
        )
        rows += _rows_by_type(name, done.trajectories, scorings)
    table = Table(title=f"Training reward on {len(instances)} conflict training instances")
    for head in ["writer", "question type", "questions", *(f"QA score, {v}" for v in variants)]:
        table.add_column(head)
    for r in rows:
        scores = [f"{r['scores'][v]:.3f}" for v in variants]
        table.add_row(r["writer"], r["qtype"], str(r["questions"]), *scores)
    Console(width=120).print(table)
    save(args.out, {"rows": rows, "variants": variants}, args)


def _rows_by_type(writer: str, trajectories: list, scorings: dict[str, Scoring]) -> list[dict]:
    """Mean QA score per question type of `writer`'s memories under each scoring."""
    by_type: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for name, scoring in scorings.items():
        for t, scored in zip(trajectories, score_episodes(trajectories, scoring), strict=True):
            for qa, score in zip(t.instance.questions, scored.qa_scores, strict=True):
                by_type[qa.qtype or "-"][name].append(score)
    return [
        {
            "writer": writer,
            "qtype": qtype,
            "questions": len(next(iter(scores.values()))),
            "scores": {name: statistics.fmean(v) for name, v in scores.items()},
        }
        for qtype, scores in sorted(by_type.items())
    ]


if __name__ == "__main__":
    main()
