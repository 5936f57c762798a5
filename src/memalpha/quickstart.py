"""The main job in one call: build a small mixed dataset from the shipped data, evaluate the
reference writers (rule writers, or the untrained policy), warm-start the writer on a rule
teacher's tool calls, GRPO-train it for what the time budget leaves, evaluate the trained
writers on the same held-out instances and say, with a paired bootstrap interval, whether
training helped.

Every stage is the library's own (`build`, `run_eval`, `run_sft`, `Trainer`): the quickstart
only wires their directories together under `out_dir` and keeps the clock:

    out_dir/data/{train,test}.jsonl     the dataset (built once)
    out_dir/eval-baseline/              the reference writers, `baselines` (resumable eval run)
    out_dir/sft/policy                  the warm-started policy
    out_dir/grpo/checkpoints/…/policy   the GRPO policy (resumable training run)
    out_dir/eval-trained/               warm-started + GRPO policies
    out_dir/summary.{md,json}, scores.png, curves.png, result.json

Rerunning picks up where a killed run stopped: finished stages are skipped, the evaluations
and GRPO resume, and only the warm start (a few minutes) restarts from scratch.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from importlib.resources import as_file, files
from pathlib import Path
from statistics import mean
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from memalpha.config import check_resumable, load_config, save_run_config
from memalpha.data import BuildConfig, build, write_instances
from memalpha.errors import ConfigError
from memalpha.eval import (
    EvalConfig,
    MethodConfig,
    bootstrap_interval,
    by_instance,
    paired_difference,
    read_rows,
    run_eval,
    write_summary,
)
from memalpha.llm import bf16_native, pin_threads, resolve_folder
from memalpha.reader import ReaderConfig
from memalpha.rl import (
    DataConfig,
    SFTConfig,
    TrainConfig,
    Trainer,
    list_checkpoints,
    plot_run,
    read_state,
    run_sft,
)
from memalpha.tokens import make_token_counter

Event = dict[str, Any]
STATE = "quickstart.json"
Baseline = Literal["rule-writer", "selective-teacher", "untrained"]
TRAINED = ("sft", "sft+grpo")
# keys a resumed run may change: they set the clock, the workers or the report, not what is trained
VOLATILE = (
    "minutes",
    "out_dir",
    "eval_workers",
    "slack_s",
    "final_eval_factor",
    "memory_cut",
    "qa_tolerance",
    "longer_run",
)


class QuickstartConfig(BaseModel):
    """The quickstart's stages. `sft` and `train` are ordinary SFT/train configs whose data,
    policy and output directory the quickstart fills in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    out_dir: Path = Path("runs/quickstart")
    minutes: float = Field(20, gt=0, description="Wall-clock budget; GRPO gets what is left.")
    base_model: str = Field(
        "smollm2-135m-instruct", description="The policy before training (name or HF folder)."
    )
    train_data: list[BuildConfig] = Field(min_length=1)
    test_data: list[BuildConfig] = Field(min_length=1)
    sft: SFTConfig
    train: TrainConfig
    baselines: list[Baseline] = Field(
        default_factory=lambda: ["rule-writer", "untrained"],
        min_length=1,
        description="Reference writers evaluated before training: 'rule-writer' stores every "
        "sentence, 'selective-teacher' is the selective rules a `teacher: selective` warm start "
        "copies, 'untrained' is base_model before the warm start (on long inputs it writes "
        "to its token budget at every chunk: the costliest of the three).",
    )
    reader: ReaderConfig = Field(
        default_factory=lambda: ReaderConfig(kind="rag", k=10, max_prompt_tokens=2048),
        description="Answers the evaluations' questions (default: Qwen2.5-Coder-0.5B from PyPI); "
        "the training reward is read by train.reader (the extractive reader: fast on a CPU).",
    )
    reader_max_new_tokens: int = Field(48, ge=1, description="The evaluations' answer budget.")
    eval_workers: int = Field(
        1,
        ge=1,
        description="Processes for the evaluations, sharing this process's threads: 2 write "
        "the two trained writers side by side (each writer's batch waits on its longest "
        "answer, a wait a second process fills).",
    )
    slack_s: float = Field(30, ge=0, description="Kept free at the end of the budget.")
    final_eval_factor: float = Field(
        1.3,
        gt=0,
        description="Time kept for the last evaluation, in units of the first one's: two LLM "
        "writers (which stop at EOS once trained) where the first had one and the rule writer, "
        "and the same reader (measured: 1.28 with the Qwen reader, benchmarks/RESULTS.md).",
    )
    memory_cut: float = Field(
        0.2,
        ge=0,
        lt=1,
        description="The report's second verdict: GRPO's memory this much smaller than the warm "
        "start's (0.2: ≥20% fewer tokens) ...",
    )
    qa_tolerance: float = Field(
        0.02, ge=0, description="... with the QA difference's interval above -qa_tolerance."
    )
    longer_run: str = Field(
        "",
        description="Said when GRPO shows no gain in the budget: the longer run of this recipe "
        "and what it reached (benchmarks/RESULTS.md).",
    )

    @model_validator(mode="after")
    def _same_writer(self) -> QuickstartConfig:
        for key in ("format", "prompt", "memory", "loop_stop"):
            if getattr(self.sft, key) != getattr(self.train, key):
                raise ValueError(f"sft.{key} and train.{key} must match: GRPO continues the SFT")
        return self


