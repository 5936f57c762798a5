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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memalpha.config import check_resumable, save_run_config
from memalpha.errors import ConfigError
from memalpha.llm import SamplingParams
from memalpha.rl.advantages import group_advantages, group_keys, share_with_spread
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
    make_agent,
    make_greedy_agent,
    make_judge,
    make_optimizer,
    make_reader,
    seed_everything,
    step_seed,
)
from memalpha.rl.policy import Policy
from memalpha.rl.update import TokenSample, grpo_update, recompute_old_logprobs
from memalpha.rollout import anchor_stats, by_source, rollout, summarize, to_samples
from memalpha.tokens import make_token_counter

Event = dict[str, Any]
METRICS = "metrics.jsonl"
RESUMABLE_CHANGES = ("schedule.steps", "out_dir")  # may change between a run and its resumption


class MetricsLog:
    """metrics.jsonl (one record per train or val step) and TensorBoard scalars if available."""

    def __init__(self, run_dir: Path, keep_until: int) -> None:
        self.path = run_dir / METRICS
        kept = [r for r in read_metrics(run_dir) if r["step"] <= keep_until]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept), "utf-8")
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=keep_until + 1)
        except ImportError:  # tensorboard not installed: JSONL only
            self.tb = None

    def write(self, record: Event) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self.tb is not None:
            for key, value in record.items():
                if isinstance(value, int | float) and key != "step":
                    self.tb.add_scalar(f"{record['kind']}/{key}", value, record["step"])

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def read_metrics(run_dir: Path) -> list[Event]:
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


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
        """Check the run directory against the config; the checkpoint to resume, if any."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        ckpts = [] if self.fresh else list_checkpoints(self.run_dir)
        if ckpts:
            check_resumable(self.run_dir, self.cfg, RESUMABLE_CHANGES)
        save_run_config(self.run_dir, self.cfg)
        return ckpts[-1] if ckpts else None

    def run(self) -> Path:
        """Train to `schedule.steps`; returns the run directory."""
        cfg = self.cfg
        resume = self._prepare_dir()
        train = load_instances(cfg.data.train, cfg.data.train_files, self.counter)
        val = load_instances(cfg.data.val, cfg.data.val_files, self.counter)
        if not train:
            raise ConfigError("data.train and data.train_files give no training instances")
        lora_resume = resume is not None and cfg.lora.enabled
        seed_everything(cfg.seed)  # LoRA's initial adapters are random: same seed, same run
        # full fine-tuning resumes from the saved weights; LoRA from the base + saved adapters
        policy = Policy(
            cfg.policy, cfg.lora, folder=resume / "policy" if resume and not lora_resume else None
        )
        if lora_resume:
            policy.load_adapter(resume / "adapter")
        if cfg.train_layers is not None:
            if policy.lora is not None:
                raise ConfigError("train_layers and lora.enabled exclude each other")
            policy.freeze_below(cfg.train_layers)
        if cfg.ppo.gradient_checkpointing:
            policy.model.gradient_checkpointing_enable()
        ref = policy.reference() if cfg.ppo.kl_coef > 0 else None
        optimizer, scheduler = make_optimizer(policy.model, cfg.optim, cfg.schedule.steps)
        state: dict[str, Any] = {"best_step": None, "best_score": None}
        start = 0
        if resume is not None:
            load_optimizer(resume, optimizer, scheduler)
            state = read_state(resume)
            start = state.pop("step")
        reader, reader_llm = make_reader(cfg.reader, self.counter)
        judge, judge_llm = make_judge(cfg.judge)
        # a fresh start keeps nothing, not even an earlier run's step-0 validation
        log = MetricsLog(self.run_dir, keep_until=start if resume is not None else -1)
        self.on_event({"kind": "start", "step": start, "steps": cfg.schedule.steps})
        try:
            if start == 0 and cfg.schedule.val_before_train and val:
                self._validate(policy, val, reader, judge, 0, log, state)
            slowest = 0.0
            for step in range(start + 1, cfg.schedule.steps + 1):
                began = time.monotonic()
                self._train_step(policy, ref, optimizer, train, reader, judge, step, log)
                scheduler.step()
                validated = step % cfg.schedule.val_every == 0 or step == cfg.schedule.steps
                if validated and val:
                    self._validate(policy, val, reader, judge, step, log, state)
                slowest = max(slowest, time.monotonic() - began)
                out_of_time = (
                    self.deadline is not None
                    and step < cfg.schedule.steps
                    and time.monotonic() + slowest > self.deadline
                )
                if validated or out_of_time or step % cfg.schedule.save_every == 0:
                    path = save_checkpoint(self.run_dir, step, policy, optimizer, scheduler, state)
                    prune(self.run_dir, cfg.schedule.keep_last, state["best_step"])
                    self.on_event({"kind": "checkpoint", "step": step, "path": str(path)})
                if out_of_time:
                    self.on_event({"kind": "stopped", "step": step, "steps": cfg.schedule.steps})
                    break
        finally:
            log.close()
            for llm in (reader_llm, judge_llm):
                if llm is not None:
                    llm.close()
            policy.close()
        return self.run_dir

    def _train_step(self, policy, ref, optimizer, train, reader, judge, step, log) -> None:
        cfg = self.cfg
        seed = step_seed(cfg.seed, step)
        seed_everything(seed)
        batch = [
            train[i]
            for i in batch_indices(len(train), cfg.rollout.instances_per_step, cfg.seed, step)
        ]
        r = cfg.rollout
        sampling = SamplingParams(
            temperature=r.temperature,
            top_p=r.top_p,
            max_new_tokens=r.max_new_tokens,
            seed=seed,
            logprobs=True,
        )
        agent = make_agent(policy.llm, cfg.format, cfg.memory, sampling, self.counter, cfg.prompt)
        anchor = None
        if r.greedy_anchor:
            anchor = make_greedy_agent(policy.llm, cfg, self.counter)
        trajectories, timings = rollout(
            agent, batch, r.group_size, cfg.memory, self.counter, reader, judge, cfg.reward, anchor
        )
        samples = to_samples(trajectories)
        keys = group_keys(
            [s.trajectory // r.group_size for s in samples],
            [s.chunk_index for s in samples],
            cfg.ppo.group_by,
        )
        scores = [s.terms.total for s in samples]
        advantages = group_advantages(scores, keys)
        tokens = [
            TokenSample(
                policy.prompt_ids(s.messages),
                list(s.response_ids),
                list(s.old_logprobs) if s.old_logprobs is not None else None,
                a,
            )
            for s, a in zip(samples, advantages, strict=True)
        ]
        started = time.perf_counter()
        # greedy anchors come without behaviour log-probs: score them at the sampling temperature
        redo = cfg.ppo.recompute_old_logprobs or r.top_p < 1
        missing = [i for i, t in enumerate(tokens) if redo or t.old_logprobs is None]
        if missing:
            fresh = recompute_old_logprobs(
                policy, [tokens[i] for i in missing], cfg.ppo.micro_batch_size, r.temperature
            )
            for i, t in zip(missing, fresh, strict=True):
                tokens[i] = t
        stats = grpo_update(
            policy,
            ref,
            optimizer,
            tokens,
            cfg.ppo,
            cfg.optim.grad_clip,
            r.temperature,
            random.Random(seed),
        )
        update_s = time.perf_counter() - started
        record = {
            "step": step,
            "kind": "train",
            **summarize(trajectories),
            **stats,
            "samples": len(samples),
            "groups_with_variance": share_with_spread(scores, keys),
            # the QA signal GRPO can learn from: instances whose G rollouts got different r1
            "instances_with_qa_variance": share_with_spread(
                [t.r1 for t in trajectories],
                [i // r.group_size for i in range(len(trajectories))],
            ),
            **anchor_stats(trajectories, r.group_size),
            "lr": optimizer.param_groups[0]["lr"],
            "time_generation": timings.generation,
            "time_reader": timings.reader,
            "time_judge": timings.judge,
            "time_update": update_s,
        }
        log.write(record)
        self.on_event(record)

    def _validate(self, policy, val, reader, judge, step, log, state) -> None:
        cfg = self.cfg
        agent = make_greedy_agent(policy.llm, cfg, self.counter, cfg.val_max_new_tokens)
        trajectories, timings = rollout(
            agent, val, 1, cfg.memory, self.counter, reader, judge, cfg.reward
        )
        record = {
            "step": step,
            "kind": "val",
            **summarize(trajectories),
            **{f"qa/{src}": v for src, v in by_source(trajectories).items()},
            "time_generation": timings.generation,
        }
        if state["best_score"] is None or record["r1_qa"] > state["best_score"]:
            state["best_score"], state["best_step"] = record["r1_qa"], step
        log.write(record)
        self.on_event(record)
