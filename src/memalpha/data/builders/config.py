"""The knobs every builder takes, validated when the CLI or a config file gives them."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from memalpha.data.splits import Split


class BuildConfig(BaseModel):
    """What to build: which split, how many instances, how long, how cut, from which files."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(description="Builder name, e.g. squad, trec_coarse, book, synth_ar.")
    split: Split = "train"
    seed: int = Field(0, description="Sampling seed; splits never depend on it.")
    instances: int = Field(4, ge=1, description="Instances to build (fewer if the split runs out).")
    max_tokens: int = Field(
        8_000,
        ge=64,
        description="Input tokens per instance, counted "
        "on the chunk content before the dialogue/book wrapper is added.",
    )
    chunk_tokens: int = Field(1_024, ge=32, description="Chunk budget; published ~2048, ICL 1024.")
    questions: int = Field(20, ge=1, description="Questions per instance, at most.")
    facts: int = Field(
        40, ge=1, description="Synthetic/conflict: facts (or labels, events) to plant."
    )
    distractor_ratio: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Synthetic/conflict: share of filler sentences that are "
        "confusable distractors (facts about entities never asked) rather than neutral chatter.",
    )
    data_dir: Path | None = Field(
        None,
        description="Raw data folder (../shared/data layout); "
        "None uses the small sample shipped in the package.",
    )
