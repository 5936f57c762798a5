"""Each data source's competency and metric, in one table (published sources included)."""

from __future__ import annotations

from dataclasses import dataclass

from memalpha.data.instance import Competency, Metric

AR, TTL, LRU, CR = (
    Competency.ACCURATE_RETRIEVAL,
    Competency.TEST_TIME_LEARNING,
    Competency.LONG_RANGE_UNDERSTANDING,
    Competency.CONFLICT_RESOLUTION,
)


@dataclass(frozen=True, slots=True)
class SourceInfo:
    competency: Competency
    metric: Metric


SOURCES: dict[str, SourceInfo] = {
    # built here from ../shared/data (memalpha.data.builders)
    "squad": SourceInfo(AR, "containment"),
    "hotpotqa": SourceInfo(AR, "containment"),
    "trec_coarse": SourceInfo(TTL, "boxed_label"),
    "trec_fine": SourceInfo(TTL, "boxed_label"),
    "banking77": SourceInfo(TTL, "boxed_label"),
    "clinc150": SourceInfo(TTL, "boxed_label"),
    "nlu": SourceInfo(TTL, "boxed_label"),
    "book": SourceInfo(LRU, "keyword_recall"),
    "conflict": SourceInfo(CR, "substring_exact_match"),
    # synthetic generators (memalpha.data.synthetic)
    "synth_ar": SourceInfo(AR, "containment"),
    "synth_ttl": SourceInfo(TTL, "boxed_label"),
    "synth_lru": SourceInfo(LRU, "keyword_recall"),
    "synth_cr": SourceInfo(CR, "substring_exact_match"),
    # published Memalpha and MemoryAgentBench sources (SPEC §3.1, §5.4)
    "perltqa": SourceInfo(AR, "partial_containment"),
    "booksum": SourceInfo(LRU, "keyword_recall"),
    "pubmed-rct": SourceInfo(TTL, "boxed_label"),
    "infbench_sum_eng_shots2": SourceInfo(LRU, "keyword_recall"),
}


def source_info(data_source: str) -> SourceInfo:
    """Metric and competency for a source; published names matched by their families.

    MemoryAgentBench and Memalpha names such as `icl_trec_coarse_6600shot_balance`,
    `ruler_qa1_197K` or `longmemeval_s*` resolve by prefix, as the published scorer does.
    """
    if data_source in SOURCES:
        return SOURCES[data_source]
    if data_source.startswith("icl_") or "ttl_train" in data_source:
        return SourceInfo(TTL, "boxed_label")
    if data_source.startswith(("infbench_sum", "booksum")):
        return SourceInfo(LRU, "keyword_recall")
    # ruler_qa*, longmemeval_s*, lme_train (judge metrics arrive with the reader, issue 8) and the
    # rest of MemoryAgentBench: normalized substring exact match, as evaluate_wrt_source does
    return SourceInfo(AR, "substring_exact_match")
