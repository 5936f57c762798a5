"""Synthetic instances for all four competencies with exact length control.

Each generator plants `facts` question-bearing sentences in a stream of filler sentences and
stops adding filler before the content would pass `max_tokens`, so the chunk content is within
one sentence (≤ ~20 tokens) under the target at any length: the same generator at 1×, 4×, 16×,
64× measures length generalisation. `distractor_ratio` is the share of filler that is a
confusable fact about an entity never asked about (the rest is neutral chatter).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from memalpha.data.builders.config import BuildConfig
from memalpha.data.chunking import pack_indexed
from memalpha.data.instance import QA, Instance, Superseded, stable_id
from memalpha.data.sources import SOURCES
from memalpha.data.templates import book_chunks, classification_line, dialogue_chunks
from memalpha.tokens import TokenCounter

FIRST = (
    "Ada Bruno Carla Dmitri Elena Farid Greta Hiro Ines Jonas Kira Luca Maya Nils Olga "
    "Pavel Quinn Rosa Sami Tara Uma Viktor Wen Ximena Yusuf Zoe"
).split()
LAST = (
    "Abbott Brandt Costa Duarte Eriksen Fischer Garcia Horvat Ivanova Jensen Kowalski Larsen "
    "Moreau Novak Okafor Petrov Quist Rossi Silva Tanaka Ueda Varga Weber Xu Yilmaz Zeller"
).split()
ATTRIBUTES = {
    "favourite colour": "crimson teal amber violet olive indigo coral ivory".split(),
    "home city": "Lisbon Oslo Kyoto Quito Dakar Perth Tallinn Cusco Hanoi Porto".split(),
    "job": "pilot baker surgeon architect librarian welder chemist florist".split(),
    "pet": "parrot tortoise ferret beagle goldfish iguana rabbit hamster".split(),
    "favourite food": "paella ramen goulash pierogi tagine risotto falafel dumplings".split(),
}
COMPANIES = "Arcwell Brightlane Corvex Deltaforge Evermoss Fjordline Gryphos Halcyra".split()
CHATTER = [
    "The afternoon was quiet and nobody was in a hurry.",
    "Someone left a window open and the curtains moved in the breeze.",
    "The kettle whistled twice before anyone noticed it.",
    "It rained briefly, then the sun came back out.",
    "A delivery van stopped outside for a few minutes.",
    "There was a long queue at the bakery that morning.",
    "The radio played an old song that everyone half remembered.",
    "A cat walked slowly along the garden wall.",
]
TOPICS = {  # synthetic classification: the label is the topic of the sentence
    "sports": "match goal referee stadium striker trophy league coach".split(),
    "cooking": "oven recipe saucepan simmer garlic dough spatula oregano".split(),
    "weather": "forecast drizzle humidity thunder breeze frost cloudy gust".split(),
    "finance": "invoice mortgage dividend budget audit loan savings stock".split(),
    "travel": "passport luggage boarding ferry itinerary hostel visa airport".split(),
    "music": "melody chorus violin rhythm concert tempo drummer lyrics".split(),
}


@dataclass
class Draft:
    """Sentences under construction; `keys[i]` tags sentence i (question bookkeeping)."""

    sentences: list[str] = field(default_factory=list)
    keys: list[str | None] = field(default_factory=list)


def _people(rng: random.Random, n: int, namespace: str) -> list[str]:
    """`n` distinct full names; `namespace` (the split) keeps splits' entities apart."""
    names = [f"{f} {last}" for f in FIRST for last in LAST]
    rng.shuffle(names)
    offset = {"train": 0, "validation": 1, "test": 2}.get(namespace, 0)
    names = names[offset::3]
    if n > len(names):
        raise ValueError(f"at most {len(names)} synthetic people per split, asked for {n}")
    return names[:n]


