"""Incremental BM25: add, replace and remove documents without re-indexing, query in milliseconds.

bm25s precomputes every (term, document) score into a sparse matrix, which makes queries fast
but means any change to the corpus (which changes IDF and the mean length) needs a full rebuild.
A memory changes after every tool call, so this index keeps plain postings that are updated in
O(tokens) per change and applies bm25s's own Lucene scoring functions at query time, over the
postings of the query's terms only. Scores equal those of a fresh `bm25s.BM25(method="lucene")`
index over the same live documents (tested in tests/retrieval/test_bm25.py).
"""

from __future__ import annotations

import re
from array import array
from collections import Counter
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

import numpy as np
from bm25s.scoring import _score_idf_lucene, _score_tfc_lucene

# The published reader's tokenizer (rank_bm25 over `re.findall(r"\b\w+\b", text.lower())`).
_WORD = re.compile(r"\b\w+\b")


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens, exactly as the published BM25 tokenizes (MEMALPHA_SPEC §1.3)."""
    return _WORD.findall(text.lower())


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: the document key and its BM25 score."""

    key: Hashable
    score: float


class IncrementalBM25:
    """A BM25 (Lucene variant) index whose documents can change between queries.

    Args:
        k1: term-frequency saturation (bm25s default 1.5).
        b: length normalisation (bm25s default 0.75).
    """

    def __init__(self, *, k1: float = 1.5, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self._vocab: dict[str, int] = {}
        self._post_slots: list[array] = []  # per term: slots holding it (int32)
        self._post_tfs: list[array] = []  # per term: its frequency in each of those slots (float32)
        self._df: list[int] = []  # per term: number of *live* documents holding it
        self._slot_len = array("f")  # per slot: document length in tokens
        self._slot_alive = array("b")
        self._slot_terms: list[array | None] = []  # per slot: its unique term ids (to undo df)
        self._slot_key: list[Hashable | None] = []
        self._key_slot: dict[Hashable, int] = {}
        self._total_len = 0.0

    def __len__(self) -> int:
        return len(self._key_slot)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._key_slot

    def add(self, key: Hashable, text: str) -> None:
        """Index `text` under `key`; an existing document with that key is replaced."""
        if key in self._key_slot:
            self.remove(key)
        counts = Counter(tokenize(text))
        slot = len(self._slot_key)
        term_ids = array("i")
        for term, tf in counts.items():
            tid = self._vocab.get(term)
            if tid is None:
                tid = self._vocab[term] = len(self._df)
                self._post_slots.append(array("i"))
                self._post_tfs.append(array("f"))
                self._df.append(0)
            self._post_slots[tid].append(slot)
            self._post_tfs[tid].append(tf)
            self._df[tid] += 1
            term_ids.append(tid)
        length = float(sum(counts.values()))
        self._slot_len.append(length)
        self._slot_alive.append(1)
        self._slot_terms.append(term_ids)
        self._slot_key.append(key)
        self._key_slot[key] = slot
        self._total_len += length

    def add_many(self, items: Iterable[tuple[Hashable, str]]) -> None:
        """Index many (key, text) pairs."""
        for key, text in items:
            self.add(key, text)

    def remove(self, key: Hashable) -> None:
        """Drop the document under `key`.

        Raises:
            KeyError: no document has that key (an internal invariant; callers check first).
        """
        slot = self._key_slot.pop(key)
        for tid in self._slot_terms[slot]:
            self._df[tid] -= 1
        self._slot_alive[slot] = 0
        self._slot_terms[slot] = None
        self._slot_key[slot] = None
        self._total_len -= self._slot_len[slot]
        if len(self._slot_key) > 1024 and len(self._slot_key) > 2 * len(self._key_slot):
            self._compact()

    def search(self, query: str, k: int) -> list[Hit]:
        """The top-`k` documents by BM25 score against `query`, best first.

        Only documents sharing at least one term with the query are returned; ties keep
        insertion order, so results are deterministic.
        """
        n_live = len(self._key_slot)
        if k <= 0 or n_live == 0:
            return []
        tids = [self._vocab[t] for t in tokenize(query) if t in self._vocab]
        tids = [t for t in tids if self._df[t] > 0]
        if not tids:
            return []
        avg_len = self._total_len / n_live
        slot_len = np.frombuffer(self._slot_len, dtype=np.float32)  # (S,)
        scores = np.zeros(len(slot_len), dtype=np.float32)  # (S,)
        for tid in tids:  # a repeated query term counts again, as in bm25s.get_scores
            slots = np.frombuffer(self._post_slots[tid], dtype=np.int32)  # (P,)
            tfs = np.frombuffer(self._post_tfs[tid], dtype=np.float32)  # (P,)
            idf = _score_idf_lucene(self._df[tid], n_live)
            scores[slots] += idf * _score_tfc_lucene(tfs, slot_len[slots], avg_len, self.k1, self.b)
        scores *= np.frombuffer(self._slot_alive, dtype=np.int8)
        candidates = np.flatnonzero(scores > 0)  # ascending slot = insertion order
        if len(candidates) > k:
            # keep every candidate tied with the k-th best so the stable sort below decides ties
            kth = np.partition(scores[candidates], len(candidates) - k)[len(candidates) - k]
            candidates = candidates[scores[candidates] >= kth]
        order = candidates[np.argsort(-scores[candidates], kind="stable")][:k]
        return [Hit(self._slot_key[s], float(scores[s])) for s in order]

    def _compact(self) -> None:
        """Rebuild postings over live slots only, once dead slots outnumber live ones."""
        live = [(s, self._slot_key[s]) for s in range(len(self._slot_key)) if self._slot_alive[s]]
        new_slot = {old: new for new, (old, _) in enumerate(live)}
        for tid in range(len(self._df)):
            pairs = [
                (new_slot[s], tf)
                for s, tf in zip(self._post_slots[tid], self._post_tfs[tid], strict=True)
                if s in new_slot
            ]
            self._post_slots[tid] = array("i", (s for s, _ in pairs))
            self._post_tfs[tid] = array("f", (tf for _, tf in pairs))
        self._slot_len = array("f", (self._slot_len[s] for s, _ in live))
        self._slot_alive = array("b", [1] * len(live))
        self._slot_terms = [self._slot_terms[s] for s, _ in live]
        self._slot_key = [key for _, key in live]
        self._key_slot = {key: i for i, (_, key) in enumerate(live)}
