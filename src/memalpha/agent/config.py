"""The writer's one config and its one builder: how a policy writes (tool-call format, prompt
style, token budget per chunk) into which memory (components, caps, tokenizer, view).

The trainer, the warm start, the evaluator, the server, the quickstart and every CLI command
build their writer here. A policy folder saved by training records the `WriterConfig` it was
trained with (`writer.json`), so whoever loads the policy writes the way it learned to.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from memalpha.agent.memory_agent import MemoryAgent, PromptStyle
from memalpha.agent.rule_writer import RuleWriterLLM
from memalpha.errors import ConfigError
from memalpha.llm import FORMATS, LoopStop, Message, SamplingParams
from memalpha.memory import MemoryConfig, ToolExecutor, ToolRegistry
from memalpha.tokens import TokenCounter

ToolFormat = Literal["hermes", "qwen"]
WRITER_FILE = "writer.json"


class WriterStyle(BaseModel):
    """How a writer writes, apart from its budget (a trainer keeps that with its rollouts)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: ToolFormat = Field(
        "hermes", description="Tool-call text: hermes <tool_call> JSON, or qwen ✿ (Memalpha-4B)."
    )
    prompt: PromptStyle = Field(
        "published", description="Writer prompts: published, or compact (~5x shorter, for CPUs)."
    )
    memory: MemoryConfig = Field(
        default_factory=MemoryConfig,
        description="The memory written: components, caps, tokenizer and the writer's view.",
    )
    loop_stop: LoopStop | None = Field(
        None,
        description="End a response that repeats one span, cut back to its first copy "
        "(memalpha.llm.loops; not published): a small writer's loops fill the memory with "
        "copies and decode to the budget. None: decode to the budget, as published.",
    )


class WriterConfig(WriterStyle):
    """Everything that decides what a writer sees and may say for one chunk."""

    max_new_tokens: int = Field(
        2048, ge=1, description="Writer budget per chunk; published 2048 (SPEC §4.3)."
    )

    def sampling(
        self,
        temperature: float = 0.0,
        *,
        top_p: float = 1.0,
        seed: int | None = None,
        logprobs: bool = False,
    ) -> SamplingParams:
        """Sampling within this writer's budget, stopping where its format would begin an
        imagined tool result: greedy (evaluation, the anchor) by default."""
        return SamplingParams(
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=self.max_new_tokens,
            seed=seed,
            logprobs=logprobs,
            stop=FORMATS[self.format].stop_strings,
            loop_stop=self.loop_stop,
        )


def build_agent(
    cfg: WriterConfig,
    counter: TokenCounter,
    prompt_tokens: Callable[[list[Message]], int] | None = None,
) -> MemoryAgent:
    """The memory agent of `cfg`. It holds no LLM and no sampling: callers pass both to
    `memorize_many`/`step`, so greedy validation, the greedy anchor and sampled rollouts are
    one agent with different sampling."""
    return MemoryAgent(
        FORMATS[cfg.format],
        ToolExecutor(ToolRegistry(cfg.memory.disabled)),
        cfg.memory.view,
        counter.count,
        prompt=cfg.prompt,
        budget=cfg.max_new_tokens,
        prompt_tokens=prompt_tokens,
    )


def selective_teacher(cfg: WriterConfig) -> RuleWriterLLM:
    """The selective rule writer in `cfg`'s format. With ids shown after their text
    (`memory.view.ids: after`, the ids-after warm start's layout) it names a replaced entry
    after the new text, as that warm start's teacher did (`SFTConfig.teacher_id_last`), so its
    answers are in the order such a policy writes."""
    return RuleWriterLLM(
        FORMATS[cfg.format], selective=True, id_last=cfg.memory.view.ids == "after"
    )


def save_writer_config(folder: Path, cfg: WriterConfig) -> None:
    """Record beside a saved policy how it was trained to write."""
    (folder / WRITER_FILE).write_text(cfg.model_dump_json(indent=1) + "\n", "utf-8")


def read_writer_config(folder: Path) -> WriterConfig | None:
    """The writer config recorded in a policy folder; None for a folder that has none (a base
    model, a registry name, a served model).

    Raises:
        ConfigError: the folder's writer.json is not a valid writer config.
    """
    path = Path(folder) / WRITER_FILE
    if not path.is_file():
        return None
    try:
        return WriterConfig.model_validate(json.loads(path.read_text("utf-8")))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise ConfigError(f"{path}: not a writer config ({exc})") from None


def check_trained_layout(policy: str | Path, memory: MemoryConfig) -> None:
    """Refuse to drive a trained policy with the memory view's ids on the other side of the
    text than its folder recorded (`ViewConfig.ids`): it learned to find an entry's id where it
    was shown, and would name wrong entries without any error. Folders with no writer.json
    (base models, registry names) pass.

    Raises:
        ConfigError: the recorded and the given `memory.view.ids` differ.
    """
    recorded = read_writer_config(Path(policy)) if Path(policy).is_dir() else None
    _check_layout(policy, recorded, memory)


def _check_layout(policy: str | Path, recorded: WriterConfig | None, memory: MemoryConfig) -> None:
    if recorded is not None and recorded.memory.view.ids != memory.view.ids:
        raise ConfigError(
            f"{policy} was trained with memory.view.ids: {recorded.memory.view.ids} "
            f"({WRITER_FILE}) but this run shows ids {memory.view.ids} their text; set "
            f"memory.view.ids: {recorded.memory.view.ids}"
        )


def policy_writer(
    policy: str | Path | None, overrides: dict[str, object] | None = None
) -> WriterConfig:
    """The writer a policy is driven with: what its folder recorded (defaults otherwise), with
    the given fields replaced (CLI options, explicitly set config keys).

    Raises:
        ConfigError: an override is not a valid writer setting, or moves the view's ids to the
            other side of the text than the policy was trained with (`check_trained_layout`).
    """
    recorded = read_writer_config(Path(policy)) if policy and Path(policy).is_dir() else None
    base = (recorded or WriterConfig()).model_dump()
    try:
        writer = WriterConfig.model_validate({**base, **(overrides or {})})
    except ValidationError as exc:
        raise ConfigError(f"invalid writer settings: {exc}") from None
    if policy:
        _check_layout(policy, recorded, writer.memory)
    return writer


def effective_writer(cfg: WriterConfig, policy: str | Path | None) -> WriterConfig:
    """The writer of a config that embeds `WriterConfig` (an eval method, the served writer):
    the writer fields it sets explicitly, on top of what the `policy` folder recorded (or the
    defaults, for a policy that recorded nothing or for no policy)."""
    given = {k: getattr(cfg, k) for k in WriterConfig.model_fields if k in cfg.model_fields_set}
    return policy_writer(policy, given)
