"""The incremental BM25 index scores exactly like a fresh bm25s index over the live documents."""

from __future__ import annotations

import random

import bm25s
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from memalpha.retrieval import IncrementalBM25, tokenize

WORDS = "apple banana cherry date elder fig grape honey iris jade kiwi lemon mango".split()


def reference_scores(docs: dict[str, str], query: str) -> dict[str, float]:
    """Scores from a bm25s index rebuilt from scratch over the same documents and tokens."""
    keys = list(docs)
    corpus = [tokenize(docs[k]) for k in keys]
    index = bm25s.BM25(method="lucene")
    index.index(corpus, show_progress=False)
    q = [t for t in tokenize(query) if t in index.vocab_dict]
    if not q:
        return {}
    scores = index.get_scores(q)
    return {k: float(s) for k, s in zip(keys, scores, strict=True) if s > 0}


def random_doc(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000))
def test_scores_equal_a_fresh_bm25s_index_after_random_changes(seed) -> None:
    rng = random.Random(seed)
    index, docs = IncrementalBM25(), {}
    for step in range(rng.randint(1, 60)):
        action = rng.random()
        if docs and action < 0.2:
            key = rng.choice(list(docs))
            index.remove(key)
            del docs[key]
        elif docs and action < 0.4:
            key = rng.choice(list(docs))
            docs[key] = random_doc(rng)
            index.add(key, docs[key])  # replace
        else:
            docs[f"d{step}"] = random_doc(rng)
            index.add(f"d{step}", docs[f"d{step}"])
    if len(docs) < 2:
        return
    query = " ".join(rng.choice(WORDS) for _ in range(3))
    expected = reference_scores(docs, query)
    got = {h.key: h.score for h in index.search(query, k=len(docs))}
    assert set(got) == set(expected)
    for key, score in expected.items():
        assert np.isclose(got[key], score, rtol=1e-5), (key, got[key], score)


def test_results_are_sorted_and_ties_keep_insertion_order() -> None:
    index = IncrementalBM25()
    for key in ["a", "b", "c"]:
        index.add(key, "same words here")
    index.add("d", "same same same words")
    hits = index.search("same", k=4)
    assert [h.key for h in hits][1:] == ["a", "b", "c"]
    assert hits[0].key == "d" and hits[0].score > hits[1].score


def test_top_k_and_no_match() -> None:
    index = IncrementalBM25()
    index.add_many((f"k{i}", f"token{i} common") for i in range(100))
    assert [h.key for h in index.search("token42", k=5)] == ["k42"]
    assert len(index.search("common", k=7)) == 7
    assert index.search("absent words", k=5) == []
    assert index.search("common", k=0) == []


def test_compaction_after_many_removals_keeps_results() -> None:
    index = IncrementalBM25()
    index.add_many((i, f"word{i % 10} filler") for i in range(3000))
    for i in range(2500):
        index.remove(i)
    assert len(index) == 500
    hits = index.search("word3", k=1000)
    assert sorted(h.key for h in hits) == [i for i in range(2500, 3000) if i % 10 == 3]


def test_tokenize_matches_the_published_regex() -> None:
    assert tokenize("Hello, World! It's 2024_01.") == ["hello", "world", "it", "s", "2024_01"]
