"""`memalpha eval`: methods × instances (× length scales), one job per (method, scale,
instance), each job's per-question rows appended to `predictions.jsonl` as one fsynced block.
Up to `batch_instances` consecutive jobs of one method run together, so an LLM writer generates
their chunks in one batch and the reader answers all their questions in one call. A memory
method's final memory goes to `memories.jsonl` (one line per job, written before its rows; a
writer's line also holds each chunk's calls, `read_calls`), and
a conflict question's row records what that memory held of each changed fact its answer depends
on (`fates`: overwritten / both / old / lost, `Superseded.fate`), so a score can be traced to
the writer or the reader without writing the input again. The reader
remembers its greedy answers (`GreedyMemo`) within a process: with `workers` > 1, a question
asked of the same memory by two methods is read once per process that meets it.

Resume: a job whose rows are all in the file is not run again; a torn last line (a kill during
a write) is cut off. Parallelism: a process pool over those batches (each process builds the
reader and the methods once), or Ray actors when `ray_address` is set. Determinism: greedy
generation everywhere, and the summary is computed from rows sorted by key, so the order in
which jobs finish changes nothing in it; every process computes on the run's `threads` (greedy
bf16 writing differs with the count), each row records it, and a run resumes only under it.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from memalpha import metrics
from memalpha.config import RUN_CONFIG, check_resumable, save_run_config
from memalpha.data import Instance, build, read_instances
from memalpha.errors import ConfigError
from memalpha.eval.config import EvalConfig
from memalpha.eval.methods import Method, Recall, make_method
from memalpha.eval.reader import EvalReader
from memalpha.memory import ToolCall, snapshot_to_dict
from memalpha.tokens import TokenCounter, make_token_counter

PREDICTIONS = "predictions.jsonl"
MEMORIES = "memories.jsonl"
Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Job:
    method: str
    scale: int
    instance: Instance

    @property
    def key(self) -> tuple[str, int, str]:
        return self.method, self.scale, self.instance.id


@dataclass(frozen=True, slots=True)
class JobResult:
    """One job's question rows, and its final memory (exported) when the method keeps one."""

    rows: list[Row]
    memory: Row | None = None


def load_jobs(cfg: EvalConfig, counter: TokenCounter) -> list[Job]:
    """Every (method, scale, instance); instance files are taken as they are (scale 1)."""
    jobs = []
    for scale in cfg.scales:
        instances = [
            inst
            for spec in cfg.datasets
            for inst in build(
                spec.model_copy(update={"max_tokens": spec.max_tokens * scale}), counter
            )
        ]
        if scale == 1:
            instances += [i for path in cfg.files for i in read_instances(path, counter=counter)]
        jobs += [Job(m.name, scale, inst) for m in cfg.methods for inst in instances]
    return jobs


class Worker:
    """The reader and the methods of one config, built once per process."""

    def __init__(self, cfg: EvalConfig) -> None:
        from memalpha.llm import pin_threads

        self.cfg = cfg
        self.threads = pin_threads(cfg.threads)  # before any model runs in this process
        self.counter = make_token_counter()
        self.reader = EvalReader(cfg.reader, self.counter, cfg.reader_max_new_tokens)
        self.methods: dict[str, Method] = {}

    def close(self) -> None:
        for m in self.methods.values():
            m.close()
        self.reader.close()

    def run(self, jobs: list[Job]) -> list[JobResult]:
        """Each job's result; the jobs share one method and are recalled together."""
        name = jobs[0].method
        method = self.methods.get(name)
        if method is None:
            mcfg = next(m for m in self.cfg.methods if m.name == name)
            method = self.methods[name] = make_method(mcfg, self.counter, self.reader.llm)
        recalls = method.recall_many([j.instance for j in jobs])
        answers = self.reader.answer(
            [
                (r, [qa.question for qa in j.instance.questions], j.instance.data_source)
                for j, r in zip(jobs, recalls, strict=True)
            ]
        )
        return [
            JobResult(self._rows(j, method, r, a), _memory_line(j, r))
            for j, r, a in zip(jobs, recalls, answers, strict=True)
        ]

    def _rows(self, job: Job, method: Method, recall: Recall, predictions: list[str]) -> list[Row]:
        inst = job.instance
        input_tokens = sum(self.counter.count_many(inst.chunks))
        contents = recall.memory.contents() if recall.memory is not None else None
        rows = [
            {
                "method": job.method,
                "kind": method.cfg.kind,
                "scale": job.scale,
                "instance_id": inst.id,
                "data_source": inst.data_source,
                "competency": inst.competency.value,
                "question_id": qa.id,
                "question": qa.question,
                "gold": qa.answers,
                "prediction": pred,
                "score": metrics.score(inst.metric, pred, qa.answers),
                "memory_tokens": recall.memory_tokens,
                "input_tokens": input_tokens,
                "questions": len(inst.questions),
                "threads": self.threads,
            }
            for qa, pred in zip(inst.questions, predictions, strict=True)
        ]
        for row, qa in zip(rows, inst.questions, strict=True):
            if qa.qtype:  # e.g. single_hop / multi_hop: what the reader must do to answer
                row["qtype"] = qa.qtype
            if contents is not None and qa.superseded:
                row["fates"] = [change.fate(contents) for change in qa.superseded]
        return rows


