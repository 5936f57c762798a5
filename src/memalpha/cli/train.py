"""`memalpha sft`, `memalpha train` and `memalpha plot`: warm start, GRPO, curves."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, TaskID

from memalpha.cli.common import SetOpt, app, err, friendly, out, progress
from memalpha.config import load_config

TrainConfigOpt = Annotated[
    Path, typer.Option("--config", help="Run config YAML, e.g. configs/train/cpu-smollm2.yaml.")
]
OutOpt = Annotated[
    Path | None, typer.Option("--out", help="Run directory (overrides out_dir in the config).")
]


def show_sft(bar: Progress, task: TaskID) -> Callable[[dict[str, Any]], None]:
    """Render `run_sft` events on a progress bar."""

    def show(e: dict[str, Any]) -> None:
        if e["kind"] == "transcripts":
            bar.update(task, completed=e["done"], total=e["total"], info="chunks written")
        elif e["kind"] == "start":
            bar.update(task, completed=0, total=e["steps"], info=f"{e['examples']} examples")
            if e["dropped"]:
                err.print(f"{e['dropped']} transcripts over max_new_tokens were dropped")
        elif e["kind"] == "sft":
            aim = f", aim tokens {e['upweighted_nll']:.3f}" if "upweighted_nll" in e else ""
            bar.update(task, completed=e["step"], info=f"loss {e['loss']:.3f}{aim}")

    return show


def show_training(bar: Progress, task: TaskID) -> Callable[[dict[str, Any]], None]:
    """Render `Trainer` events on a progress bar (validations and early stops as lines)."""

    def show(e: dict[str, Any]) -> None:
        if e["kind"] == "start":
            bar.update(task, completed=e["step"], total=e["steps"])
            if e["step"]:
                err.print(f"resuming after step {e['step']}")
        elif e["kind"] == "train":
            bar.update(
                task,
                completed=e["step"],
                info=f"reward {e['reward']:.3f} qa {e['r1_qa']:.3f} "
                f"calls ok {e['call_success']:.2f}",
            )
        elif e["kind"] == "val":
            err.print(
                f"step {e['step']}: validation qa {e['r1_qa']:.3f}, "
                f"memory {e['memory_tokens']:.0f} tokens"
            )
        elif e["kind"] == "stopped":
            err.print(f"time budget reached: stopped after step {e['step']} of {e['steps']}")

    return show


def _overrides(set_: list[str] | None, out_dir: Path | None) -> list[str]:
    return (set_ or []) + ([f"out_dir={out_dir}"] if out_dir else [])


@app.command("sft")
@friendly
def sft(config: TrainConfigOpt, out_dir: OutOpt = None, set_: SetOpt = None) -> None:
    """Supervised warm start: fine-tune the policy on the rule-based writer's tool calls.

    Example: memalpha sft --config configs/sft/cpu-smollm2.yaml
    """
    from memalpha.rl import SFTConfig, run_sft

    cfg = load_config(SFTConfig, config, _overrides(set_, out_dir))
    with progress() as bar:
        folder = run_sft(cfg, show_sft(bar, bar.add_task("sft", total=None, info="")))
    out.print(f"warm-started policy: {folder}")


@app.command("train")
@friendly
def train(
    config: TrainConfigOpt,
    out_dir: OutOpt = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Start over, ignoring checkpoints in the run dir.")
    ] = False,
    set_: SetOpt = None,
) -> None:
    """GRPO-train the memory writer; resumes from the run's last checkpoint when killed.

    Example: memalpha train --config configs/train/cpu-smollm2.yaml
    """
    from memalpha.rl import TrainConfig, Trainer

    cfg = load_config(TrainConfig, config, _overrides(set_, out_dir))
    with progress() as bar:
        task = bar.add_task("train", total=cfg.schedule.steps, info="")
        run_dir = Trainer(cfg, show_training(bar, task), fresh=fresh).run()
    out.print(f"run: {run_dir}  (curves: memalpha plot {run_dir})")


@app.command("plot")
@friendly
def plot(
    run_dir: Annotated[Path, typer.Argument(help="A training run directory.")],
    png: Annotated[Path | None, typer.Option("--out", help="PNG path.")] = None,
) -> None:
    """Draw a run's reward terms, QA score, memory size and validation curves to a PNG.

    Example: memalpha plot runs/grpo-smollm2
    """
    from memalpha.rl import plot_run

    out.print(f"wrote {plot_run(run_dir, png)}")
