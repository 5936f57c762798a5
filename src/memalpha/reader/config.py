"""The configs of the fixed reader (r1) and the content judge (r4), and the one builder of
each: the trainer, the evaluator and the server assemble readers and judges here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from memalpha.llm import LLM, ModelConfig, SamplingParams, make_llm
from memalpha.reader.extractive import ExtractiveReader
from memalpha.reader.judges import ContentJudge, RuleJudge
from memalpha.reader.rag import Answer, Question, RagReader
from memalpha.tokens import TokenCounter


class Reader(Protocol):
    """Answers questions from memories (RagReader, ExtractiveReader)."""

    def answer(self, questions: list[Question]) -> list[Answer]: ...


class Judge(Protocol):
    """Scores (memory kind, content) writes in [0, 1] (ContentJudge, RuleJudge)."""

    def judge(self, writes: list[tuple[str, str]]) -> list[float]: ...


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# The reader and judge LLM where a config names none: Qwen2.5-Coder-0.5B-Instruct, installed
# from PyPI (memalpha.llm.packaged), the smallest model that answers real questions on a CPU
# (benchmarks/RESULTS.md, "Readers on the same memories").
CPU_LLM = "qwen2.5-coder-0.5b-instruct"


def _default_model(data: object, kind: str) -> object:
    """`model` filled with the CPU LLM where `kind` needs one and none is given."""
    if isinstance(data, dict) and data.get("kind") == kind and data.get("model") is None:
        return {**data, "model": ModelConfig(model=CPU_LLM)}
    return data


class ReaderConfig(_Strict):
    """The fixed reader that turns final memories into r1."""

    kind: Literal["extractive", "rag"] = Field(
        "extractive", description="extractive: no LLM (CPU); rag: the published LLM reader."
    )
    model: ModelConfig | None = Field(
        None, description=f"The reader LLM (rag only); none given: {CPU_LLM} on the CPU."
    )
    k: int = Field(20, ge=1, description="BM25 top-k per memory list; published 20.")
    max_prompt_tokens: int = Field(30_000, ge=256)
    max_new_tokens: int = Field(
        128, ge=1, description="Answer budget (rag); published 2048 (SPEC §3.1)."
    )
    temperature: float = Field(
        0.0, ge=0, description="Answer sampling (rag); 0 is greedy; published 0.7 (SPEC §3.1)."
    )

    answer_prefix: bool = Field(
        True,
        description="rag: begin answers to the classification sources with '\\boxed{', the "
        "form their published instruction asks for (small readers rarely write it unprompted); "
        "the published reader had no such help (false).",
    )

    def sampling(self) -> SamplingParams:
        return SamplingParams(temperature=self.temperature, max_new_tokens=self.max_new_tokens)

    @model_validator(mode="before")
    @classmethod
    def _model_for_rag(cls, data: object) -> object:
        return _default_model(data, "rag")


class JudgeConfig(_Strict):
    """The content-validity judge behind r4."""

    kind: Literal["rule", "llm", "none"] = Field(
        "rule", description="rule: LLM-free approximation; llm: the published judge prompts."
    )
    model: ModelConfig | None = Field(
        None, description=f"The judge LLM (llm only); none given: {CPU_LLM} on the CPU."
    )

    @model_validator(mode="before")
    @classmethod
    def _model_for_llm(cls, data: object) -> object:
        return _default_model(data, "llm")


def _same(llm: LLM) -> LLM:
    return llm


def build_reader(
    cfg: ReaderConfig,
    counter: TokenCounter,
    wrap: Callable[[LLM], LLM] = _same,
    sampling: SamplingParams | None = None,
) -> tuple[Reader, LLM | None]:
    """The reader and the LLM it holds (to close), if any; `wrap` goes around that LLM (the
    server batches concurrent requests with it); `sampling` replaces the config's."""
    if cfg.kind == "extractive":
        return ExtractiveReader(k=cfg.k), None
    assert cfg.model is not None  # checked by ReaderConfig
    llm = wrap(make_llm(cfg.model))
    reader = RagReader(
        llm,
        counter.count,
        k=cfg.k,
        max_prompt_tokens=cfg.max_prompt_tokens,
        sampling=sampling or cfg.sampling(),
        answer_prefix=cfg.answer_prefix,
    )
    return reader, llm


def build_judge(
    cfg: JudgeConfig, wrap: Callable[[LLM], LLM] = _same
) -> tuple[Judge | None, LLM | None]:
    """The judge (None for `kind: none`) and the LLM it holds (to close), if any."""
    if cfg.kind == "none":
        return None, None
    if cfg.kind == "rule":
        return RuleJudge(), None
    assert cfg.model is not None  # checked by JudgeConfig
    llm = wrap(make_llm(cfg.model))
    return ContentJudge(llm), llm
