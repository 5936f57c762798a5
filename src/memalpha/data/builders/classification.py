"""Test-time-learning builders: labelled examples as chunks (`Sentence: …\\nLabel: <int>`),
held-out sentences as questions answered with `\\boxed{<int>}` (boxed-label metric).

Labels are mapped to integers by sorted label name (the mapping is in each instance's
metadata). Every sentence is assigned to a split by a hash of its text; within an instance the
examples and the questions are disjoint.
"""

from __future__ import annotations

import csv
import json
import random
from collections import defaultdict
from pathlib import Path

from memalpha.data.builders.config import BuildConfig
from memalpha.data.chunking import pack
from memalpha.data.instance import QA, Instance, stable_id
from memalpha.data.sources import SOURCES
from memalpha.data.splits import split_of
from memalpha.data.templates import classification_line, dialogue_chunks
from memalpha.tokens import TokenCounter

QUESTION = (
    "Sentence: {text}\nWhat is the label of the above sentence? Put your final answer "
    "as \\boxed{{label}}."
)


def _trec(data_dir: Path, fine: bool) -> list[tuple[str, str]]:
    rows = []
    for name in ("train_5500.label", "TREC_10.label"):
        for line in (data_dir / "trec" / name).read_text("latin-1").splitlines():
            label, _, text = line.partition(" ")
            rows.append((text.strip(), label if fine else label.split(":")[0]))
    return rows


def _banking(data_dir: Path) -> list[tuple[str, str]]:
    rows = []
    for name in ("train.csv", "test.csv"):
        with open(data_dir / "banking77" / name, encoding="utf-8", newline="") as f:
            rows += [(r["text"].strip(), r["category"]) for r in csv.DictReader(f)]
    return rows


def _clinc(data_dir: Path) -> list[tuple[str, str]]:
    raw = json.loads((data_dir / "clinc150" / "data_full.json").read_text("utf-8"))
    return [(t.strip(), label) for part in ("train", "val", "test") for t, label in raw[part]]


def _nlu(data_dir: Path) -> list[tuple[str, str]]:
    rows = []
    for folder in ("trainset", "testset/csv"):
        for path in sorted((data_dir / "nlu-evaluation-data" / "KFold_1" / folder).glob("*.csv")):
            with open(path, encoding="utf-8", newline="") as f:
                rows += [
                    (r["answer_from_anno"].strip(), f"{r['scenario']}_{r['intent']}")
                    for r in csv.DictReader(f, delimiter=";")
                ]
    return rows


LOADERS = {
    "trec_coarse": lambda d: _trec(d, fine=False),
    "trec_fine": lambda d: _trec(d, fine=True),
    "banking77": _banking,
    "clinc150": _clinc,
    "nlu": _nlu,
}


def _round_robin(
    pools: dict[str, list[str]],
    label_id: dict[str, int],
    max_tokens: int,
    counter: TokenCounter,
    rng: random.Random,
) -> list[str]:
    """Labelled lines drawn round robin over shuffled labels (every label appears early),
    until the token budget is spent; consumes the pools."""
    lines, used, order = [], 0, list(pools)
    while any(pools.values()):
        rng.shuffle(order)
        for lab in order:
            if not pools[lab]:
                continue
            line = classification_line(pools[lab].pop(), label_id[lab])
            n = counter.count(line)
            if used + n > max_tokens:
                return lines
            lines.append(line)
            used += n + 1
    return lines


def build_classification(cfg: BuildConfig, data_dir: Path, counter: TokenCounter) -> list[Instance]:
    rows = list(dict.fromkeys((t, lab) for t, lab in LOADERS[cfg.source](data_dir) if t))
    labels = sorted({lab for _, lab in rows})
    label_id = {lab: i for i, lab in enumerate(labels)}
    by_label: dict[str, list[str]] = defaultdict(list)
    for text, lab in rows:
        if split_of(text) == cfg.split:
            by_label[lab].append(text)
    rng = random.Random(cfg.seed)
    out = []
    for index in range(cfg.instances):
        pools = {lab: rng.sample(ts, len(ts)) for lab, ts in sorted(by_label.items())}
        per_label = -(-cfg.questions // max(1, len(pools)))  # held-out questions per label
        held = {
            lab: [ts.pop() for _ in range(min(per_label, len(ts) - 1))] for lab, ts in pools.items()
        }
        lines = _round_robin(pools, label_id, cfg.max_tokens, counter, rng)
        seen = {int(ln.rsplit("Label: ", 1)[1]) for ln in lines}
        asked = [(t, lab) for lab, ts in held.items() if label_id[lab] in seen for t in ts]
        asked = sorted(rng.sample(asked, min(cfg.questions, len(asked))))
        questions = [
            QA(
                id=f"q{i}",
                question=QUESTION.format(text=t),
                answers=[str(label_id[lab])],
                qtype="classification",
            )
            for i, (t, lab) in enumerate(asked)
        ]
        info = SOURCES[cfg.source]
        texts = [ln.split("\n", 1)[0][len("Sentence: ") :] for ln in lines]
        out.append(
            Instance(
                id=stable_id(cfg.source, cfg.split, cfg.seed, index),
                data_source=cfg.source,
                competency=info.competency,
                metric=info.metric,
                chunks=dialogue_chunks(
                    pack(lines, cfg.chunk_tokens, counter, joiner="\n"), rng, classification=True
                ),
                questions=questions,
                metadata={
                    "split": cfg.split,
                    "labels": labels,
                    "documents": sorted(texts + [t for t, _ in asked]),
                },
            )
        )
    return out
