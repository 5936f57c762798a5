"""The local GRPO trainer: rollout batch → samples → group advantages → clipped update, with
validation, checkpoints (last K + best), exact resume and metrics as JSONL (+ TensorBoard when
installed).

Exact resume: every random choice of step s (data order, sampling, mini-batch order) is drawn
from a seed derived from (seed, s), and a checkpoint holds the weights, optimizer and scheduler.
A run killed after checkpoint c and resumed therefore repeats steps c+1, c+2, … exactly as an
uninterrupted run would (bit-for-bit on the same machine and thread count).
"""

from __future__ import annotations

import json
import random
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from memalpha.agent import MemoryAgent, build_agent, check_trained_layout, selective_teacher
from memalpha.aim import announcing_chunks
from memalpha.config import check_resumable, save_run_config
from memalpha.data import Instance
from memalpha.errors import ConfigError
from memalpha.llm import SamplingParams, pin_threads
from memalpha.reader import build_judge, build_reader
from memalpha.reward import sample_reward
from memalpha.rl.advantages import GroupBy, group_advantages, group_keys, share_with_spread
from memalpha.rl.branches import Guide, branch_records, branch_rollout, branch_stats
from memalpha.rl.checkpoint import (
    list_checkpoints,
    load_optimizer,
    prune,
    read_state,
    save_checkpoint,
)
from memalpha.rl.config import TrainConfig
from memalpha.rl.parts import (
    batch_indices,
    load_instances,
    make_optimizer,
    seed_everything,
    step_seed,
)
from memalpha.rl.policy import Policy, uses_bf16
from memalpha.rl.update import grpo_update, on_policy, recompute_old_logprobs
from memalpha.rollout import (
    Rollout,
    Sample,
    Scoring,
    Trajectory,
    anchor_stats,
    by_source,
    id_offsets,
    rollout,
    summarize,
    to_samples,
)
from memalpha.tokens import make_token_counter

Event = dict[str, Any]
METRICS = "metrics.jsonl"
BRANCHES = "branches.jsonl"  # branch groups: one record per response (`branch_records`)
RESUMABLE_CHANGES = ("schedule.steps", "out_dir")  # may change between a run and its resumption


class StepLog:
    """A JSONL file of records that each name their `step`. Opening it for a run resumed
    after step `keep_until` drops the records of later steps, which the run will redo (-1: a
    fresh start keeps none)."""

    def __init__(self, path: Path, keep_until: int) -> None:
        self.path = path
        kept = [r for r in read_step_log(path) if r["step"] <= keep_until]
        path.write_text("".join(json.dumps(r) + "\n" for r in kept), "utf-8")

    def write(self, records: list[Event]) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)


def read_step_log(path: Path) -> list[Event]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


class MetricsLog:
    """metrics.jsonl (one record per train or val step) and TensorBoard scalars if available."""

    def __init__(self, run_dir: Path, keep_until: int) -> None:
        self.file = StepLog(run_dir / METRICS, keep_until)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=keep_until + 1)
        except ImportError:  # tensorboard not installed: JSONL only
            self.tb = None

    def write(self, record: Event) -> None:
        self.file.write([record])
        if self.tb is not None:
            for key, value in record.items():
                if isinstance(value, int | float) and key != "step":
                    self.tb.add_scalar(f"{record['kind']}/{key}", value, record["step"])

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def read_metrics(run_dir: Path) -> list[Event]:
    return read_step_log(Path(run_dir) / METRICS)


def trained_chunks(
    samples: list[Sample],
    advantages: list[float],
    trajectories: list[Trajectory],
    which: str,
) -> tuple[list[Sample], list[float]]:
    """The samples (and their advantages) the update trains on under `ppo.train_chunks`:
    every one, or only those of chunks that announce a change (`aim.announcing_chunks`)."""
    if which == "all":
        return samples, advantages
    announcing = [announcing_chunks(t.instance) for t in trajectories]
    kept = [
        (s, a)
        for s, a in zip(samples, advantages, strict=True)
        if s.chunk_index in announcing[s.trajectory]
    ]
    return [s for s, _ in kept], [a for _, a in kept]


@dataclass(slots=True)
class _Run:
    """What one training run holds while it runs (built by `Trainer._start`)."""

    policy: Policy
    ref: torch.nn.Module | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    train: list[Instance]
    val: list[Instance]
    scoring: Scoring
    agent: MemoryAgent
    log: MetricsLog
    branch_log: StepLog | None  # branches.jsonl, for branch groups (ppo.group_by: branch)
    state: dict[str, Any]
    start: int
    to_close: list[Any]
    engine: Any = None  # rollout.engine vllm: the VllmEngine that generates; else the policy

    @property
    def generator(self) -> Any:
        """What rollouts and validation generate with."""
        return self.engine if self.engine is not None else self.policy.llm


