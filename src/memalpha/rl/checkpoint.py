"""Checkpoints of a training run: policy weights (an HF folder any backend loads), optimizer and
scheduler state, and the trainer state. Written to a hidden folder and renamed into place, so a
kill never leaves a half checkpoint that resume would pick; a write that fails (a full disk,
most often) removes its hidden folder and says how much room it needed."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from memalpha.agent import WriterConfig
from memalpha.errors import CheckpointError
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
    """Write checkpoint `step`; its policy folder records `writer`, how it is driven.

    Raises `CheckpointError` before writing when the disk has less room than the checkpoint's
    tensors take, and after a failed write (with the hidden folder removed), so a full disk
    reads as one plain sentence rather than torch's zip-writer message."""
    final = checkpoint_dir(run_dir, step)
    tmp = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    needed = _tensor_bytes(policy.model.state_dict()) + _tensor_bytes(optimizer.state_dict())
    free = shutil.disk_usage(tmp).free
    if free < needed:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointError(_no_room(step, run_dir, needed, free))
    try:
        policy.save(tmp / "policy", writer)
        if policy.lora is not None:
            policy.save_adapter(tmp / "adapter")
        torch.save(
            {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
            tmp / "optimizer.pt",
        )
        (tmp / STATE).write_text(json.dumps({"step": step, **state}, indent=2), "utf-8")
    except (OSError, RuntimeError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        free = shutil.disk_usage(tmp.parent).free
        raise CheckpointError(f"{_no_room(step, run_dir, needed, free)} ({exc})") from exc
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return final


def _tensor_bytes(tree: Any) -> int:
    """Bytes the tensors of a (nested) state dict take: a lower bound on what saving it writes."""
    if isinstance(tree, torch.Tensor):
        return tree.numel() * tree.element_size()
    if isinstance(tree, dict):
        return sum(_tensor_bytes(v) for v in tree.values())
    if isinstance(tree, list | tuple):
        return sum(_tensor_bytes(v) for v in tree)
    return 0


def _no_room(step: int, run_dir: Path, needed: int, free: int) -> str:
    return (
        f"could not write checkpoint step {step} under {run_dir}: it needs about "
        f"{needed / 1e6:.1f} MB and {free / 1e6:.1f} MB are free; free disk space, or lower "
        "schedule.keep_last"
    )


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
