"""One benchmark instance: a long input already cut into chunks, its questions with gold answers,
and the data source that picks the metric. Pydantic, since instances are read from files."""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Competency(StrEnum):
    """The four MemoryAgentBench competencies."""

    ACCURATE_RETRIEVAL = "accurate_retrieval"
    TEST_TIME_LEARNING = "test_time_learning"
    LONG_RANGE_UNDERSTANDING = "long_range_understanding"
    CONFLICT_RESOLUTION = "conflict_resolution"

    @property
    def short(self) -> str:
        """AR, TTL, LRU or CR: the column names of the paper's tables."""
        return "".join(word[0] for word in self.value.split("_")).upper()


Metric = Literal[  # names of memalpha.metrics.METRICS (a test keeps the two in step)
    "containment",
    "substring_exact_match",
    "boxed_label",
    "keyword_recall",
    "exact_match",
    "f1",
    "partial_containment",
    "rouge_l",
]


class QA(BaseModel):
    """One question with every acceptable gold answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    question: str
    answers: list[str] = Field(min_length=1)
    evidence_chunks: list[int] = Field(
        default_factory=list, description="Indices of the chunks that hold the answer."
    )
    qtype: str | None = Field(None, description="Question type, e.g. 'single_hop', 'bridge'.")


class Instance(BaseModel):
    """A long input (as chunks) and the questions asked after it has been memorized."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    data_source: str
    competency: Competency
    metric: Metric
    chunks: list[str] = Field(min_length=1)
    questions: list[QA] = Field(min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict)


def stable_id(prefix: str, *parts: Any) -> str:
    """A short id that depends only on the given parts (source documents, knobs, seed)."""
    digest = hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
    return f"{prefix}-{digest[:12]}"
