"""What `memalpha eval` reads: datasets, methods, the one reader every method is answered by,
how to fan out, and (for length generalisation) the input-length scales."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from memalpha.agent import WriterConfig, effective_writer
from memalpha.data import BuildConfig
from memalpha.llm import ModelConfig, Threads
from memalpha.reader import ReaderConfig

MethodKind = Literal["memalpha", "rule-writer", "long-context", "rag-topk", "memagent", "mem1"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MethodConfig(WriterConfig):
    """One memory method. Fields other than `name`/`kind` apply to the kinds named.

    memalpha and rule-writer methods are writers: the `WriterConfig` fields (format, prompt,
    max_new_tokens, memory) say how they write. For memalpha, what the policy folder recorded
    at training (`writer.json`) is the default, and only the fields this config sets replace it.
    """

    name: str = Field(min_length=1, description="Row label in reports; unique per config.")
    kind: MethodKind
    # memalpha
    policy: ModelConfig | None = Field(None, description="memalpha: the writer policy.")
    # rule-writer
    selective: bool = Field(
        False,
        description="rule-writer: the selective teacher's rules (drop chatter, update changed "
        "facts; memalpha.agent.rule_writer) instead of storing every sentence.",
    )
    # long-context
    window_tokens: int = Field(
        30_000, ge=16, description="long-context: the input is cut to its last N tokens."
    )
    # rag-topk
    k: int = Field(2, ge=1, description="rag-topk: raw chunks retrieved per question (BM25).")
    # memagent, mem1
    model: ModelConfig | None = Field(
        None, description="memagent/mem1: the memory LLM (None: the reader's model)."
    )
    memory_tokens: int = Field(
        256, ge=16, description="memagent: memory size; mem1: summary size (tokens)."
    )

    @model_validator(mode="after")
    def _needs(self) -> MethodConfig:
        if self.kind == "memalpha" and self.policy is None:
            raise ValueError(f"method '{self.name}': kind memalpha needs a policy")
        return self

    @property
    def writer(self) -> WriterConfig:
        """How this writer method writes: the policy's recorded writer (memalpha), with the
        writer fields this config sets on top."""
        trained = self.policy.model if self.kind == "memalpha" and self.policy else None
        return effective_writer(self, trained)


class EvalConfig(_Strict):
    out_dir: Path = Path("runs/eval")
    datasets: list[BuildConfig] = Field(default_factory=list)
    files: list[Path] = Field(default_factory=list, description="Instance files (.jsonl/.parquet).")
    methods: list[MethodConfig] = Field(min_length=1)
    reader: ReaderConfig = Field(default_factory=ReaderConfig)
    reader_max_new_tokens: int = Field(64, ge=1, description="LLM reader answer budget.")
    scales: list[int] = Field(
        default_factory=lambda: [1],
        description="Length generalisation: every dataset is built at max_tokens × each scale.",
    )
    batch_instances: int = Field(
        8,
        ge=1,
        description="Instances of one scale a method recalls together: an LLM writer generates "
        "their chunks in one batch (the policy's batch_size caps each generate call).",
    )
    workers: int = Field(1, ge=1, description="Processes over instances (1: in this process).")
    threads: Threads = None
    ray_address: str | None = Field(
        None, description="Fan out over a Ray cluster instead ('auto', 'ray://HOST:PORT')."
    )
    pools: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Reported methods averaged question by question over their members (e.g. "
        "the training seeds of one recipe: {grpo-seeds: [grpo-seed0, grpo-seed1]}); intervals "
        "cover the instances, not seeds not drawn.",
    )

    @model_validator(mode="after")
    def _unique(self) -> EvalConfig:
        names = [m.name for m in self.methods]
        if len(set(names)) != len(names):
            raise ValueError(f"method names must be unique, got {names}")
        for pool, members in self.pools.items():
            if pool in names or len(set(members)) < 2 or not set(members) <= set(names):
                raise ValueError(
                    f"pool '{pool}' needs a name no method has and ≥ 2 distinct methods of "
                    f"this config as members, got {members}"
                )
        if not self.datasets and not self.files:
            raise ValueError("give datasets (built) or files (instance files) to evaluate on")
        return self