def rollout_engine(cfg: TrainConfig, policy: Policy) -> Any:
    """The vLLM engine of `rollout.engine: vllm`, holding the policy's current weights; None
    for the transformers engine (the policy generates itself).

    Raises:
        ConfigError: vLLM with LoRA (the engine needs whole weights) or vLLM missing.
    """
    if cfg.rollout.engine != "vllm":
        return None
    if policy.lora is not None:
        raise ConfigError("rollout.engine 'vllm' needs full fine-tuning: set lora.enabled=false")
    from memalpha.llm import VllmEngine

    engine = VllmEngine(
        policy.folder,
        device=policy.device,
        dtype="bfloat16" if policy.bf16 else "float32",
        max_model_len=cfg.rollout.engine_max_model_len,
        memory_utilization=cfg.rollout.engine_memory_utilization,
        name=cfg.policy.model,
        chat_template_kwargs=cfg.policy.chat_template_kwargs,
    )
    engine.reload(policy.model.named_parameters())  # a resumed run's weights, exactly
    return engine


class Trainer:
    """Runs (or resumes) one training run in `cfg.out_dir`.

    Args:
        cfg: the run's config.
        on_event: called with every train/val record and checkpoint (progress display).
        fresh: start over even if the run directory holds checkpoints.
        deadline: a `time.monotonic()` instant: after a step, if the next one (as long as the
            slowest so far) would end past it, save a checkpoint and stop early. A time-boxed
            run (the quickstart) stays resumable and its last checkpoint is its result.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        on_event: Callable[[Event], None] | None = None,
        *,
        fresh: bool = False,
        deadline: float | None = None,
    ) -> None:
        self.cfg = cfg
        self.deadline = deadline
        self.on_event = on_event or (lambda e: None)
        self.run_dir = cfg.out_dir
        self.fresh = fresh
        self.counter = make_token_counter(cfg.memory.tokenizer)

    def _prepare_dir(self) -> Path | None:
        """Pin the thread count (rollouts write greedily and sample under it, and a resumed
        run must too); check the run directory against the config; the checkpoint to
        resume, if any."""
        self.cfg = self.cfg.model_copy(update={"threads": pin_threads(self.cfg.threads)})
        self.run_dir.mkdir(parents=True, exist_ok=True)
        ckpts = [] if self.fresh else list_checkpoints(self.run_dir)
        if ckpts:
            check_resumable(self.run_dir, self.cfg, RESUMABLE_CHANGES)
        save_run_config(self.run_dir, self.cfg)
        return ckpts[-1] if ckpts else None

    def _policy(self, resume: Path | None) -> Policy:
        """The policy, from the checkpoint to resume or the configured model."""
        cfg = self.cfg
        lora_resume = resume is not None and cfg.lora.enabled
        seed_everything(cfg.seed)  # LoRA's initial adapters are random: same seed, same run
        # full fine-tuning resumes from the saved weights; LoRA from the base + saved adapters
        policy = Policy(
            cfg.policy,
            cfg.lora,
            folder=resume / "policy" if resume and not lora_resume else None,
            bf16=uses_bf16(cfg.ppo.autocast_bf16, cfg.policy.device),
        )
        if lora_resume:
            policy.load_adapter(resume / "adapter")
        policy.train_top_layers(cfg.train_layers)
        if cfg.ppo.gradient_checkpointing:
            policy.model.gradient_checkpointing_enable()
        return policy

    def _start(self) -> _Run:
        cfg = self.cfg
        check_trained_layout(cfg.policy.model, cfg.memory)
        resume = self._prepare_dir()
        train = load_instances(cfg.data.train, cfg.data.train_files, self.counter)
        val = load_instances(cfg.data.val, cfg.data.val_files, self.counter)
        if not train:
            raise ConfigError("data.train and data.train_files give no training instances")
        policy = self._policy(resume)
        ref = policy.reference() if cfg.ppo.kl_coef > 0 else None
        optimizer, scheduler = make_optimizer(policy.model, cfg.optim, cfg.schedule.steps)
        state: dict[str, Any] = {"best_step": None, "best_score": None}
        start = 0
        if resume is not None:
            load_optimizer(resume, optimizer, scheduler)
            state = read_state(resume)
            start = state.pop("step")
        reader, reader_llm = build_reader(cfg.reader, self.counter)
        judge, judge_llm = build_judge(cfg.judge)
        scoring = Scoring(reader, judge, cfg.reward, self.counter)
        # a fresh start keeps nothing, not even an earlier run's step-0 validation
        kept = start if resume is not None else -1
        log = MetricsLog(self.run_dir, keep_until=kept)
        branched = cfg.ppo.group_by is GroupBy.BRANCH
        branch_log = StepLog(self.run_dir / BRANCHES, keep_until=kept) if branched else None
        agent = build_agent(cfg.writer, self.counter, policy.prompt_tokens)
        engine = rollout_engine(cfg, policy)
        to_close = [x for x in (reader_llm, judge_llm, policy, engine) if x is not None]
        return _Run(
            policy,
            ref,
            optimizer,
            scheduler,
            train,
            val,
            scoring,
            agent,
            log,
            branch_log,
            state,
            start,
            to_close,
            engine,
        )

    def run(self) -> Path:
        """Train to `schedule.steps`; returns the run directory."""
        cfg = self.cfg
        run = self._start()
        self.on_event({"kind": "start", "step": run.start, "steps": cfg.schedule.steps})
        try:
            if run.start == 0 and cfg.schedule.val_before_train and run.val:
                self._validate(run, 0)
            slowest = 0.0
            for step in range(run.start + 1, cfg.schedule.steps + 1):
                began = time.monotonic()
                self._train_step(run, step)
                _advance_schedule(run.scheduler)
                validated = step % cfg.schedule.val_every == 0 or step == cfg.schedule.steps
                if validated and run.val:
                    self._validate(run, step)
                slowest = max(slowest, time.monotonic() - began)
                out_of_time = (
                    self.deadline is not None
                    and step < cfg.schedule.steps
                    and time.monotonic() + slowest > self.deadline
                )
                if validated or out_of_time or step % cfg.schedule.save_every == 0:
                    self._checkpoint(run, step)
                if out_of_time:
                    self.on_event({"kind": "stopped", "step": step, "steps": cfg.schedule.steps})
                    break
        finally:
            run.log.close()
            for closable in run.to_close:
                closable.close()
        return self.run_dir

    def _checkpoint(self, run: _Run, step: int) -> None:
        path = save_checkpoint(
            self.run_dir,
            step,
            run.policy,
            run.optimizer,
            run.scheduler,
            run.state,
            self.cfg.val_writer,
        )
        prune(self.run_dir, self.cfg.schedule.keep_last, run.state["best_step"])
        self.on_event({"kind": "checkpoint", "step": step, "path": str(path)})

    def _step_batch(self, run: _Run, step: int) -> tuple[list[Instance], SamplingParams, list[int]]:
        """The step's instances, its sampling and its instances' entry-id offsets
        (`rollout.max_id_offset`), all drawn from the step's seed."""
        cfg, r = self.cfg, self.cfg.rollout
        seed = step_seed(cfg.seed, step)
        seed_everything(seed)
        batch = [
            run.train[i]
            for i in batch_indices(len(run.train), r.instances_per_step, cfg.seed, step)
        ]
        sampling = cfg.writer.sampling(r.temperature, top_p=r.top_p, seed=seed, logprobs=True)
        return batch, sampling, id_offsets(len(batch), r.max_id_offset, seed)

    def _rollout(self, run: _Run, step: int) -> tuple[Rollout, list[Sample], Event, list[Event]]:
        """The step's rollouts, their training samples, what to log about their groups, and
        one record per sample of branch groups (`branch_records`; none for trajectory
        groups): G trajectories per instance, or branch groups (`ppo.group_by: branch`)."""
        cfg, r = self.cfg, self.cfg.rollout
        batch, sampling, offsets = self._step_batch(run, step)
        write = (run.agent, run.generator, sampling, batch, r.group_size, cfg.memory, run.scoring)
        if cfg.ppo.group_by is GroupBy.BRANCH:
            branched = branch_rollout(*write, cfg.ppo.branch_chunks, self._guide(run), offsets)
            records = branch_records(branched)
            return branched.trunks, branched.samples, branch_stats(branched), records
        done = rollout(*write, greedy_anchor=r.greedy_anchor, id_offsets=offsets)
        groups: Event = {
            # the QA signal GRPO can learn from: instances whose G rollouts got different r1
            "instances_with_qa_variance": share_with_spread(
                [s.qa for s in done.scores], [t.group for t in done.trajectories]
            ),
            **anchor_stats(done.trajectories, done.scores),
        }
        return done, to_samples(done.trajectories, done.scores), groups, []

    def _guide(self, run: _Run) -> Guide | None:
        """`ppo.branch_guide`: the selective rule writer of the policy's writer config
        (`selective_teacher`: its format, its id order), answering in the policy's token ids."""
        if self.cfg.ppo.branch_guide == "none":
            return None
        return Guide(selective_teacher(self.cfg.writer), run.policy.response_ids)

    def _with_old_logprobs(self, run: _Run, samples: list[Sample]) -> list[Sample]:
        """Behaviour log-probs where the sampler gave none (greedy anchors: scored at the
        sampling temperature) or cannot give the right ones (top-p, or asked to). None are
        needed when the update is on-policy: it takes them from its own forward."""
        r = self.cfg.rollout
        if on_policy(self.cfg.ppo, len(samples)):
            return samples
        # vLLM's kernels are not the trainer's: its log-probs are recomputed, as verl does
        redo = self.cfg.ppo.recompute_old_logprobs or r.top_p < 1 or r.engine == "vllm"
        missing = [i for i, s in enumerate(samples) if redo or s.old_logprobs is None]
        if not missing:
            return samples
        fresh = recompute_old_logprobs(
            run.policy, [samples[i] for i in missing], self.cfg.ppo.micro_batch_size, r.temperature
        )
        out = samples[:]
        for i, s in zip(missing, fresh, strict=True):
            out[i] = s
        return out

    def _train_step(self, run: _Run, step: int) -> None:
        cfg = self.cfg
        done, samples, groups, branches = self._rollout(run, step)
        keys = group_keys(
            [s.group for s in samples], [s.chunk_index for s in samples], cfg.ppo.group_by
        )
        scores = [sample_reward(s.terms.total, s.finish_reason, cfg.reward) for s in samples]
        advantages = group_advantages(scores, keys, scale_by_std=cfg.ppo.scale_by_std)
        if run.branch_log is not None:  # one record per sample, in the samples' order
            run.branch_log.write(
                [
                    {"step": step, **b, "score": x, "advantage": a}
                    for b, x, a in zip(branches, scores, advantages, strict=True)
                ]
            )
        rolled = len(samples)
        samples, advantages = trained_chunks(
            samples, advantages, done.trajectories, cfg.ppo.train_chunks
        )
        started = time.perf_counter()
        samples = self._with_old_logprobs(run, samples)
        stats = grpo_update(
            run.policy,
            run.ref,
            run.optimizer,
            samples,
            advantages,
            cfg.ppo,
            cfg.optim.grad_clip,
            cfg.rollout.temperature,
            random.Random(step_seed(cfg.seed, step)),
        )
        reload_started = time.perf_counter()
        if run.engine is not None:  # the engine samples the next step with the new weights
            run.engine.reload(run.policy.model.named_parameters())
        reload_s = time.perf_counter() - reload_started
        record = {
            "step": step,
            "kind": "train",
            **summarize(done.trajectories, done.scores),
            **stats,
            "samples": rolled,
            "samples_trained": len(samples),
            "groups_with_variance": share_with_spread(scores, keys),
            **groups,
            "lr": run.optimizer.param_groups[0]["lr"],
            "time_generation": done.timings.generation,
            "time_reader": done.timings.reader,
            "time_judge": done.timings.judge,
            "time_update": time.perf_counter() - started - reload_s,
            **({"time_engine_reload": reload_s} if run.engine is not None else {}),
        }
        run.log.write(record)
        self.on_event(record)

    def _validate(self, run: _Run, step: int) -> None:
        cfg = self.cfg
        writer = cfg.val_writer  # greedy, at the validation budget (the prompt states it)
        done = rollout(
            build_agent(writer, self.counter, run.policy.prompt_tokens),
            run.generator,
            writer.sampling(),
            run.val,
            1,
            cfg.memory,
            run.scoring,
        )
        record = {
            "step": step,
            "kind": "val",
            **summarize(done.trajectories, done.scores),
            **{f"qa/{src}": v for src, v in by_source(done.trajectories, done.scores).items()},
            "time_generation": done.timings.generation,
        }
        if run.state["best_score"] is None or record["r1_qa"] > run.state["best_score"]:
            run.state["best_score"], run.state["best_step"] = record["r1_qa"], step
        run.log.write(record)
        self.on_event(record)


def _advance_schedule(scheduler: torch.optim.lr_scheduler.LRScheduler) -> None:
    """One step of the lr schedule, whether or not this step updated the policy (a step where
    no branch group formed has no sample to train): lr follows the step count, which is what a
    resumed run rebuilds. torch warns when that happens before the first optimizer step; here
    it is meant."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=r"Detected call of `lr_scheduler\.step\(\)` before",
            category=UserWarning,
        )
        scheduler.step()
