"""`memalpha eval` and `memalpha report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memalpha.cli.common import SetOpt, app, err, friendly, out, progress
from memalpha.config import load_config


@app.command("eval")
@friendly
def evaluate(
    config: Annotated[Path, typer.Option("--config", help="EvalConfig YAML (configs/eval/…).")],
    fresh: Annotated[bool, typer.Option(help="Start over instead of resuming.")] = False,
    set_: SetOpt = None,
) -> None:
    """Evaluate methods × datasets with one reader; resumable; writes summary.md/json and plots.

    Example: memalpha eval --config configs/eval/cpu-smollm2.yaml
    """
    from memalpha.eval import EvalConfig, run_eval

    cfg = load_config(EvalConfig, config, set_ or [])
    with progress() as bar:
        task = bar.add_task("jobs (method × instance)", total=None, info="")
        run_dir = run_eval(
            cfg, fresh=fresh, on_progress=lambda d, t: bar.update(task, completed=d, total=t)
        )
    out.print((run_dir / "summary.md").read_text("utf-8"))
    err.print(f"predictions, summary and plots in {run_dir}")


@app.command("report")
@friendly
def report(
    run_dirs: Annotated[list[Path], typer.Argument(help="Evaluation run directories.")],
) -> None:
    """Compare evaluation runs side by side (markdown).

    Example: memalpha report runs/eval-a runs/eval-b
    """
    from memalpha.eval import compare_runs

    out.print(compare_runs(run_dirs))
