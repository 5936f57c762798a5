"""`memalpha quickstart`: the main job on the shipped data, within a time budget."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, TaskID
from rich.table import Table

from memalpha.cli.common import SetOpt, app, err, friendly, out, progress
from memalpha.cli.train import show_sft, show_training
from memalpha.data import Competency


@app.command("quickstart")
@friendly
def quickstart(
    minutes: Annotated[
        float | None, typer.Option("--minutes", help="Time budget (default 20).")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default: the recipe's out_dir).")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Quickstart YAML (default: the one shipped in memalpha)."),
    ] = None,
    recipe: Annotated[
        str,
        typer.Option(
            "--recipe",
            help="A shipped config: 'selective' (512-token inputs with chatter and changed "
            "facts, the selective teacher, GRPO at change chunks) or 'store-all' (64-token "
            "inputs, the store-everything rule teacher). Ignored with --config.",
        ),
    ] = "selective",
    fresh: Annotated[bool, typer.Option(help="Start over instead of resuming.")] = False,
    set_: SetOpt = None,
) -> None:
    """Build data, evaluate, warm-start, GRPO-train and re-evaluate SmolLM2 as a memory writer.

    Resumable: run the same command again after a kill.
    Example: memalpha quickstart --minutes 20 --out runs/quickstart
    Example: memalpha quickstart --recipe store-all
    """
    from memalpha.quickstart import load_quickstart_config, run_quickstart

    overrides = list(set_ or [])
    overrides += [f"minutes={minutes}"] if minutes is not None else []
    overrides += [f"out_dir={out_dir}"] if out_dir is not None else []
    cfg = load_quickstart_config(config, overrides, recipe)
    with progress() as bar:
        handler: dict[str, Any] = {}

        def show(e: dict[str, Any]) -> None:
            if e["kind"] == "warning":
                err.print(f"[yellow]{e['text']}[/]")
                return
            if e["kind"] != "stage":
                handler["now"](e)
                return
            _stage_done(bar, handler)
            handler["began"] = time.monotonic()
            err.print(f"[bold cyan][{e['index']}/{e['total']}] {e['name']}[/]")
            task = bar.add_task(e["key"], total=None, info="")
            handler["now"] = {"sft": show_sft, "grpo": show_training}.get(e["key"], show_eval)(
                bar, task
            )

        result = run_quickstart(cfg, show, fresh=fresh)
        _stage_done(bar, handler)
    render(result)


def _stage_done(bar: Progress, handler: dict[str, Any]) -> None:
    """Replace the finished stage's bar by one line with its duration."""
    for task in bar.task_ids:
        bar.update(task, visible=False)
    if "began" in handler:
        err.print(f"    done in {time.monotonic() - handler['began']:.0f} s")


def show_eval(bar: Progress, task: TaskID) -> Callable[[dict[str, Any]], None]:
    def show(e: dict[str, Any]) -> None:
        if e["kind"] == "eval":
            bar.update(task, completed=e["done"], total=e["total"])

    return show


def _memory_line(memory: dict[str, Any]) -> str:
    """The second verdict: a memory smaller by at least `memory_cut` at a bounded QA cost."""
    said = (
        f"Memory: the GRPO writer holds {memory['sft+grpo_tokens']:.0f} tokens against the warm "
        f"start's {memory['sft_tokens']:.0f} ({memory['change']:+.0%}); "
    )
    rule = (
        f"at least {memory['memory_cut']:.0%} smaller with QA's interval above "
        f"-{memory['qa_tolerance']}"
    )
    verdict = (
        f"{said}{rule}."
        if memory["smaller_at_no_qa_cost"]
        else f"{said}not {rule} (its low end: {memory['qa_low']:+.3f})."
    )
    return f"{verdict} {_instances_line(memory['by_instance'])}"


def _instances_line(by: dict[str, Any]) -> str:
    """Whether the memory change is broad or one instance's (see `memory_by_instance`)."""
    beyond = by["high"] < 0 or by["low"] > 0
    return (
        f"Instance by instance: smaller in {by['smaller']} of {by['instances']}, larger in "
        f"{by['larger']}; {by['diff_tokens']:+.0f} tokens [{by['low']:+.0f}, {by['high']:+.0f}], "
        f"{'beyond' if beyond else 'not beyond'} noise."
    )


def render(result: dict[str, Any]) -> None:
    """The comparison table, the paired comparisons and an honest one-line verdict."""
    writers = result["writers"]
    comps = sorted({c for w in writers.values() for c in w["competencies"]})
    table = Table(
        title=f"held-out test: {result['instances']} instances, one reader ({result['reader']})"
    )
    heads = ["writer", "overall", "95% interval", *(Competency(c).short for c in comps), "memory"]
    for col in heads:
        table.add_column(col, justify="left" if col == "writer" else "right", no_wrap=True)
    for name, w in writers.items():
        low, high = w["interval"]
        table.add_row(
            name,
            f"{w['overall']:.3f}",
            f"[{low:.3f}, {high:.3f}]",
            *(f"{w['competencies'].get(c, float('nan')):.3f}" for c in comps),
            f"{w['memory_tokens']:.0f}",
        )
    out.print(table)
    pairs = Table(title="paired differences over the same instances (bootstrap 95%)")
    for col in ("comparison", "difference", "interval", "verdict"):
        pairs.add_column(col, no_wrap=col != "verdict")
    for name, d in result["comparisons"].items():
        pairs.add_row(
            name, f"{d['diff']:+.3f}", f"[{d['low']:+.3f}, {d['high']:+.3f}]", d["verdict"]
        )
    out.print(pairs)
    grpo = result["comparisons"]["sft+grpo - sft"]
    n = result["grpo_steps"]
    steps = f"{n} GRPO step{'s' * (n != 1)} (of {result['grpo_planned_steps']} planned)"
    if grpo["low"] > 0:
        out.print(f"{steps} improved the warm-started writer beyond noise.")
    else:
        out.print(
            f"{steps} did not improve the warm-started writer beyond noise: this budget is too "
            f"short to show an RL gain. {result['longer_run']}".rstrip()
        )
    out.print(_memory_line(result["memory"]))
    if result["over_budget_s"] > 0:
        out.print(f"[yellow]over the time budget by {result['over_budget_s']:.0f} s[/]")
    files = result["files"]
    out.print(f"table: {files['summary']}  plots: {files['scores_plot']}, {files['curves_plot']}")
