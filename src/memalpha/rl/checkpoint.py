"""Checkpoints of a training run: policy weights (an HF folder any backend loads), optimizer and
scheduler state, and the trainer state. Written to a hidden folder and renamed into place, so a
kill never leaves a half checkpoint that resume would pick."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from memalpha.agent import WriterConfig
from memalpha.rl.policy import Policy

STATE = "state.json"


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"step_{step:06d}"


def save_checkpoint(
    run_dir: Path,
    step: int,
    policy: Policy,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: dict[str, Any],
    writer: WriterConfig,
) -> Path:
    """Write checkpoint `step`; its policy folder records `writer`, how it is driven."""
    final = checkpoint_dir(run_dir, step)
    tmp = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    policy.save(tmp / "policy", writer)
    if policy.lora is not None:
        policy.save_adapter(tmp / "adapter")
    torch.save(
        {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
        tmp / "optimizer.pt",
    )
    (tmp / STATE).write_text(json.dumps({"step": step, **state}, indent=2), "utf-8")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return final


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    root = run_dir / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("step_*") if (p / STATE).is_file())


def read_state(checkpoint: Path) -> dict[str, Any]:
    return json.loads((checkpoint / STATE).read_text("utf-8"))


def load_optimizer(checkpoint: Path, optimizer: torch.optim.Optimizer, scheduler: Any) -> None:
    saved = torch.load(checkpoint / "optimizer.pt", weights_only=False)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])


def prune(run_dir: Path, keep_last: int, best_step: int | None) -> None:
    """Keep the newest `keep_last` checkpoints and the best one."""
    ckpts = list_checkpoints(run_dir)
    keep = set(ckpts[-keep_last:])
    if best_step is not None:
        keep.add(checkpoint_dir(run_dir, best_step))
    for path in ckpts:
        if path not in keep:
            shutil.rmtree(path)
