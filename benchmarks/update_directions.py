"""Whether GRPO runs from one warm start agree on where to move: the cosine between their weight
updates, run against run, in float32 (the master weights the optimizer moves) and as the
policies compute (bf16: the rollouts, the reference and the evaluation round the weights to
bf16 on a CPU with native bf16), and how much of each update survives that rounding.

If the runs share a direction s and each adds its own noise n_k (Δ_k = s + n_k, the n_k
independent), the mean pairwise dot product estimates |s|² and the mean |Δ_k|² estimates
|s|² + |n|²: their ratio is the share of an update that is signal, and a random update of the
same size (benchmarks/random_update.py) has none. `--average-out` writes the warm start plus
the runs' mean update: the shared part kept, the independent parts shrunk by √K, a policy
folder `memalpha eval` takes like any checkpoint.

    python benchmarks/update_directions.py --start runs/sft-smollm2-select/policy \\
        --run seed0=runs/grpo-smollm2-select-fate/checkpoints/step_000008/policy \\
        --run seed1=runs/grpo-smollm2-select-fate-seed1/checkpoints/step_000008/policy \\
        --run seed2=runs/grpo-smollm2-select-fate-seed2/checkpoints/step_000008/policy \\
        --control random=runs/random-update-select \\
        [--average-out runs/grpo-smollm2-select-fate-mean3] \\
        [--out benchmarks/results/update_directions.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from safetensors.torch import load_file, save_file

from random_update import WEIGHTS, changes
from report import save


def flat(deltas: dict[str, torch.Tensor], names: list[str], start: dict) -> torch.Tensor:
    """One vector over `names` (a tensor a run left alone counts as zero)."""
    return torch.cat(
        [deltas[n].flatten() if n in deltas else torch.zeros(start[n].numel()) for n in names]
    )


def in_bf16(start: dict[str, torch.Tensor], trained: dict[str, torch.Tensor], names: list[str]):
    """The update as the policy computes it: bf16(trained) − bf16(start)."""
    return {
        n: trained[n].to(torch.bfloat16).float() - start[n].to(torch.bfloat16).float()
        for n in names
    }


def bf16_step(start: dict[str, torch.Tensor], names: list[str]) -> torch.Tensor:
    """Per weight, the spacing of bf16 values at the start's value (8 significant bits)."""
    w = torch.cat([start[n].float().flatten() for n in names]).abs().clamp_min(1e-30)
    return torch.exp2(torch.floor(torch.log2(w)) - 7)


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a @ b / (a.norm() * b.norm()).clamp_min(1e-30))


def signal_share(vectors: list[torch.Tensor]) -> float:
    """Mean pairwise dot over mean squared norm: |s|² / (|s|² + |n|²) under Δ_k = s + n_k."""
    dots = [float(a @ b) for a, b in itertools.combinations(vectors, 2)]
    return (sum(dots) / len(dots)) / (sum(float(v @ v) for v in vectors) / len(vectors))


def measure(start, runs: dict[str, dict], deltas: dict[str, dict], names: list[str]) -> dict:
    """Norms, bf16 survival and pairwise cosines of every run's update (`deltas`, from
    `changes`) over `names`."""
    fp32 = {k: flat(deltas[k], names, start) for k in runs}
    bf16 = {k: flat(in_bf16(start, w, names), names, start) for k, w in runs.items()}
    step = bf16_step(start, names)
    per_run = {
        k: {
            "norm_fp32": float(fp32[k].norm()),
            "norm_bf16": float(bf16[k].norm()),
            "median_change_per_bf16_step": float((fp32[k].abs() / step).median()),
            "cos_fp32_bf16": cosine(fp32[k], bf16[k]),
            "elements_changed_in_bf16": float((bf16[k] != 0).float().mean()),
        }
        for k in runs
    }
    pairs = {
        f"{a}~{b}": {"fp32": cosine(fp32[a], fp32[b]), "bf16": cosine(bf16[a], bf16[b])}
        for a, b in itertools.combinations(runs, 2)
    }
    return {"runs": per_run, "pairs": pairs, "fp32": fp32}


