"""`memalpha eval` and `memalpha report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memalpha.cli.common import SetOpt, app, err, friendly, out, progress
from memalpha.config import load_config
from memalpha.errors import ConfigError


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
    _print_markdown((run_dir / "summary.md").read_text("utf-8"))
    err.print(f"predictions, summary and plots in {run_dir}")


@app.command("report")
@friendly
def report(
    sources: Annotated[
        list[Path],
        typer.Argument(help="Evaluation run directories or their summary.json files."),
    ],
    pool: Annotated[
        list[str] | None,
        typer.Option(
            "--pool",
            help="NAME=RUN/METHOD,RUN/METHOD: report those methods (e.g. one recipe's seeds, "
            "each evaluated in its own run) as one, averaged instance by instance.",
        ),
    ] = None,
    scale: Annotated[
        int | None,
        typer.Option(
            help="Compare at this input-length scale (e.g. 16); default: each method's first."
        ),
    ] = None,
    out_path: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Also write the merged summary there (summary.json's shape, methods named "
            "RUN/METHOD), for benchmarks/recipe_ledger.py or a later report.",
        ),
    ] = None,
) -> None:
    """Compare evaluation runs side by side (markdown), paired on the instances they share.

    Example: memalpha report runs/eval-a benchmarks/results/eval_b_summary.json
    --pool seeds=eval-a/grpo,eval_b_summary/grpo --scale 16
    """
    from memalpha.eval import comparison_markdown, merge_runs, save_summary

    pools = _pools(pool or [])
    merged = merge_runs(sources, pools, scale)
    _print_markdown(comparison_markdown(merged, scale))
    if out_path is not None:
        merged["merged_from"] = {
            "sources": [str(s) for s in sources],
            "pools": pools,
            "scale": scale,
        }
        save_summary(merged, out_path)
        err.print(f"merged summary in {out_path}")


def _print_markdown(text: str) -> None:
    """Markdown as written: tables unwrapped at the terminal's width (a wrapped row is no
    longer a table row), and "[...]" intervals never taken for rich markup."""
    out.print(text, soft_wrap=True, markup=False, highlight=False)


def _pools(specs: list[str]) -> dict[str, list[str]]:
    """NAME=A,B,... options → {NAME: [A, B, ...]}.

    Raises:
        ConfigError: a spec without NAME=, with fewer than two members, or a NAME given twice.
    """
    pools: dict[str, list[str]] = {}
    for spec in specs:
        name, sep, members = spec.partition("=")
        listed = [m.strip() for m in members.split(",") if m.strip()]
        if not sep or not name.strip() or len(set(listed)) < 2 or name.strip() in pools:
            raise ConfigError(
                f"--pool {spec!r}: expected NAME=RUN/METHOD,RUN/METHOD with a new NAME and at "
                "least two different methods"
            )
        pools[name.strip()] = listed
    return pools
