"""Accurate-retrieval builders: SQuAD paragraphs and HotpotQA articles packed into chunks,
their original questions asked after the last chunk (containment metric)."""

from __future__ import annotations

import json
import random
from pathlib import Path

from memalpha.data.builders.config import BuildConfig
from memalpha.data.chunking import pack_indexed
from memalpha.data.instance import QA, Instance, stable_id
from memalpha.data.sources import SOURCES
from memalpha.data.splits import split_of
from memalpha.data.templates import dialogue_chunks
from memalpha.tokens import TokenCounter


def _instance(
    source: str,
    cfg: BuildConfig,
    index: int,
    paragraphs: list[tuple[str, str]],
    qas: list[tuple[list[int], QA]],
    counter: TokenCounter,
    rng: random.Random,
) -> Instance:
    """Pack (doc_key, text) paragraphs into chunks; point each question at its paragraph's chunk."""
    packed = pack_indexed([t for _, t in paragraphs], cfg.chunk_tokens, counter, joiner="\n\n")
    chunk_of = {p: c for c, (_, members) in enumerate(packed) for p in members}
    questions = [
        q.model_copy(update={"evidence_chunks": sorted({chunk_of[p] for p in ps})}) for ps, q in qas
    ]
    docs = sorted({k for k, _ in paragraphs})
    info = SOURCES[source]
    return Instance(
        id=stable_id(source, cfg.split, cfg.seed, index, docs),
        data_source=source,
        competency=info.competency,
        metric=info.metric,
        chunks=dialogue_chunks(["\n\n".join(p) for p, _ in packed], rng),
        questions=questions,
        metadata={"split": cfg.split, "documents": docs},
    )


def build_squad(cfg: BuildConfig, data_dir: Path, counter: TokenCounter) -> list[Instance]:
    """Paragraphs of the split's Wikipedia articles (split by article title)."""
    raw = json.loads((data_dir / "squad-v1.1" / "dev-v1.1.json").read_text("utf-8"))
    pool = [
        (a["title"], pi, p)
        for a in raw["data"]
        if split_of(a["title"]) == cfg.split
        for pi, p in enumerate(a["paragraphs"])
    ]
    rng = random.Random(cfg.seed)
    rng.shuffle(pool)
    out = []
    while pool and len(out) < cfg.instances:
        chosen, used = [], 0
        while pool:
            n = counter.count(pool[-1][2]["context"])
            if chosen and used + n > cfg.max_tokens:
                break
            chosen.append(pool.pop())
            used += n
        qas = [
            (
                [i],
                QA(
                    id=q["id"],
                    question=q["question"],
                    answers=list(dict.fromkeys(a["text"] for a in q["answers"])),
                ),
            )
            for i, (_, _, p) in enumerate(chosen)
            for q in p["qas"]
        ]
        qas = sorted(rng.sample(qas, min(cfg.questions, len(qas))), key=lambda x: x[1].id)
        paragraphs = [(f"{t}#{pi}", p["context"]) for t, pi, p in chosen]
        out.append(_instance("squad", cfg, len(out), paragraphs, qas, counter, rng))
    return out


def build_hotpotqa(cfg: BuildConfig, data_dir: Path, counter: TokenCounter) -> list[Instance]:
    """Multi-hop questions with their 10 articles each; records sharing an article stay in one
    split (grouped by union-find over titles)."""
    raw = json.loads(
        (data_dir / "hotpotqa" / "hotpot_dev_distractor_v1_100.json").read_text("utf-8")
    )
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for r in raw:
        titles = [t for t, _ in r["context"]]
        for t in titles[1:]:
            parent[find(t)] = find(titles[0])
    pool = [r for r in raw if split_of(find(r["context"][0][0])) == cfg.split]
    rng = random.Random(cfg.seed)
    rng.shuffle(pool)
    out = []
    while pool and len(out) < cfg.instances:
        articles: dict[str, str] = {}
        records, used = [], 0
        while pool:
            new = {
                t: f"{t}: {''.join(s).strip()}" for t, s in pool[-1]["context"] if t not in articles
            }
            n = sum(counter.count(v) for v in new.values())
            if records and used + n > cfg.max_tokens:
                break
            records.append(pool.pop())
            articles.update(new)
            used += n
        order = {t: i for i, t in enumerate(articles)}
        qas = [
            (
                [order[t] for t in dict.fromkeys(t for t, _ in r["supporting_facts"])],
                QA(id=r["_id"], question=r["question"], answers=[r["answer"]], qtype=r["type"]),
            )
            for r in records
        ][: cfg.questions]
        out.append(
            _instance(
                "hotpotqa", cfg, len(out), [(t, v) for t, v in articles.items()], qas, counter, rng
            )
        )
    return out