def _fill(
    draft: Draft,
    planted: list[tuple[str, str | None]],
    cfg: BuildConfig,
    counter: TokenCounter,
    rng: random.Random,
    distractor: Callable[[], str],
) -> int:
    """Interleave planted sentences (in order) with filler up to `cfg.max_tokens` content tokens."""
    budget = cfg.max_tokens - sum(counter.count(s) + 1 for s, _ in planted)
    if budget < 0:
        raise ValueError(
            f"{len(planted)} planted sentences need more than max_tokens="
            f"{cfg.max_tokens}; raise max_tokens or lower facts"
        )
    filler = []
    while True:
        s = distractor() if rng.random() < cfg.distractor_ratio else rng.choice(CHATTER)
        n = counter.count(s) + 1
        if n > budget:
            break
        filler.append(s)
        budget -= n
    slots = sorted(rng.sample(range(len(filler) + len(planted)), len(planted)))
    it_f, it_p = iter(filler), iter(planted)
    for i in range(len(filler) + len(planted)):
        s, key = next(it_p) if slots and i == slots[0] else (next(it_f), None)
        if slots and i == slots[0]:
            slots.pop(0)
        draft.sentences.append(s)
        draft.keys.append(key)
    return cfg.max_tokens - budget


def _finish(
    cfg: BuildConfig,
    index: int,
    draft: Draft,
    qas: list[tuple[list[str], QA]],
    counter: TokenCounter,
    rng: random.Random,
    content_tokens: int,
    *,
    book: bool = False,
    classification: bool = False,
) -> Instance:
    packed = pack_indexed(
        draft.sentences, cfg.chunk_tokens, counter, joiner="\n" if classification else " "
    )
    chunk_of = {i: c for c, (_, members) in enumerate(packed) for i in members}
    where = {k: chunk_of[i] for i, k in enumerate(draft.keys) if k is not None}
    texts = [("\n" if classification else " ").join(p) for p, _ in packed]
    chunks = (
        book_chunks(texts, rng)[0]
        if book
        else dialogue_chunks(texts, rng, classification=classification)
    )
    questions = [
        q.model_copy(update={"evidence_chunks": sorted({where[k] for k in keys})})
        for keys, q in qas
    ]
    info = SOURCES[cfg.source]
    return Instance(
        id=stable_id(
            cfg.source, cfg.split, cfg.seed, index, cfg.max_tokens, cfg.chunk_tokens, cfg.facts
        ),
        data_source=cfg.source,
        competency=info.competency,
        metric=info.metric,
        chunks=chunks,
        questions=questions[: cfg.questions],
        metadata={
            "split": cfg.split,
            "content_tokens": content_tokens,
            "target_tokens": cfg.max_tokens,
            "synthetic": True,
        },
    )


def _fact(person: str, attr: str, value: str) -> str:
    return f"The {attr} of {person} is {value}."


def _confusable(rng: random.Random, others: list[str]) -> Callable[[], str]:
    """Distractors: facts of the same shape about people no question asks about."""

    def make() -> str:
        attr = rng.choice(list(ATTRIBUTES))
        return _fact(rng.choice(others), attr, rng.choice(ATTRIBUTES[attr]))

    return make


def generate_ar(
    cfg: BuildConfig, counter: TokenCounter, index: int, rng: random.Random
) -> Instance:
    people = _people(rng, cfg.facts + 40, cfg.split)
    asked, others = people[: cfg.facts], people[cfg.facts :]
    planted, qas = [], []
    for i, person in enumerate(asked):
        attr = rng.choice(list(ATTRIBUTES))
        value = rng.choice(ATTRIBUTES[attr])
        planted.append((_fact(person, attr, value), f"f{i}"))
        qas.append(
            (
                [f"f{i}"],
                QA(
                    id=f"q{i}",
                    question=f"What is the {attr} of {person}?",
                    answers=[value],
                    qtype="single_hop",
                ),
            )
        )

    draft = Draft()
    used = _fill(draft, planted, cfg, counter, rng, _confusable(rng, others))
    return _finish(cfg, index, draft, qas, counter, rng, used)


