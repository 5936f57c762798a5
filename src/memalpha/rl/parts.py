"""Builders shared by the trainer and the warm start: instances, optimizer and the per-step
seeding that makes a resumed run repeat an uninterrupted one. (The writer, reader and judge
are built by their own packages: `agent.build_agent`, `reader.build_reader/build_judge`.)"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from memalpha.data import BuildConfig, Instance, build, read_instances
from memalpha.rl.config import OptimConfig
from memalpha.tokens import TokenCounter


def load_instances(
    specs: list[BuildConfig], files: list[Path], counter: TokenCounter
) -> list[Instance]:
    """Built instances then file instances, in config order (deterministic from the seeds)."""
    out = [inst for spec in specs for inst in build(spec, counter)]
    for path in files:
        out += read_instances(path, counter=counter)
    return out


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
