"""The whole GRPO loop on a tiny random model: learning, exact resume after SIGKILL, KL and
LoRA paths, checkpoints, plots, and the log-probs the update relies on."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
import yaml

from memalpha.agent import read_writer_config
from memalpha.config import load_config
from memalpha.errors import ConfigError
from memalpha.llm import ModelConfig, SamplingParams
from memalpha.llm.local import TransformersLLM
from memalpha.reward import combine
from memalpha.rl.checkpoint import list_checkpoints, read_state
from memalpha.rl.config import PPOConfig, SFTConfig, TrainConfig
from memalpha.rl.plot import plot_run
from memalpha.rl.policy import Policy, pad_batch, response_logprobs
from memalpha.rl.sft import run_sft, write_transcripts
from memalpha.rl.trainer import Trainer, read_metrics
from memalpha.rl.update import grpo_update, on_policy, recompute_old_logprobs, sft_step
from memalpha.rollout import Sample
from tiny import tiny_config


def _train(tiny_model, tiny_data, out_dir, **overrides):
    cfg = TrainConfig.model_validate(tiny_config(tiny_model, tiny_data, out_dir, **overrides))
    Trainer(cfg).run()
    return read_metrics(out_dir)


def test_reward_rises_on_the_tiny_task(tiny_model, tiny_data, tmp_path):
    # 14 steps: since each chunk samples with its own seed (SamplingParams.for_chunk), the
    # run's random stream is not the one the earlier 10-step threshold was set on
    records = _train(tiny_model, tiny_data, tmp_path / "run", **{"schedule.steps": 14})
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == list(range(1, 15))
    first, last = train[:2], train[-4:]
    mean = lambda rs, k: sum(r[k] for r in rs) / len(rs)  # noqa: E731
    assert mean(last, "reward") > mean(first, "reward") + 0.25
    assert mean(last, "r1_qa") >= 0.75  # the policy learned to store "alpha"
    # r1 rose, so some instance's rollouts disagreed on QA on the way: the logged signal
    assert all(0 <= r["instances_with_qa_variance"] <= 1 for r in train)
    assert max(r["instances_with_qa_variance"] for r in train) > 0
    assert not (tmp_path / "run" / "branches.jsonl").exists()  # trajectory groups: no branches
    val = [r for r in records if r["kind"] == "val"]
    # the greedy validation of a tiny policy at lr 0.02 flips between steps, and where it flips
    # depends on the CPU's arithmetic (bf16 autocast where native, float32 elsewhere: on an AVX2
    # machine step 14 read 0 after 1.0 at steps 10 and 12), so its second half, not its last
    # point, must lie above where it started
    later = [r["r1_qa"] for r in val[len(val) // 2 :]]
    assert val[0]["step"] == 0 and sum(later) / len(later) > val[0]["r1_qa"]


def test_checkpoints_keep_last_and_best(tiny_model, tiny_data, tmp_path):
    run = tmp_path / "run"
    _train(tiny_model, tiny_data, run, **{"schedule.steps": 6, "schedule.keep_last": 1})
    kept = [p.name for p in list_checkpoints(run)]
    state = read_state(list_checkpoints(run)[-1])
    best = f"step_{state['best_step']:06d}"
    assert kept[-1] == "step_000006"
    assert set(kept) <= {best, "step_000006"} and len(kept) == len(
        {best, "step_000006"} - {"step_000000"}
    )
    # a checkpoint's policy is an ordinary HF folder any backend loads
    llm = TransformersLLM(list_checkpoints(run)[-1] / "policy")
    messages = [{"role": "user", "content": "hi"}]
    (gen,) = llm.generate([messages], SamplingParams(max_new_tokens=2))
    assert gen.token_ids
    # the ids it was generated from travel with it: nothing downstream re-tokenises a prompt
    text = llm.render(messages)
    assert list(gen.prompt_ids) == llm.tokenizer(text, add_special_tokens=False)["input_ids"]
    # and the folder records how the policy writes, for whoever loads it
    cfg = TrainConfig.model_validate(tiny_config(tiny_model, tiny_data, run))
    assert read_writer_config(list_checkpoints(run)[-1] / "policy") == cfg.val_writer


def test_a_step_that_trains_nothing_still_advances_the_schedule_quietly(
    tiny_model, tiny_data, tmp_path
):
    """Branch groups form only at chunks that announce a change, and the code-word task has
    none: no step trains. The lr schedule still counts the steps (what a resumed run rebuilds),
    and torch's warning about a scheduler step before any optimizer step is not shown."""
    over = {
        "schedule.steps": 3,
        "ppo.group_by": "branch",
        "reward.aim_weight": 1.0,
        "optim.warmup_ratio": 1.0,
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = _train(tiny_model, tiny_data, tmp_path / "run", **over)
    train = [r for r in records if r["kind"] == "train"]
    assert [r["samples_trained"] for r in train] == [0, 0, 0]
    assert (tmp_path / "run" / "branches.jsonl").read_text() == ""  # no group, no response
    assert train[0]["lr"] < train[1]["lr"] < train[2]["lr"]  # warming up, step by step
    assert not [w for w in caught if "lr_scheduler" in str(w.message)]


def test_kill_and_resume_repeats_the_uninterrupted_run(tiny_model, tiny_data, tmp_path):
    """SIGKILL a CLI run right after its first checkpoint; the resumed run must then produce
    exactly the metrics of a run that was never interrupted."""
    # 4 steps: validated at 2 (before the kill) and at 4 (after the resume), as 8 steps were
    over = {"schedule.steps": 4, "schedule.save_every": 2, "schedule.val_every": 2}
    cfg_a = tiny_config(tiny_model, tiny_data, tmp_path / "a", **over)
    cfg_b = tiny_config(tiny_model, tiny_data, tmp_path / "b", **over)
    Trainer(TrainConfig.model_validate(cfg_a)).run()
    path = tmp_path / "b.yaml"
    path.write_text(yaml.safe_dump(cfg_b))
    cmd = [sys.executable, "-m", "memalpha.cli", "train", "--config", str(path)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    first = tmp_path / "b" / "checkpoints" / "step_000002"
    deadline = time.time() + 120
    while not first.is_dir() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    killed_at = max(r["step"] for r in read_metrics(tmp_path / "b"))
    assert killed_at < 4
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resuming after step" in done.stderr

    def comparable(records):
        return [{k: v for k, v in r.items() if not k.startswith("time_")} for r in records]

    assert comparable(read_metrics(tmp_path / "b")) == comparable(read_metrics(tmp_path / "a"))


def test_kl_to_reference_and_lora(tiny_model, tiny_data, tmp_path):
    records = _train(
        tiny_model,
        tiny_data,
        tmp_path / "run",
        **{
            "schedule.steps": 2,
            "ppo.kl_coef": 0.1,
            "lora": {"enabled": True, "r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]},
        },
    )
    train = [r for r in records if r["kind"] == "train"]
    assert train[0]["kl"] == pytest.approx(0.0, abs=1e-6)  # first update: policy == reference
    assert train[1]["kl"] > 0  # after one update the adapters moved the policy away
    ckpt = list_checkpoints(tmp_path / "run")[-1]
    assert (ckpt / "adapter" / "adapter_config.json").is_file()
    assert not (ckpt / "policy" / "adapter_config.json").exists()  # merged for any backend


def test_greedy_anchor_is_trained_at_the_sampling_temperature(tiny_model, tiny_data, tmp_path):
    records = _train(
        tiny_model,
        tiny_data,
        tmp_path / "run",
        **{"schedule.steps": 2, "rollout.greedy_anchor": True, "rollout.temperature": 0.7},
    )
    train = [r for r in records if r["kind"] == "train"]
    for r in train:
        assert 0 <= r["anchor_r1"] <= 1
        assert 0 <= r["samples_above_anchor"] + r["samples_below_anchor"] <= 1
    # the update is on-policy: every behaviour log-prob, the anchors' too, is the update's own
    # forward at T = 0.7 (a T = 1 score would move this ratio)
    assert train[0]["ratio_mean"] == pytest.approx(1.0, abs=1e-4)
    assert train[0]["clip_fraction"] == pytest.approx(0.0, abs=1e-6)
    # without the anchor no anchor statistics are logged
    plain = _train(tiny_model, tiny_data, tmp_path / "plain", **{"schedule.steps": 1})
    assert "anchor_r1" not in plain[-1]


def test_loop_stop_cuts_rollouts_logs_them_and_is_recorded(tiny_model, tiny_data, tmp_path):
    # the random tiny model over 15 words repeats itself often within 24 tokens
    stop = {"min_span": 1, "max_span": 3, "repeats": 3, "max_mismatch": 0.0}
    common = {"schedule.steps": 1, "schedule.val_before_train": False}
    common["rollout.max_new_tokens"] = 24
    plain = _train(tiny_model, tiny_data, tmp_path / "plain", **common)[-1]
    cut = _train(tiny_model, tiny_data, tmp_path / "cut", **common, loop_stop=stop)[-1]
    assert plain["looped"] == 0 and 0 < cut["looped"] <= 1
    # the same samples, each cut back where its loop began: fewer tokens, fewer at the budget
    assert cut["response_tokens"] < plain["response_tokens"]
    assert cut["truncated"] < plain["truncated"]
    (step,) = list_checkpoints(tmp_path / "cut")
    assert read_writer_config(step / "policy").loop_stop.model_dump() == stop


def test_a_run_keeps_its_thread_count_and_resumes_only_under_it(
    tiny_model, tiny_data, tmp_path, restore_threads
):
    """Rollouts write greedily at validation and sample under the run's thread count, and
    greedy bf16 writing differs with it (benchmarks/RESULTS.md, "Groups of 8 at change
    chunks"): unset, the count found is kept in the run's config; a resume under another is
    refused by name."""
    torch.set_num_threads(1)
    _train(tiny_model, tiny_data, tmp_path / "run", **{"schedule.steps": 1})
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["threads"] == 1
    other = tiny_config(tiny_model, tiny_data, tmp_path / "run", **{"schedule.steps": 2})
    with pytest.raises(ConfigError, match=r"threads: 1 then, 2 now"):
        Trainer(TrainConfig.model_validate(other | {"threads": 2})).run()
    assert [r["step"] for r in read_metrics(tmp_path / "run") if r["kind"] == "train"] == [1]


def test_lora_run_resumes_exactly(tiny_model, tiny_data, tmp_path):
    """Under LoRA a resume reloads the base weights plus the saved adapters (and the optimizer
    over the adapters only); its next steps must repeat the uninterrupted run's."""
    over = {
        "schedule.save_every": 2,
        "schedule.val_every": 2,
        "ppo.kl_coef": 0.1,
        "lora": {"enabled": True, "r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]},
    }
    whole = _train(tiny_model, tiny_data, tmp_path / "a", **over, **{"schedule.steps": 4})
    _train(tiny_model, tiny_data, tmp_path / "b", **over, **{"schedule.steps": 2})
    resumed = _train(tiny_model, tiny_data, tmp_path / "b", **over, **{"schedule.steps": 4})

    def comparable(records):
        return [{k: v for k, v in r.items() if not k.startswith("time_")} for r in records]

    assert [r["step"] for r in resumed if r["kind"] == "train"] == [1, 2, 3, 4]
    assert comparable(resumed) == comparable(whole)


def test_changed_config_refuses_to_resume(tiny_model, tiny_data, tmp_path):
    _train(tiny_model, tiny_data, tmp_path / "run", **{"schedule.steps": 2})
    cfg = TrainConfig.model_validate(
        tiny_config(tiny_model, tiny_data, tmp_path / "run", **{"optim.lr": 0.5})
    )
    with pytest.raises(ConfigError, match="different config"):
        Trainer(cfg).run()
    # --fresh starts over: the old run's records, step-0 validation included, are gone
    Trainer(cfg, fresh=True).run()
    records = read_metrics(tmp_path / "run")
    assert [(r["step"], r["kind"]) for r in records] == [
        (0, "val"),
        (1, "train"),
        (2, "train"),
        (2, "val"),
        (3, "train"),
        (4, "train"),
        (4, "val"),
    ]


def test_deadline_stops_early_with_a_resumable_checkpoint(tiny_model, tiny_data, tmp_path):
    """A run whose deadline has passed stops after one step, saves it (off the save period)
    and says so; run again without a deadline it resumes to the planned steps."""
    over = {"schedule.steps": 4, "schedule.save_every": 3, "schedule.val_every": 10}
    cfg = TrainConfig.model_validate(tiny_config(tiny_model, tiny_data, tmp_path / "r", **over))
    events = []
    Trainer(cfg, events.append, deadline=time.monotonic()).run()
    assert {"kind": "stopped", "step": 1, "steps": 4} in events
    assert [p.name for p in list_checkpoints(tmp_path / "r")] == ["step_000001"]
    Trainer(cfg).run()
    records = read_metrics(tmp_path / "r")
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3, 4]


def test_update_scores_the_exact_sampled_tokens(tiny_model):
    """The trainer's log-probs of the sampled ids equal the sampler's, for prompts of different
    lengths in one batch (left padding, position ids, EOS kept)."""
    llm = TransformersLLM(tiny_model)
    prompts = [[{"role": "user", "content": "a " * n}] for n in (1, 7, 3)]
    gens = llm.generate(
        prompts, SamplingParams(temperature=1.0, max_new_tokens=6, seed=3, logprobs=True)
    )
    ids = [llm.tokenizer(llm.render(p), add_special_tokens=False)["input_ids"] for p in prompts]
    batch = pad_batch(ids, [list(g.token_ids) for g in gens], llm.tokenizer.pad_token_id, "cpu")
    with torch.no_grad():
        lp = response_logprobs(llm.model, batch)
    for b, g in enumerate(gens):
        assert lp[b, : len(g.token_ids)].tolist() == pytest.approx(list(g.logprobs), abs=1e-4)


def _yes_sft(tiny_model, tmp_path, **settings) -> SFTConfig:
    """An SFT run on 8 copies of one transcript ("go" -> "yes yes yes"), at a step size the
    tiny model learns it with."""
    transcripts = tmp_path / "t.jsonl"
    write_transcripts(transcripts, [([{"role": "user", "content": "go"}], "yes yes yes")] * 8)
    return SFTConfig(
        out_dir=tmp_path / "sft",
        policy={"model": str(tiny_model)},
        transcripts=transcripts,
        examples=8,
        batch_size=4,
        optim={"lr": 0.05, "warmup_ratio": 0.0},
        **settings,
    )


def _assert_learned(cfg: SFTConfig, folder: Path, loss_drop: float) -> None:
    """The loss fell by `loss_drop`× and the policy now answers "go" with the transcript."""
    losses = [json.loads(line)["loss"] for line in (cfg.out_dir / "metrics.jsonl").open()]
    assert losses[-1] < losses[0] / loss_drop
    llm = TransformersLLM(folder)
    (gen,) = llm.generate([[{"role": "user", "content": "go"}]], SamplingParams(max_new_tokens=4))
    assert gen.text.startswith("yesyesyes")  # word-level tokens joined by the Fuse decoder


@pytest.mark.parametrize("bf16", [False, True])
def test_sft_teaches_the_transcripts(tiny_model, tmp_path, bf16):
    """Under bf16 autocast too (master weights stay fp32; the saved policy is fp32)."""
    cfg = _yes_sft(tiny_model, tmp_path, epochs=10, autocast_bf16=bf16)
    folder = run_sft(cfg)
    _assert_learned(cfg, folder, loss_drop=4)
    assert read_writer_config(folder) == cfg.writer  # how the warm-started policy writes


def test_sft_with_train_layers_learns_through_the_top_layers_only(tiny_model, tmp_path):
    """The warm start can freeze like the GRPO run after it: the transcripts are still
    learned (more slowly), and only the top layer and the final norm change."""
    from safetensors.torch import load_file

    # 60 epochs: at 30 the loss had only halved on an AVX-512 CPU and the answer stopped short
    cfg = _yes_sft(tiny_model, tmp_path, epochs=60, train_layers=1)
    folder = run_sft(cfg)
    _assert_learned(cfg, folder, loss_drop=2)
    before = load_file(tiny_model / "model.safetensors")
    after = load_file(folder / "model.safetensors")
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(("model.layers.1.", "model.norm")) for k in changed)


def test_a_warm_start_is_not_driven_with_its_ids_moved(tiny_model, tiny_data, tmp_path):
    """A policy learned to find an entry's id where its view showed it (`memory.view.ids`):
    training, a second warm start or an evaluation that shows the ids on the other side of the
    text refuses before it writes anything, naming the setting."""
    from memalpha.eval.config import MethodConfig

    warm = run_sft(_yes_sft(tiny_model, tmp_path, memory={"view": {"ids": "after"}}))
    assert read_writer_config(warm).memory.view.ids == "after"
    run = tmp_path / "grpo"
    cfg = TrainConfig.model_validate(tiny_config(warm, tiny_data, run))  # ids before: the default
    with pytest.raises(ConfigError, match="trained with memory.view.ids: after"):
        Trainer(cfg).run()
    assert not run.exists()
    second = _yes_sft(tiny_model, tmp_path).model_copy(
        update={"policy": ModelConfig(model=str(warm)), "out_dir": tmp_path / "second"}
    )
    with pytest.raises(ConfigError, match="set memory.view.ids: after"):
        run_sft(second)
    assert not (tmp_path / "second").exists()
    moved = MethodConfig(
        name="m", kind="memalpha", policy={"model": str(warm)}, memory={"view": {"k": 8}}
    )
    with pytest.raises(ConfigError, match="memory.view.ids: after"):
        _ = moved.writer
    kept = MethodConfig(name="m", kind="memalpha", policy={"model": str(warm)})
    assert kept.writer.memory.view.ids == "after"


def test_train_layers_refuses_lora_in_the_warm_start_too(tiny_model, tmp_path):
    cfg = _yes_sft(tiny_model, tmp_path, train_layers=1, lora={"enabled": True})
    with pytest.raises(ConfigError, match="train_layers and lora.enabled"):
        run_sft(cfg)


def test_plot_draws_a_png(tiny_model, tiny_data, tmp_path):
    _train(tiny_model, tiny_data, tmp_path / "run", **{"schedule.steps": 2})
    png = plot_run(tmp_path / "run")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "name", ["cpu-smollm2", "cpu-smollm2-published", "paper-qwen3-4b", "tiny-ablation-check"]
)
def test_shipped_train_configs_load(name, repo_root):
    path = repo_root / "configs" / "train" / f"{name}.yaml"
    if name == "tiny-ablation-check":
        grid = yaml.safe_load((repo_root / "configs" / "train" / "ablations.yaml").read_text())
        for run in grid["runs"].values():
            load_config(
                TrainConfig,
                repo_root / "configs/train/paper-qwen3-4b.yaml",
                [f"{k}={v}" for k, v in run.items()],
            )
        return
    load_config(TrainConfig, path)


def test_qa_recipe_is_the_measured_run(repo_root):
    """cpu-smollm2.yaml must stay the run RESULTS.md reports (attempt 9): the published-reward
    CPU config with exactly the overrides of that run's command."""
    attempt9 = [
        "optim.lr=1e-5", "reward.call_weight=0", "reward.beta=0", "reward.gamma=0",
        "reward.qa_credit=evidence", "ppo.group_by=step", "rollout.temperature=0.5",
        "rollout.greedy_anchor=true", "rollout.max_new_tokens=320",
        # throughput only (the engine issue): all 24 rollouts of a chunk index in one call
        "policy.batch_size=24",
        "rollout.instances_per_step=6", "ppo.mini_batches=1",
        "ppo.loss_agg=seq-mean-token-mean", "ppo.kl_coef=0.05", "schedule.steps=6",
        "schedule.val_every=6", "schedule.save_every=3", "schedule.keep_last=2",
        "out_dir=runs/grpo-smollm2",
    ]  # fmt: skip
    published = repo_root / "configs/train/cpu-smollm2-published.yaml"
    measured = load_config(TrainConfig, published, attempt9)
    shipped = load_config(TrainConfig, repo_root / "configs/train/cpu-smollm2.yaml")
    assert shipped == measured


def test_local_trainer_refuses_a_served_policy():
    with pytest.raises(ConfigError, match="policy.backend"):
        load_config(TrainConfig, None, ["policy.backend=openai", "policy.base_url=http://x"])


def test_train_layers_updates_only_the_top_layers(tiny_model, tiny_data, tmp_path):
    from safetensors.torch import load_file

    _train(tiny_model, tiny_data, tmp_path / "run", **{"schedule.steps": 2, "train_layers": 1})
    before = load_file(tiny_model / "model.safetensors")
    after = load_file(list_checkpoints(tmp_path / "run")[-1] / "policy" / "model.safetensors")
    # under bf16 (auto, where the CPU has it) frozen weights are kept, and saved, as the bf16
    # values every forward pass computed with (Policy.freeze_below): compare in bf16
    changed = {k for k in before if not torch.equal(before[k].bfloat16(), after[k].bfloat16())}
    assert changed and all(k.startswith(("model.layers.1.", "model.norm")) for k in changed)


@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum"])
def test_micro_batches_accumulate_the_whole_batch_gradient(tiny_model, mode):
    """Gradient accumulation over micro-batches of unequal response lengths gives the gradient
    of one big batch, under every loss aggregation."""
    policy = Policy(ModelConfig(model=str(tiny_model)))
    vocab = policy.tokenizer.vocab_size
    shapes = [(3, 1, 1.0), (2, 4, -0.5), (3, 2, 0.7), (1, 5, -1.2)]
    terms = combine(0.0, 0.0, 0.0, 0.0, beta=0.0, gamma=0.0)
    samples = [
        Sample(
            0,
            i,
            0,
            (5, 6, 7)[:p],
            tuple((9 + 3 * i + t) % vocab for t in range(r)),
            None,
            terms,
            "stop",
        )
        for i, (p, r, _) in enumerate(shapes)
    ]
    advantages = [a for _, _, a in shapes]
    samples = recompute_old_logprobs(policy, samples, micro=4, temperature=1.0)
    grads = []

    class Recording(torch.optim.SGD):
        """SGD that keeps the gradient it was stepped with (grpo_update frees it after)."""

        def step(self, closure=None):
            grads.append(torch.cat([p.grad.flatten().clone() for p in params]))
            return super().step(closure)

    for micro in (1, 4):
        cfg = PPOConfig(loss_agg=mode, kl_coef=0.0, micro_batch_size=micro)
        params = [p for p in policy.model.parameters() if p.requires_grad]
        sgd = Recording(params, lr=0.0)  # lr 0: both runs see the same weights
        grpo_update(policy, None, sgd, samples, advantages, cfg, 1e9, 1.0, random.Random(0))
    assert grads[0].abs().sum() > 0
    assert torch.allclose(grads[0], grads[1], atol=1e-6, rtol=1e-4)


def test_on_policy_update_takes_behaviour_logprobs_from_its_own_forward(tiny_model):
    """One epoch, one mini-batch: the update's ratio is its own forward's, detached (exactly 1),
    so the sampler's log-probs are not read and no recompute pass is needed; its gradient is
    the one recomputed old log-probs give. Split into two mini-batches, the same stale
    log-probs move the second step's ratios (off-policy: they are read)."""
    policy = Policy(ModelConfig(model=str(tiny_model)))
    vocab = policy.tokenizer.vocab_size
    terms = combine(0.0, 0.0, 0.0, 0.0, beta=0.0, gamma=0.0)
    stale = [
        Sample(
            0,
            i,
            0,
            (5, 6, 7),
            tuple((11 + 5 * i + t) % vocab for t in range(4)),
            (-9.0,) * 4,
            terms,
            "stop",
        )
        for i in range(4)
    ]
    advantages = [1.0, -1.0, 0.5, -0.5]
    grads, stats = [], []

    class Recording(torch.optim.SGD):
        def step(self, closure=None):
            grads.append(torch.cat([p.grad.flatten().clone() for p in params]))
            return super().step(closure)

    params = [p for p in policy.model.parameters() if p.requires_grad]
    cfg = PPOConfig(kl_coef=0.0, micro_batch_size=2)
    assert on_policy(cfg, len(stale)) and not on_policy(PPOConfig(mini_batches=2), len(stale))
    fresh = recompute_old_logprobs(policy, stale, micro=4, temperature=1.0)
    for samples in (stale, fresh):
        sgd = Recording(params, lr=0.0)
        stats.append(
            grpo_update(policy, None, sgd, samples, advantages, cfg, 1e9, 1.0, random.Random(0))
        )
    assert stats[0]["ratio_mean"] == 1.0 and stats[0]["clip_fraction"] == 0.0
    assert torch.allclose(grads[0], grads[1], atol=1e-6, rtol=1e-4)
    split = PPOConfig(kl_coef=0.0, micro_batch_size=2, mini_batches=2)
    off = grpo_update(
        policy,
        None,
        Recording(params, lr=0.0),
        stale,
        advantages,
        split,
        1e9,
        1.0,
        random.Random(0),
    )
    assert off["ratio_mean"] > 2.0  # exp(lp + 9): the stale numbers were used


def test_sft_step_weighs_tokens_by_the_examples_weights(tiny_model):
    """Weights of 1 are the plain step, bitwise (the shipped warm starts' losses stay
    reproducible); other weights make the step's loss the weighted mean of the token NLLs,
    across micro-batches of unequal lengths, and `upweighted_nll` the plain mean NLL of the
    tokens weighted above 1."""
    policy = Policy(ModelConfig(model=str(tiny_model)))
    vocab = policy.tokenizer.vocab_size
    pairs = [
        ((5, 6, 7)[: 1 + i % 3], [(9 + 3 * i + t) % vocab for t in range(2 + i)]) for i in range(4)
    ]
    weights = [[4.0 if t == 1 else 1.0 for t in range(len(r))] for _, r in pairs]
    with torch.no_grad():
        nll = [
            (-response_logprobs(policy.model, policy.batch([list(p)], [r]))[0]).tolist()
            for p, r in pairs
        ]

    def step(examples, micro):
        model = policy.model
        start = {k: v.clone() for k, v in model.state_dict().items()}
        sgd = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
        stats = sft_step(policy, sgd, examples, micro, 1.0)
        after = {k: v.clone() for k, v in model.state_dict().items()}
        model.load_state_dict(start)
        return stats, after

    plain, plain_after = step([(list(p), r) for p, r in pairs], 2)
    ones, ones_after = step([(list(p), r, [1.0] * len(r)) for p, r in pairs], 2)
    assert ones == plain and "upweighted_nll" not in plain
    assert all(torch.equal(plain_after[k], ones_after[k]) for k in plain_after)

    for micro in (1, 4):
        weighted, after = step(
            [(list(p), r, w) for (p, r), w in zip(pairs, weights, strict=True)], micro
        )
        flat = [
            (x, w) for n, ws in zip(nll, weights, strict=True) for x, w in zip(n, ws, strict=True)
        ]
        assert weighted["loss"] == pytest.approx(
            sum(x * w for x, w in flat) / sum(w for _, w in flat), rel=1e-5
        )
        heavy = [x for x, w in flat if w > 1]
        assert weighted["upweighted_nll"] == pytest.approx(sum(heavy) / len(heavy), rel=1e-5)
        assert any(not torch.equal(plain_after[k], after[k]) for k in after)