def generate_cr(
    cfg: BuildConfig,
    counter: TokenCounter,
    index: int,
    rng: random.Random,
    distractor: Callable[[], str] | None = None,
) -> Instance:
    """Facts later overwritten; gold is the newest value. Even questions single-hop (an
    attribute changes), odd ones multi-hop (a person changes employer; the answer is the new
    employer's headquarters city)."""
    people = _people(rng, cfg.facts + 40, cfg.split)
    hq = {c: rng.choice(ATTRIBUTES["home city"]) for c in COMPANIES}
    planted: list[tuple[str, str | None]] = [
        (f"{c} is headquartered in {city}.", f"hq-{c}") for c, city in hq.items()
    ]
    updates, qas = [], []
    for i, person in enumerate(people[: cfg.facts]):
        if i % 2 == 0:
            attr = rng.choice(list(ATTRIBUTES))
            old, new = rng.sample(ATTRIBUTES[attr], 2)
            planted.append((_fact(person, attr, old), None))
            updates.append((f"Update: {person} changed their {attr}; it is now {new}.", f"u{i}"))
            qas.append(
                (
                    [f"u{i}"],
                    QA(
                        id=f"q{i}",
                        question=f"What is the {attr} of {person} now?",
                        answers=[new],
                        qtype="single_hop",
                        superseded=[Superseded(subject=person, old=old, new=new)],
                    ),
                )
            )
        else:
            old, new = rng.sample(COMPANIES, 2)
            planted.append((f"{person} works at {old}.", None))
            updates.append((f"Update: {person} left {old} and now works at {new}.", f"u{i}"))
            qas.append(
                (
                    [f"u{i}", f"hq-{new}"],
                    QA(
                        id=f"q{i}",
                        answers=[hq[new]],
                        qtype="multi_hop",
                        superseded=[Superseded(subject=person, old=old, new=new)],
                        question=f"In which city is the company that {person} works for now "
                        "headquartered?",
                    ),
                )
            )
    rng.shuffle(planted)
    others = people[cfg.facts :]
    draft = Draft()
    used = _fill(
        draft, planted + updates, cfg, counter, rng, distractor or _confusable(rng, others)
    )
    return _finish(cfg, index, draft, qas, counter, rng, used)


def generate_ttl(
    cfg: BuildConfig, counter: TokenCounter, index: int, rng: random.Random
) -> Instance:
    """Labelled examples of a topic rule; held-out sentences ask for the label."""
    topics = list(TOPICS)[: max(2, min(cfg.facts, len(TOPICS)))]
    people = _people(rng, 60, cfg.split)

    def sentence(topic: str) -> str:
        a, b = rng.sample(TOPICS[topic], 2)
        return f"{rng.choice(people)} talked about the {a} and the {b}."

    def example() -> str:
        t = rng.randrange(len(topics))
        return classification_line(sentence(topics[t]), t)

    asked = [(sentence(topics[i % len(topics)]), i % len(topics)) for i in range(cfg.questions)]
    planted = [(classification_line(sentence(t), i), f"t{i}") for i, t in enumerate(topics)]
    draft = Draft()  # all filler is further labelled examples
    used = _fill(
        draft, planted, cfg.model_copy(update={"distractor_ratio": 1.0}), counter, rng, example
    )
    qas = [
        (
            [f"t{label}"],
            QA(
                id=f"q{i}",
                answers=[str(label)],
                qtype="classification",
                question=f"Sentence: {s}\nWhat is the label of the above sentence? "
                "Put your final answer as \\boxed{label}.",
            ),
        )
        for i, (s, label) in enumerate(asked)
    ]
    return _finish(cfg, index, draft, qas, counter, rng, used, classification=True)


def generate_lru(
    cfg: BuildConfig, counter: TokenCounter, index: int, rng: random.Random
) -> Instance:
    """A story of events; the question asks for a summary of the whole reading, keywords being
    the people and places of the planted events."""
    people = _people(rng, max(4, cfg.facts // 3), cfg.split)
    places = ATTRIBUTES["home city"]
    planted, keywords = [], []
    for i in range(cfg.facts):
        who, where = rng.choice(people), rng.choice(places)
        planted.append((f"{who} travelled to {where} and met an old friend there.", f"e{i}"))
        keywords += [who.split()[0], where]
    draft = Draft()
    used = _fill(draft, planted, cfg, counter, rng, lambda: rng.choice(CHATTER))
    keys = list(dict.fromkeys(keywords))[:10]
    qas = [
        (
            [f"e{i}" for i in range(cfg.facts)],
            QA(
                id="q0",
                answers=[", ".join(keys)],
                qtype="summary",
                question="Summarize the content of the book I read so far.",
            ),
        )
    ]
    return _finish(cfg, index, draft, qas, counter, rng, used, book=True)


GENERATORS = {
    "synth_ar": generate_ar,
    "synth_cr": generate_cr,
    "synth_ttl": generate_ttl,
    "synth_lru": generate_lru,
}


def build_synthetic(cfg: BuildConfig, counter: TokenCounter) -> list[Instance]:
    rng = random.Random(f"{cfg.source}/{cfg.split}/{cfg.seed}")
    return [GENERATORS[cfg.source](cfg, counter, i, rng) for i in range(cfg.instances)]
