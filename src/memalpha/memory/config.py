"""Configuration of one memory: enabled components, size caps, token counter, the writer's view."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from memalpha.tokens import TokenizerConfig


class Component(StrEnum):
    """The three parts of a memory (MEMALPHA_SPEC §1.1)."""

    CORE = "core"
    SEMANTIC = "semantic"
    EPISODIC = "episodic"


LIST_COMPONENTS = (Component.SEMANTIC, Component.EPISODIC)


class ViewConfig(BaseModel):
    """What the memory writer sees of its memory in each chunk's prompt."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["recent", "retrieved", "sentences"] = Field(
        "recent",
        description="'recent': the K newest entries per list, as published (SPEC §1.4); "
        "'retrieved': the K entries per list that BM25 ranks highest against the new chunk; "
        "'sentences': BM25 against each sentence of the chunk in turn, each sentence's best "
        "entry first, so the entry a sentence changes is shown however many entries share the "
        "chunk's other subjects (same prompt text as 'retrieved').",
    )
    k: int = Field(5, ge=0, description="Entries shown per list; published MAX_MEMORY_ITEMS=5.")
    ids: Literal["before", "after"] = Field(
        "before",
        description="Where each shown entry's id goes: 'before' its content (`[s3] text`, as "
        "published) or 'after' it (`text [s3]`). In a causal LM an id written before its text "
        "cannot carry that text, so naming the entry that states a fact is a two-step lookup; "
        "written after, the id's own position has read the fact (benchmarks/RESULTS.md, "
        '"The id after the content").',
    )
    max_prompt_tokens: int | None = Field(
        None,
        gt=0,
        description="Prompt budget; K is halved (5→2→1→0) until the prompt fits. Under the "
        "trainer it caps the whole chat-templated prompt in the policy's tokens, as published "
        "(6144 Qwen tokens in training, none at eval; SPEC §1.4); elsewhere the view's text in "
        "memory.tokenizer tokens.",
    )


class MemoryConfig(BaseModel):
    """Limits and layout of one memory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    disabled: frozenset[Component] = Field(
        frozenset(),
        description="Components removed from tools and views (the paper's ablations).",
    )
    core_max_tokens: int = Field(512, gt=0, description="Core paragraph cap; published 512.")
    core_overflow: Literal["truncate", "error"] = Field(
        "truncate",
        description="Over-long core: 'truncate' word by word and append a marker, as published "
        "(SPEC §1.2), or refuse the call as an error.",
    )
    max_entry_tokens: int | None = Field(
        None, gt=0, description="Cap per semantic/episodic entry; none published."
    )
    max_entries: int | None = Field(
        None, gt=0, description="Cap on semantic + episodic entries; none published."
    )
    max_total_tokens: int | None = Field(
        None, gt=0, description="Cap on the whole memory's tokens; none published."
    )
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)
    view: ViewConfig = Field(default_factory=ViewConfig)

    @model_validator(mode="after")
    def _caps_fit(self) -> MemoryConfig:
        if self.max_total_tokens is not None and self.max_total_tokens < self.core_max_tokens:
            raise ValueError(
                f"max_total_tokens={self.max_total_tokens} is below core_max_tokens="
                f"{self.core_max_tokens}; raise max_total_tokens or lower core_max_tokens"
            )
        if len(self.disabled) == len(Component):
            raise ValueError("every memory component is disabled; enable at least one")
        return self

    def enabled(self, component: Component) -> bool:
        return component not in self.disabled
