"""The one chunker: sentence splitting and packing to a token budget."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from memalpha.data import chunk_text, pack, split_sentences
from memalpha.data.chunking import pack_indexed


def test_split_sentences_handles_quotes_and_abbreviations_it_can() -> None:
    text = 'He left. "Why?" she asked! It was 5 p.m. at last.  Then   rain.'
    assert split_sentences(text) == [
        "He left.",
        '"Why?" she asked!',
        "It was 5 p.m. at last.",
        "Then rain.",
    ]


def test_pack_respects_budget_and_keeps_order(counter) -> None:
    sentences = [f"Sentence number {i} is here." for i in range(50)]
    chunks = pack(sentences, 40, counter)
    assert all(counter.count(c) <= 40 for c in chunks)
    assert " ".join(chunks) == " ".join(sentences)
    assert len(chunks) > 1


def test_overlong_unit_is_cut_at_word_boundaries(counter) -> None:
    long = " ".join(f"word{i}" for i in range(300))
    chunks = pack([long], 50, counter)
    assert all(counter.count(c) <= 50 for c in chunks)
    assert " ".join(chunks) == long


def test_pack_indexed_reports_membership(counter) -> None:
    packed = pack_indexed(["a b c", "d e f", "g h i"], 4, counter)
    assert [sorted(m) for _, m in packed] == [[0], [1], [2]]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.text(alphabet="abc de.", min_size=1, max_size=60), min_size=1, max_size=30),
    st.integers(5, 60),
)
def test_pack_never_loses_text_or_exceeds_budget(counter, units, budget) -> None:
    units = [u for u in units if u.strip()]
    chunks = pack(units, budget, counter)
    assert all(counter.count(c) <= budget for c in chunks)
    assert "".join(" ".join(chunks).split()) == "".join(" ".join(units).split())


def test_chunk_text_packs_sentences(counter) -> None:
    text = " ".join(f"This is sentence {i}." for i in range(100))
    chunks = chunk_text(text, 64, counter)
    assert all(c.endswith(".") for c in chunks)