def _memory_line(job: Job, recall: Recall) -> Row | None:
    """The line of `memories.jsonl` for a job (None: the method keeps no memory)."""
    if recall.memory is None:
        return None
    line = {
        "method": job.method,
        "scale": job.scale,
        "instance_id": job.instance.id,
        "memory": snapshot_to_dict(recall.memory.snapshot()),
    }
    if recall.episode is not None:  # each chunk's calls, so a fact can be followed chunk by chunk
        line["calls"] = [
            [{"name": r.call.name, "arguments": r.call.arguments} for r in step.results]
            for step in recall.episode.steps
        ]
    return line


def batches(jobs: list[Job], size: int) -> list[list[Job]]:
    """Consecutive jobs of one method at one scale, at most `size` per batch (jobs come scale by
    scale, method by method). Why one scale: a batch is written in lock-step, so a 1x instance
    batched with 16x ones pads beside them (greedy bf16 output depends on the batch) and a
    one-method run's scales would all go to one worker."""
    out: list[list[Job]] = []
    for job in jobs:
        last = out[-1][0] if out else None
        if last and (last.method, last.scale) == (job.method, job.scale) and len(out[-1]) < size:
            out[-1].append(job)
        else:
            out.append([job])
    return out


_WORKER: Worker | None = None


def _shipped(cfg: EvalConfig) -> str:
    """The config as another process rebuilds it: the keys it sets, only. A method's writer
    is its policy's recorded `writer.json` under the writer keys the method sets itself
    (`MethodConfig.writer`); dumped whole, every key would read as set, and the defaults
    would replace what the policy recorded (its prompt, format, memory view, budget)."""
    return cfg.model_dump_json(exclude_unset=True)


def _init_worker(cfg_json: str, parent: int) -> None:
    global _WORKER
    _exit_with(parent)
    _WORKER = Worker(EvalConfig.model_validate_json(cfg_json))