# the configs shipped in the package, by the name `memalpha quickstart --recipe` takes
RECIPES = {"selective": "quickstart.yaml", "store-all": "quickstart-store-all.yaml"}


def load_quickstart_config(
    path: Path | None, overrides: list[str], recipe: str = "selective"
) -> QuickstartConfig:
    """The given YAML, or the shipped recipe's, plus `--set` overrides.

    Raises:
        ConfigError: an unknown recipe.
    """
    if path is not None:
        return load_config(QuickstartConfig, path, overrides)
    if recipe not in RECIPES:
        raise ConfigError(f"unknown recipe {recipe!r}: one of {', '.join(RECIPES)}")
    with as_file(files("memalpha.examples").joinpath(RECIPES[recipe])) as shipped:
        return load_config(QuickstartConfig, shipped, overrides)


def run_quickstart(
    cfg: QuickstartConfig, on_event: Callable[[Event], None] | None = None, *, fresh: bool = False
) -> dict[str, Any]:
    """Run (or resume) every stage within `cfg.minutes`; returns what `result.json` holds.

    Events: {"kind": "stage", "key", "name", "index", "total"} before each stage, then that
    stage's own events (SFT, training; "eval" with done/total for the evaluations), and
    {"kind": "warning", "text"} when stages 1-3 leave GRPO no time (the run will overrun).

    Raises:
        ConfigError: `out_dir` holds a quickstart run with another config (use `fresh`).
    """
    emit = on_event or (lambda e: None)
    end = time.monotonic() + cfg.minutes * 60
    out = cfg.out_dir
    if fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    check_resumable(out, cfg, VOLATILE)
    save_run_config(out, cfg)
    state = _load_state(out)

    def stage(index: int, key: str, name: str) -> None:
        emit({"kind": "stage", "index": index, "total": 5, "key": key, "name": name})

    stage(1, "data", "dataset and models")
    train_file, test_file = dataset_files(cfg, out / "data")
    _prepare_models(cfg)  # once, here: the evaluations' timing then holds evaluation only

    stage(2, "eval", f"evaluate the reference writers ({', '.join(cfg.baselines)})")
    started = time.monotonic()
    baseline = _evaluate(cfg, out / "eval-baseline", test_file, _baseline_methods(cfg), emit)
    state.setdefault("baseline_eval_s", time.monotonic() - started)
    _save_state(out, state)

    stage(3, "sft", "supervised warm start")
    sft_policy = _warm_start(cfg, out / "sft", train_file, emit)

    stage(4, "grpo", "GRPO")
    if "grpo_steps" not in state:
        reserve = cfg.final_eval_factor * state["baseline_eval_s"] + cfg.slack_s
        state["grpo_window_s"] = end - reserve - time.monotonic()
        if state["grpo_window_s"] <= 0:
            emit({"kind": "warning", "text": _late_warning(cfg, end, reserve)})
        started = time.monotonic()
        state["grpo_steps"] = _grpo(cfg, out / "grpo", sft_policy, train_file, end - reserve, emit)
        state["grpo_s"] = time.monotonic() - started
        _save_state(out, state)
    grpo_policy = list_checkpoints(out / "grpo")[-1] / "policy"

    stage(5, "eval", "evaluate the trained writers")
    trained = _evaluate(
        cfg,
        out / "eval-trained",
        test_file,
        [_writer(cfg, "sft", sft_policy), _writer(cfg, "sft+grpo", grpo_policy)],
        emit,
    )
    return _report(cfg, out, baseline + trained, state, end)