def write_average(
    start, deltas: dict[str, dict[str, torch.Tensor]], first: Path, out: Path
) -> float:
    """The start plus the runs' mean update (float32), every other tensor the start's own, so
    that in float32 it differs from the warm start by that update alone (a run's checkpoint
    stores its frozen layers rounded to bf16); the first run's folder gives the other files."""
    names = sorted(set().union(*deltas.values()))
    mean = {n: sum(d[n] for d in deltas.values() if n in d) / len(deltas) for n in names}
    weights = dict(start) | {n: start[n].float() + mean[n] for n in names}
    shutil.copytree(first, out, dirs_exist_ok=True)
    save_file(weights, str(out / WEIGHTS), metadata={"format": "pt"})
    norm = float(torch.cat([m.flatten() for m in mean.values()]).norm())
    (out / "average_update.json").write_text(
        json.dumps({"runs": list(deltas), "update_norm": norm}, indent=1)
    )
    return norm


def pair(text: str) -> tuple[str, Path]:
    name, _, path = text.partition("=")
    if not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, Path(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=Path, required=True, help="the warm start's policy folder")
    parser.add_argument(
        "--run", type=pair, action="append", required=True, help="NAME=policy folder (≥2)"
    )
    parser.add_argument(
        "--control", type=pair, action="append", default=[], help="NAME=random twin"
    )
    parser.add_argument(
        "--average-out", type=Path, help="write the start plus the runs' mean update"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/update_directions.json")
    )
    args = parser.parse_args()
    if len(args.run) < 2:
        parser.error("give at least two --run to compare")
    folders = {name: str(path) for name, path in args.run + args.control}
    start = load_file(args.start / WEIGHTS)
    runs = {name: load_file(path / WEIGHTS) for name, path in args.run}
    controls = {name: load_file(path / WEIGHTS) for name, path in args.control}
    deltas = {k: changes(start, w) for k, w in (runs | controls).items()}
    names = sorted(set().union(*(deltas[k] for k in runs)))
    result = measure(start, runs | controls, deltas, names)
    vectors = result.pop("fp32")
    share = signal_share([vectors[k] for k in runs])
    report = {"folders": folders, "tensors": len(names), "signal_share_fp32": share, **result}
    if args.average_out:
        of_runs = {k: deltas[k] for k in runs}
        norm = write_average(start, of_runs, args.run[0][1], args.average_out)
        report["average"] = {"out": str(args.average_out), "update_norm": norm}
    print_tables(report)
    save(args.out, report, argparse.Namespace(**{**vars(args), "run": None, "control": None}))


def print_tables(report: dict) -> None:
    console = Console()
    runs = Table(title=f"updates over {report['tensors']} trained tensors")
    columns = ("run", "norm fp32", "median |change| / bf16 step", "norm bf16", "cos(fp32, bf16)")
    for col in (*columns, "elements moved in bf16"):
        runs.add_column(col, justify="right")
    for name, r in report["runs"].items():
        runs.add_row(
            name,
            f"{r['norm_fp32']:.4f}",
            f"{r['median_change_per_bf16_step']:.3f}",
            f"{r['norm_bf16']:.4f}",
            f"{r['cos_fp32_bf16']:.3f}",
            f"{r['elements_changed_in_bf16']:.1%}",
        )
    console.print(runs)
    pairs = Table(title="cosine between updates")
    for col in ("pair", "fp32", "bf16"):
        pairs.add_column(col, justify="right")
    for name, c in report["pairs"].items():
        pairs.add_row(name, f"{c['fp32']:+.4f}", f"{c['bf16']:+.4f}")
    console.print(pairs)
    console.print(f"signal share of a run's update (fp32): {report['signal_share_fp32']:+.4f}")
    if "average" in report:
        average = report["average"]
        console.print(f"mean update (norm {average['update_norm']:.4f}) -> {average['out']}")


if __name__ == "__main__":
    main()
