"""Builders shared by the trainer and the warm start: instances, reader, judge, writer agent,
optimizer and the per-step seeding that makes a resumed run repeat an uninterrupted one."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from memalpha.agent import MemoryAgent, PromptStyle
from memalpha.data import BuildConfig, Instance, build, read_instances
from memalpha.errors import ConfigError
from memalpha.llm import FORMATS, LLM, SamplingParams, make_llm
from memalpha.memory import MemoryConfig, ToolExecutor, ToolRegistry
from memalpha.reader import ContentJudge, ExtractiveReader, RagReader, RuleJudge
from memalpha.rl.config import JudgeConfig, OptimConfig, ReaderConfig, TrainConfig
from memalpha.rollout import Judge, Reader
from memalpha.tokens import TokenCounter


def load_instances(
    specs: list[BuildConfig], files: list[Path], counter: TokenCounter
) -> list[Instance]:
    """Built instances then file instances, in config order (deterministic from the seeds)."""
    out = [inst for spec in specs for inst in build(spec, counter)]
    for path in files:
        out += read_instances(path, counter=counter)
    return out


def make_reader(
    cfg: ReaderConfig,
    counter: TokenCounter,
    wrap: Callable[[LLM], LLM] = lambda llm: llm,
    sampling: SamplingParams | None = None,
) -> tuple[Reader, LLM | None]:
    """The reader and the LLM it holds (to close), if any; `wrap` goes around that LLM (the
    server batches concurrent requests with it); `sampling` replaces the reader's default."""
    if cfg.kind == "extractive":
        return ExtractiveReader(k=cfg.k), None
    llm = wrap(make_llm(cfg.model))
    reader = RagReader(
        llm, counter.count, k=cfg.k, max_prompt_tokens=cfg.max_prompt_tokens, sampling=sampling
    )
    return reader, llm


def make_judge(
    cfg: JudgeConfig, wrap: Callable[[LLM], LLM] = lambda llm: llm
) -> tuple[Judge | None, LLM | None]:
    if cfg.kind == "none":
        return None, None
    if cfg.kind == "rule":
        return RuleJudge(), None
    llm = wrap(make_llm(cfg.model))
    return ContentJudge(llm), llm


def make_agent(
    llm: LLM | None,
    fmt: str,
    memory: MemoryConfig,
    sampling: SamplingParams,
    counter: TokenCounter,
    prompt: PromptStyle = "published",
) -> MemoryAgent:
    if fmt not in FORMATS:
        raise ConfigError(f"unknown tool-call format '{fmt}' (known: {', '.join(FORMATS)})")
    return MemoryAgent(
        llm,
        FORMATS[fmt],
        ToolExecutor(ToolRegistry(memory.disabled)),
        memory.view,
        sampling,
        counter.count,
        prompt,
    )


def make_greedy_agent(
    llm: LLM | None, cfg: TrainConfig, counter: TokenCounter, max_new_tokens: int | None = None
) -> MemoryAgent:
    """The writer as evaluation sees it: greedy decoding, so one rollout per instance is the
    policy's mode and scores compare across checkpoints. Validation, the greedy anchor of a
    GRPO group and the benchmarks all build it here; the budget defaults to the rollout's."""
    sampling = SamplingParams(
        temperature=0.0, max_new_tokens=max_new_tokens or cfg.rollout.max_new_tokens
    )
    return make_agent(llm, cfg.format, cfg.memory, sampling, counter, cfg.prompt)


def make_optimizer(
    model: torch.nn.Module, cfg: OptimConfig, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over the trainable parameters; linear warm-up, then constant."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    warmup = int(cfg.warmup_ratio * total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) if warmup > 0 else 1.0
    )
    return optimizer, scheduler


def step_seed(seed: int, step: int) -> int:
    """The seed of one step: every random choice of step s depends on (seed, s) only."""
    return int(np.random.default_rng([seed, step]).integers(2**31 - 1))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def batch_indices(n: int, per_step: int, seed: int, step: int) -> list[int]:
    """Instances of step `step` (1-based): consecutive slices of per-epoch permutations, so the
    data order is a pure function of (seed, step)."""
    out = []
    for k in range((step - 1) * per_step, step * per_step):
        epoch, pos = divmod(k, n)
        out.append(int(np.random.default_rng([seed, epoch]).permutation(n)[pos]))
    return out