def _late_warning(cfg: QuickstartConfig, end: float, reserve: float) -> str:
    """Why the budget cannot be kept: stages 1-3 (fixed work) left GRPO no time, and GRPO
    still runs its first step (a quickstart without GRPO would not show the method)."""
    budget = cfg.minutes * 60
    used = budget - (end - time.monotonic())
    why = ""
    reader = cfg.reader.model
    if reader is not None and reader.dtype == "auto" and not bf16_native(reader.device):
        where = "CPU" if reader.device == "cpu" else reader.device
        why = (
            f" This {where} has no native bf16, so the evaluations' reader computes in float32 "
            "and they take about twice as long as on the AMX-BF16 CPU the 20-minute default is "
            "sized for."
        )
    return (
        f"Stages 1-3 took {used:.0f} s of the {budget:.0f} s budget, and {reserve:.0f} s are "
        "kept for the last evaluation: GRPO runs its first step only and the run will end "
        f"over budget.{why} More --minutes give GRPO more steps."
    )


def _warm_start(
    cfg: QuickstartConfig, run_dir: Path, train_file: Path, emit: Callable[[Event], None]
) -> Path:
    """The warm-started policy, trained once (a finished run is kept)."""
    if not (run_dir / "sft.json").is_file():
        sft_cfg = cfg.sft.model_copy(
            update={
                "out_dir": run_dir,
                "policy": cfg.sft.policy.model_copy(update={"model": cfg.base_model}),
                "data": DataConfig(train_files=[train_file]),
            }
        )
        run_sft(sft_cfg, emit)
    return run_dir / "policy"


def _prepare_models(cfg: QuickstartConfig) -> None:
    """Assemble and convert the local models the run loads (the base writer, the reader's),
    so that a first run's one-time conversions are not counted as evaluation time."""
    models = [cfg.sft.policy.model_copy(update={"model": cfg.base_model})]
    if cfg.reader.model is not None and cfg.reader.model.backend == "transformers":
        models.append(cfg.reader.model)
    for model in models:
        resolve_folder(model)


def dataset_files(cfg: QuickstartConfig, folder: Path) -> tuple[Path, Path]:
    """Build the train and held-out test instances once (atomically: a kill leaves none);
    the same files in any folder, for the same config."""
    counter = make_token_counter(cfg.train.memory.tokenizer)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, specs in (("train", cfg.train_data), ("test", cfg.test_data)):
        path = folder / f"{name}.jsonl"
        if not path.is_file():
            tmp = path.with_suffix(".tmp")
            write_instances([i for s in specs for i in build(s, counter)], tmp)
            os.replace(tmp, path)
        paths.append(path)
    return paths[0], paths[1]


def _writer(cfg: QuickstartConfig, name: str, model: str | Path) -> MethodConfig:
    """A memalpha writer evaluated exactly as it was validated in training: format, prompt,
    memory and budget all from `train.val_writer`, the one writer config."""
    return MethodConfig(
        name=name,
        kind="memalpha",
        policy=cfg.sft.policy.model_copy(update={"model": str(model)}),
        **dict(cfg.train.val_writer),
    )


def _baseline_methods(cfg: QuickstartConfig) -> list[MethodConfig]:
    """The reference writers, each writing the memory layout the trained writers write."""
    writer = cfg.train.val_writer
    return [
        _writer(cfg, name, cfg.base_model)
        if name == "untrained"
        else MethodConfig(
            name=name,
            kind="rule-writer",
            format=writer.format,
            memory=writer.memory,
            selective=name == "selective-teacher",
        )
        for name in cfg.baselines
    ]


