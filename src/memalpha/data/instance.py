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


Fate = Literal["overwritten", "both", "old", "lost"]


class Superseded(BaseModel):
    """A value the input later overwrote: `subject` had `old`, then `new` (conflict
    resolution). Lets training and analysis tell a memory that updated the fact from one that
    still states the old value, which a reader shown both may answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subject: str = Field(min_length=1)
    old: str = Field(min_length=1)
    new: str = Field(min_length=1)

    def fate(self, contents: list[str]) -> Fate:
        """What memory entries (`contents`) hold of the change: the new value only
        (overwritten), an entry still stating the old value beside one with the new (both),
        the old only (old), or neither (lost). Entries are those that name the subject; one
        naming old and new together ("left A and now works at B") states the change, not the
        old value. Case-insensitive."""
        subject, old, new = (x.casefold() for x in (self.subject, self.old, self.new))
        about = [c.casefold() for c in contents if subject in c.casefold()]
        has_new = any(new in c for c in about)
        has_old = any(old in c and new not in c for c in about)
        if has_new:
            return "both" if has_old else "overwritten"
        return "old" if has_old else "lost"


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
    superseded: list[Superseded] = Field(
        default_factory=list,
        description="Values the input overwrote that this question's answer depends on.",
    )


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