def _exit_with(parent: int, every_s: float = 1.0) -> None:
    """End this worker process once `parent` (the `memalpha eval` that started it) is gone. A
    killed eval runs no cleanup, and its pool's workers went on writing batches whose rows
    nobody would keep, for an hour, on the cores the resumed run needed."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _run_batch(jobs: list[Job]) -> list[JobResult]:
    assert _WORKER is not None
    return _WORKER.run(jobs)


def _append(f, rows: list[Row]) -> None:
    """The rows as one fsynced block of JSON lines."""
    f.write("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    f.flush()
    os.fsync(f.fileno())


def read_memories(run_dir: Path) -> dict[tuple[str, int, str], Row]:
    """(method, scale, instance id) → the exported final memory; a job redone after a kill
    keeps its last line. Jobs written before memories were kept have none."""
    return {
        (m["method"], m["scale"], m["instance_id"]): m["memory"]
        for m in read_rows(run_dir / MEMORIES)
    }


def read_calls(run_dir: Path) -> dict[tuple[str, int, str], list[list[ToolCall]]]:
    """(method, scale, instance id) → each chunk's calls as the writer made them, in order
    (`memalpha.aim.episode_fates` replays them); a job redone after a kill keeps its last line.
    Jobs of methods that write no calls, or written before calls were kept, have none."""
    return {
        (m["method"], m["scale"], m["instance_id"]): [
            [ToolCall(c["name"], c["arguments"]) for c in chunk] for chunk in m["calls"]
        ]
        for m in read_rows(run_dir / MEMORIES)
        if "calls" in m
    }


def read_rows(path: Path) -> list[Row]:
    """The complete rows of a predictions file; a torn last line is cut from the file."""
    if not path.is_file():
        return []
    data = path.read_bytes()
    good = data[: data.rfind(b"\n") + 1]
    if len(good) != len(data):
        with path.open("r+b") as f:
            f.truncate(len(good))
    return [json.loads(line) for line in good.decode("utf-8").splitlines() if line.strip()]


def done_keys(rows: list[Row]) -> set[tuple[str, int, str]]:
    """Jobs all of whose questions have a row (a job cut short by a kill is redone)."""
    seen: dict[tuple[str, int, str], set[str]] = {}
    need: dict[tuple[str, int, str], int] = {}
    for r in rows:
        key = (r["method"], r["scale"], r["instance_id"])
        seen.setdefault(key, set()).add(r["question_id"])
        need[key] = r["questions"]
    return {k for k, ids in seen.items() if len(ids) >= need[k]}


def _saved_method_names(out: Path) -> set[str]:
    """The methods of the run saved in `out` (none if its config is unreadable: the check
    that follows names that problem)."""
    try:
        saved = yaml.safe_load((out / RUN_CONFIG).read_text("utf-8"))
        return {m["name"] for m in saved["methods"]}
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return set()


def _prepare(cfg: EvalConfig, fresh: bool) -> tuple[EvalConfig, Path]:
    """The config as the run keeps it (its thread count resolved, unless Ray's machines each
    decide theirs), checked against the one the run in `out_dir` started with; the
    predictions file."""
    from memalpha.llm import pin_threads

    out = cfg.out_dir
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads is None and not cfg.ray_address:
        cfg = cfg.model_copy(update={"threads": pin_threads(None)})
    if fresh:
        (out / PREDICTIONS).unlink(missing_ok=True)
        (out / MEMORIES).unlink(missing_ok=True)
    elif (out / PREDICTIONS).is_file():
        kept = [m for m in cfg.methods if m.name in _saved_method_names(out)]
        # fan-out and pools may change on resume, and methods may be added: rows are keyed
        # by method, and pools change the summary only; a run directory copied elsewhere (to
        # add methods beside a finished run and keep it as it was) resumes from the copy
        volatile = ("workers", "ray_address", "pools", "out_dir")
        check_resumable(out, cfg.model_copy(update={"methods": kept}), volatile)
    save_run_config(out, cfg, only_set=True)  # rerunnable: policies' writers as recorded
    return cfg, out / PREDICTIONS


def _results(cfg: EvalConfig, jobs: list[Job]) -> Iterator[JobResult]:
    """Each job's result, as its batch finishes."""
    todo = batches(jobs, cfg.batch_instances)
    if cfg.ray_address:
        yield from _ray_results(cfg, todo)
    elif cfg.workers == 1:
        worker = Worker(cfg)
        try:
            for batch in todo:
                yield from worker.run(batch)
        finally:
            worker.close()
    else:
        # spawn, not fork: a forked copy of a process whose torch thread pools are running
        # can deadlock
        with ProcessPoolExecutor(
            cfg.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(_shipped(cfg), os.getpid()),
        ) as pool:
            for future in as_completed([pool.submit(_run_batch, b) for b in todo]):
                yield from future.result()


def _ray_results(cfg: EvalConfig, todo: list[list[Job]]) -> Iterator[JobResult]:
    try:
        import ray
    except ImportError:
        raise ConfigError("ray_address is set but ray is not installed (pip install ray)") from None
    ray.init(address=cfg.ray_address, ignore_reinit_error=True, log_to_driver=False)

    @ray.remote
    class RayWorker:
        def __init__(self, cfg_json: str) -> None:
            self.worker = Worker(EvalConfig.model_validate_json(cfg_json))

        def run(self, jobs: list[Job]) -> list[JobResult]:
            return self.worker.run(jobs)

    actors = [RayWorker.remote(_shipped(cfg)) for _ in range(cfg.workers)]
    pending = [actors[i % len(actors)].run.remote(b) for i, b in enumerate(todo)]
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        yield from ray.get(ready[0])


def run_eval(
    cfg: EvalConfig,
    *,
    fresh: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Run what is not done yet; write the summary; returns the run directory."""
    from memalpha.eval.summary import write_summary

    cfg, path = _prepare(cfg, fresh)
    counter = make_token_counter()
    jobs = load_jobs(cfg, counter)
    done = done_keys(read_rows(path))
    todo = [j for j in jobs if j.key not in done]
    report = on_progress or (lambda done, total: None)
    report(len(jobs) - len(todo), len(jobs))
    with (
        path.open("a", encoding="utf-8") as f,
        (cfg.out_dir / MEMORIES).open("a", encoding="utf-8") as mem,
    ):
        for n, result in enumerate(_results(cfg, todo), 1):
            if result.memory is not None:  # before the rows: a job with rows has its memory
                _append(mem, [result.memory])
            _append(f, result.rows)
            report(len(jobs) - len(todo) + n, len(jobs))
    keys = {j.key for j in jobs}
    rows = [r for r in read_rows(path) if (r["method"], r["scale"], r["instance_id"]) in keys]
    write_summary(cfg.out_dir, rows, cfg.pools)
    return cfg.out_dir
