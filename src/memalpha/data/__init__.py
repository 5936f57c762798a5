"""Instances (chunks + questions + data source), loaders for our and the published layouts,
the chunker, builders from raw public data, synthetic generators, and splits."""

from memalpha.data.builders import BUILDERS, BuildConfig, build, sample_dir
from memalpha.data.chunking import chunk_text, last_tokens, pack, split_sentences
from memalpha.data.instance import QA, Competency, Fate, Instance, Superseded
from memalpha.data.io import read_instances, write_instances
from memalpha.data.sources import SOURCES, source_info
from memalpha.data.splits import SPLITS, check_disjoint, split_of

__all__ = [
    "BUILDERS",
    "QA",
    "SOURCES",
    "SPLITS",
    "BuildConfig",
    "Competency",
    "Fate",
    "Instance",
    "Superseded",
    "build",
    "check_disjoint",
    "chunk_text",
    "last_tokens",
    "pack",
    "read_instances",
    "sample_dir",
    "source_info",
    "split_of",
    "split_sentences",
    "write_instances",
]
