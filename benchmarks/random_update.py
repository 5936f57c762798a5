"""A control for a GRPO run: the same-sized update in a random direction. For every tensor the
run changed, the start's weights plus Gaussian noise scaled to the run's own change of that
tensor (same Frobenius norm); the result is a policy folder (the run's files, new weights) that
`memalpha eval` and `benchmarks/tool_use.py` take like any checkpoint. If GRPO's checkpoint
scores like its random twin, the run's effect is what any change of that size does.

    python benchmarks/random_update.py --start runs/sft-smollm2-select/policy \
        --trained runs/grpo-smollm2-select-stale/checkpoints/step_000008/policy \
        --out runs/random-update-select [--seed 0]

Tensors whose change is only the checkpoint's bf16 storage of frozen layers (below 1e-6 of
their norm after rounding the start the same way) are copied from the run unchanged.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

WEIGHTS = "model.safetensors"


def changes(
    start: dict[str, torch.Tensor], trained: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The run's change of every tensor it trained, in float32: trained − start, the start
    rounded to the checkpoint's dtype first, so frozen layers stored in bf16 do not count."""
    out = {}
    for name, after in trained.items():
        before = start[name].to(after.dtype).float()
        delta = after.float() - before
        if delta.norm().item() > 1e-6 * max(before.norm().item(), 1e-12):
            out[name] = delta
    return out


def random_twin(
    start: dict[str, torch.Tensor], trained: dict[str, torch.Tensor], seed: int
) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """The twin's weights and, per changed tensor, the norm of the change it copies."""
    generator = torch.Generator().manual_seed(seed)
    deltas = changes(start, trained)
    out, norms = dict(trained), {}
    for name, delta in deltas.items():
        after = trained[name]
        before = start[name].to(after.dtype).float()
        norm = delta.norm().item()
        noise = torch.randn(delta.shape, generator=generator)
        out[name] = (before + noise * (norm / noise.norm().item())).to(after.dtype)
        norms[name] = norm
    return out, norms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=Path, required=True, help="policy folder before the run")
    parser.add_argument("--trained", type=Path, required=True, help="the run's policy folder")
    parser.add_argument("--out", type=Path, required=True, help="where the twin is written")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    report = write_twin(args.start, args.trained, args.out, args.seed)
    print(
        f"{report['changed_tensors']} tensors moved by a random update of norm "
        f"{report['update_norm']:.4f} -> {args.out}"
    )


def write_twin(start_dir: Path, trained_dir: Path, out: Path, seed: int) -> dict:
    """The random twin of `trained_dir` as a policy folder at `out`; what moved, and how far."""
    start, trained = load_file(start_dir / WEIGHTS), load_file(trained_dir / WEIGHTS)
    if missing := sorted(set(trained) - set(start)):
        raise SystemExit(f"{start_dir} lacks {len(missing)} tensors of the run, e.g. {missing[0]}")
    twin, norms = random_twin(start, trained, seed)
    shutil.copytree(trained_dir, out, dirs_exist_ok=True)
    save_file(twin, str(out / WEIGHTS), metadata={"format": "pt"})
    total = sum(n * n for n in norms.values()) ** 0.5
    report = {"changed_tensors": len(norms), "update_norm": total, "seed": seed}
    (out / "random_update.json").write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