def comparison_pairs(baselines: list[str]) -> list[tuple[str, str]]:
    """(after, before) pairs the report compares: the warm start against the untrained writer
    (what SFT taught) or the teacher it copies (what it failed to copy), GRPO against the warm
    start (the verdict), and GRPO against the writer it should overtake: the untrained one, or
    the store-everything rule writer where the untrained one is not evaluated."""
    if "untrained" in baselines:
        return [("sft", "untrained"), ("sft+grpo", "sft"), ("sft+grpo", "untrained")]
    pairs = [("sft", "selective-teacher")] if "selective-teacher" in baselines else []
    pairs.append(("sft+grpo", "sft"))
    return pairs + [("sft+grpo", b) for b in baselines if b == "rule-writer"]


def _evaluate(
    cfg: QuickstartConfig,
    run_dir: Path,
    test_file: Path,
    methods: list[MethodConfig],
    emit: Callable[[Event], None],
) -> list[dict[str, Any]]:
    eval_cfg = EvalConfig(
        out_dir=run_dir,
        files=[test_file],
        methods=methods,
        reader=cfg.reader,
        reader_max_new_tokens=cfg.reader_max_new_tokens,
        batch_instances=cfg.sft.policy.batch_size,  # the writers' instances in as few batches
        workers=cfg.eval_workers,
        threads=_threads_per_worker(cfg.eval_workers),
    )
    run_eval(eval_cfg, on_progress=lambda d, t: emit({"kind": "eval", "done": d, "total": t}))
    return read_rows(run_dir / "predictions.jsonl")


