"""Lexical retrieval over memory entries and raw chunks."""

from memalpha.retrieval.bm25 import Hit, IncrementalBM25, tokenize

__all__ = ["Hit", "IncrementalBM25", "tokenize"]
