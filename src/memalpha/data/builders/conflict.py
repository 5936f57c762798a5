"""Conflict-resolution builder: the synthetic overwrite task (single-hop attribute changes and
multi-hop employer changes, gold = newest value) embedded in real text: the distractor share
of the filler is SQuAD sentences from the split's own articles instead of synthetic facts."""

from __future__ import annotations

import json
import random
from pathlib import Path

from memalpha.data.builders.config import BuildConfig
from memalpha.data.chunking import split_sentences
from memalpha.data.instance import Instance
from memalpha.data.splits import split_of
from memalpha.data.synthetic import generate_cr
from memalpha.tokens import TokenCounter


def build_conflict(cfg: BuildConfig, data_dir: Path, counter: TokenCounter) -> list[Instance]:
    raw = json.loads((data_dir / "squad-v1.1" / "dev-v1.1.json").read_text("utf-8"))
    articles = [a for a in raw["data"] if split_of(a["title"]) == cfg.split]
    sentences = [
        s for a in articles for p in a["paragraphs"] for s in split_sentences(p["context"])
    ]
    rng = random.Random(f"conflict/{cfg.split}/{cfg.seed}")
    out = []
    for index in range(cfg.instances):
        inst = generate_cr(cfg, counter, index, rng, distractor=lambda: rng.choice(sentences))
        out.append(
            inst.model_copy(
                update={
                    "metadata": {
                        **inst.metadata,
                        "synthetic": False,
                        "documents": sorted(a["title"] for a in articles),
                    }
                }
            )
        )
    return out
