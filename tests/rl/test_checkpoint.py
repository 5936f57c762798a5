"""Checkpoints on a full disk: a clear error, no hidden half-folder left behind, and the previous
checkpoint unchanged. A full disk cannot be made on a test machine without mount rights, so two
tests fake only the disk (the free-space figure, or the write's ENOSPC); the policy, optimizer
and files are real."""

from __future__ import annotations

import errno
import shutil

import pytest
import torch

from memalpha.agent import WriterConfig
from memalpha.errors import CheckpointError
from memalpha.llm import ModelConfig
from memalpha.rl import checkpoint as ckpt
from memalpha.rl.policy import Policy


@pytest.fixture
def run(tiny_model, tmp_path):
    policy = Policy(ModelConfig(model=str(tiny_model)))
    optimizer = torch.optim.AdamW(policy.model.parameters(), lr=1e-4)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    loss = sum(p.float().pow(2).sum() for p in policy.model.parameters())
    loss.backward()
    optimizer.step()  # the Adam moments exist, as in a real run
    args = (policy, optimizer, scheduler, {"note": "x"}, WriterConfig())
    first = ckpt.save_checkpoint(tmp_path / "run", 1, *args)
    yield tmp_path / "run", first, args
    policy.close()


def _files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_disk_without_room_is_refused_before_writing(run, monkeypatch):
    run_dir, first, args = run
    before = _files(first)
    real = shutil.disk_usage
    monkeypatch.setattr(ckpt.shutil, "disk_usage", lambda p: real(p)._replace(free=1_000))
    no_room = r"step 2 .* needs about [0-9.]+ MB and 0.0 MB are free"
    with pytest.raises(CheckpointError, match=no_room):
        ckpt.save_checkpoint(run_dir, 2, *args)
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["step_000001"]
    assert _files(first) == before
    assert ckpt.list_checkpoints(run_dir) == [first]


def test_a_write_that_runs_out_of_room_leaves_no_half_folder(run, monkeypatch):
    run_dir, first, args = run
    before = _files(first)

    def full_disk(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt.torch, "save", full_disk)
    with pytest.raises(CheckpointError, match="No space left on device"):
        ckpt.save_checkpoint(run_dir, 2, *args)
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["step_000001"]
    assert _files(first) == before


def test_a_checkpoint_with_room_is_written_whole(run):
    run_dir, first, args = run
    second = ckpt.save_checkpoint(run_dir, 2, *args)
    assert ckpt.list_checkpoints(run_dir) == [first, second]
    assert ckpt.read_state(second) == {"step": 2, "note": "x"}
    assert (second / "optimizer.pt").stat().st_size >= ckpt._tensor_bytes(
        args[1].state_dict()["state"]
    )
