"""What the selective recipe's training reward can see: the QA score the training reader
(`reader` of configs/train/cpu-smollm2-select.yaml, extractive) gives each question type of the
conflict training instances, from the memories of the rule writer (keeps old and new values)
and of the selective teacher (overwrites), both greedy with the recipe's view. Scored as the
recipe does (its `stale_credit`) and with stale values ignored (1). A question type that scores
0 from the teacher's memories carries no training signal.

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
    scoring = Scoring(reader, None, cfg.reward, counter)
    stale_ignored = cfg.reward.model_copy(update={"stale_credit": 1.0})
    ignore_stale = Scoring(reader, None, stale_ignored, counter)
    rows = []
    for name, selective in (("rule-writer", False), ("selective-teacher", True)):
        llm = RuleWriterLLM(FORMATS[cfg.format], selective=selective)
        done = rollout(agent, llm, writer.sampling(), instances, 1, cfg.memory, scoring)
        ignoring = score_episodes(done.trajectories, ignore_stale)
        by_type: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for t, trained, ignored in zip(done.trajectories, done.scores, ignoring, strict=True):
            pairs = zip(trained.qa_scores, ignored.qa_scores, strict=True)
            for qa, (a, b) in zip(t.instance.questions, pairs, strict=True):
                by_type[qa.qtype or "-"].append((a, b))
        rows += [
            {
                "writer": name,
                "qtype": q,
                "questions": len(v),
                "score": statistics.fmean(a for a, _ in v),
                "score_stale_credit_1": statistics.fmean(b for _, b in v),
            }
            for q, v in sorted(by_type.items())
        ]
    table = Table(title=f"Training reward on {len(instances)} conflict training instances")
    heads = ["writer", "question type", "questions"]
    heads += [f"QA score, stale_credit {cfg.reward.stale_credit:g}", "QA score, stale_credit 1"]
    for head in heads:
        table.add_column(head)
    for r in rows:
        table.add_row(
            r["writer"],
            r["qtype"],
            str(r["questions"]),
            f"{r['score']:.3f}",
            f"{r['score_stale_credit_1']:.3f}",
        )
    Console(width=120).print(table)
    save(args.out, {"rows": rows, "stale_credit": cfg.reward.stale_credit}, args)


if __name__ == "__main__":
    main()