def _threads_per_worker(workers: int) -> int | None:
    """This process's threads shared among the evaluation's worker processes (None: one
    worker, this process, as it is). Each worker taking them all would set twice as many
    threads as there are cores to work."""
    if workers == 1:
        return None
    return max(1, pin_threads(None) // workers)


def _grpo(
    cfg: QuickstartConfig,
    run_dir: Path,
    policy: Path,
    train_file: Path,
    deadline: float,
    emit: Callable[[Event], None],
) -> int:
    """Train from the warm start until `schedule.steps` or the deadline; the steps done."""
    train_cfg = cfg.train.model_copy(
        update={
            "out_dir": run_dir,
            "policy": cfg.train.policy.model_copy(update={"model": str(policy)}),
            "data": DataConfig(train_files=[train_file]),
        }
    )
    Trainer(train_cfg, emit, deadline=deadline).run()
    ckpts = list_checkpoints(run_dir)
    if not ckpts:
        raise ConfigError("GRPO saved no checkpoint; set train.schedule.save_every")
    return int(read_state(ckpts[-1])["step"])


def _report(
    cfg: QuickstartConfig, out: Path, rows: list[dict[str, Any]], state: dict[str, Any], end: float
) -> dict[str, Any]:
    """summary.md/json + scores.png over all four writers, GRPO curves, the verdicts, and how
    the budget went (`grpo_window_s`: the time GRPO had; `grpo_s`: what it took)."""
    summary = write_summary(out, rows)
    curves = plot_run(out / "grpo", out / "curves.png")
    per_instance = per_instance_scores(rows)
    result: dict[str, Any] = {
        "writers": {
            name: {
                "overall": summary["methods"][name]["1"]["overall"],
                "interval": bootstrap_interval(list(per_instance[name].values())),
                "competencies": summary["methods"][name]["1"]["competencies"],
                "memory_tokens": summary["methods"][name]["1"]["memory_tokens"],
            }
            for name in (*cfg.baselines, *TRAINED)
        },
        "reader": cfg.reader.model.model if cfg.reader.model else cfg.reader.kind,
        "instances": len(per_instance["sft"]),
        "grpo_steps": state["grpo_steps"],
        "grpo_planned_steps": cfg.train.schedule.steps,
        "longer_run": cfg.longer_run,
        "over_budget_s": max(0.0, time.monotonic() - end),
        "budget": {
            "minutes": cfg.minutes,
            "baseline_eval_s": state["baseline_eval_s"],
            "grpo_window_s": state.get("grpo_window_s"),
            "grpo_s": state.get("grpo_s"),
        },
        "comparisons": {},
        "files": {
            "summary": str(out / "summary.md"),
            "scores_plot": str(out / "scores.png"),
            "curves_plot": str(curves),
        },
    }
    for after, before in comparison_pairs(cfg.baselines):
        result["comparisons"][f"{after} - {before}"] = compare_writers(per_instance, after, before)
    result["memory"] = memory_report(cfg, result, rows)
    (out / "result.json").write_text(json.dumps(result, indent=1) + "\n", "utf-8")
    return result


def compare_writers(
    per_instance: dict[str, dict[str, float]], after: str, before: str
) -> dict[str, Any]:
    """`after` − `before`, paired by instance, with its interval and verdict, as reported."""
    ids = sorted(per_instance[before])
    d = paired_difference(
        [per_instance[after][i] for i in ids], [per_instance[before][i] for i in ids]
    )
    return {**d, "verdict": _verdict(d)}


def memory_report(
    cfg: QuickstartConfig, result: dict[str, Any], rows: list[dict[str, Any]]
) -> dict[str, Any]:
    """The second verdict (`result` holds both writers and the QA comparison) and the memory
    change instance by instance (from the evaluations' `rows`)."""
    return {**_memory_verdict(cfg, result), "by_instance": memory_by_instance(rows)}


def _memory_verdict(cfg: QuickstartConfig, result: dict[str, Any]) -> dict[str, Any]:
    """GRPO's other way to count as a gain: a memory at least `memory_cut` smaller than the warm
    start's whose QA cost is bounded, the paired interval's low end above `-qa_tolerance` (a
    writer that stores less but answers as well is what the compression reward asks for)."""
    before = result["writers"]["sft"]["memory_tokens"]
    after = result["writers"]["sft+grpo"]["memory_tokens"]
    qa = result["comparisons"]["sft+grpo - sft"]
    change, met = memory_verdict(before, after, qa["low"], cfg.memory_cut, cfg.qa_tolerance)
    return {
        "sft_tokens": before,
        "sft+grpo_tokens": after,
        "change": change,
        "memory_cut": cfg.memory_cut,
        "qa_low": qa["low"],
        "qa_tolerance": cfg.qa_tolerance,
        "smaller_at_no_qa_cost": met,
    }


def memory_verdict(
    before: float, after: float, qa_low: float, cut: float, tolerance: float
) -> tuple[float, bool]:
    """The memory's relative change from `before` to `after` tokens, and whether it is at
    least `cut` smaller with QA's paired interval low end (`qa_low`) above `-tolerance`."""
    change = after / before - 1 if before else 0.0
    return change, change <= -cut and qa_low > -tolerance


def memory_by_instance(rows: list[dict[str, Any]]) -> dict[str, float]:
    """How the GRPO writer's memory differs from the warm start's instance by instance: how
    many instances shrank or grew, and the paired interval of the token difference. The mean's
    cut can come from one instance (a warm start that loops to its cap on one input and a GRPO
    writer that does not), which this shows where the mean alone would not."""
    tokens: dict[str, dict[str, float]] = {}
    for row in rows:
        tokens.setdefault(row["method"], {})[row["instance_id"]] = row["memory_tokens"]
    ids = sorted(tokens["sft"])
    after, before = [tokens["sft+grpo"][i] for i in ids], [tokens["sft"][i] for i in ids]
    d = paired_difference(after, before)
    return {
        "instances": len(ids),
        "smaller": sum(a < b for a, b in zip(after, before, strict=True)),
        "larger": sum(a > b for a, b in zip(after, before, strict=True)),
        "diff_tokens": d["diff"],
        "low": d["low"],
        "high": d["high"],
    }


def per_instance_scores(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Writer → instance → mean score over its questions (the quickstart has one scale)."""
    out: dict[str, dict[str, float]] = {}
    for (method, _, inst), qs in by_instance(rows).items():
        out.setdefault(method, {})[inst] = mean(q["score"] for q in qs)
    return out


def _verdict(d: dict[str, float]) -> str:
    if d["low"] > 0:
        return "better, beyond noise"
    if d["high"] < 0:
        return "worse, beyond noise"
    return "no difference beyond noise"


def _load_state(out: Path) -> dict[str, Any]:
    path = out / STATE
    return json.loads(path.read_text("utf-8")) if path.is_file() else {}


def _save_state(out: Path, state: dict[str, Any]) -> None:
    tmp = out / (STATE + ".tmp")
    tmp.write_text(json.dumps(state, indent=1), "utf-8")
    os.replace(tmp, out / STATE)
