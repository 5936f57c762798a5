"""The vLLM rollout engine, in process beside a trained policy (needs memalpha[vllm-cpu] or
memalpha[vllm]; skipped where vLLM is not installed, as in the default CI install).
docs/engines.md has the install steps; benchmarks/RESULTS.md the run of these tests."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("vllm")

from memalpha.agent import WriterConfig  # noqa: E402
from memalpha.llm import ModelConfig, SamplingParams  # noqa: E402
from memalpha.llm.vllm_engine import VllmEngine  # noqa: E402
from memalpha.rl.config import OptimConfig  # noqa: E402
from memalpha.rl.parts import make_optimizer  # noqa: E402
from memalpha.rl.policy import Policy, response_logprobs  # noqa: E402
from memalpha.rl.update import sft_step  # noqa: E402

pytestmark = pytest.mark.slow

MESSAGES = [
    [{"role": "user", "content": "Remember: the river Rhine flows through Basel."}],
    [{"role": "user", "content": "Name one fact about the city of Geneva."}],
]
LOGPROB_TOLERANCE = 0.05  # mean |Δ| per token, vLLM bf16 vs the trainer's bf16 recompute


@pytest.fixture(scope="module")
def pair():
    policy = Policy(ModelConfig(), bf16=True)
    engine = VllmEngine(policy.folder, dtype="bfloat16", max_model_len=1024)
    yield policy, engine
    engine.close()


def test_vllm_honours_stop_strings_and_gives_each_row_its_own_seed(pair):
    policy, engine = pair
    prompt = policy.prompt_ids(MESSAGES[1])  # runs first: before the other test trains
    sampling = SamplingParams(temperature=1.0, max_new_tokens=16, seed=3)
    a, b = engine.generate_ids([prompt, prompt], sampling)
    assert a.token_ids != b.token_ids  # G copies of one prompt are G samples
    first_word = a.text.split()[0]
    (stopped,) = engine.generate_ids([prompt], sampling.model_copy(update={"stop": (first_word,)}))
    assert stopped.finish_reason == "stop" and first_word in stopped.text
    assert WriterConfig(format="qwen").sampling().stop == ("✿RESULT✿",)


def test_vllm_rollout_reload_and_next_rollout_follow_the_new_weights(pair):
    policy, engine = pair
    prompts = [policy.prompt_ids(m) for m in MESSAGES]
    sampling = SamplingParams(temperature=1.0, max_new_tokens=24, seed=0, logprobs=True)
    gens = engine.generate_ids(prompts, sampling)
    assert all(g.token_ids and len(g.logprobs) == len(g.token_ids) for g in gens)
    assert [list(g.prompt_ids) for g in gens] == prompts
    # its log-probs agree with the trainer's own recompute, in one precision
    deltas = []
    for prompt, gen in zip(prompts, gens, strict=True):
        batch = policy.batch([prompt], [list(gen.token_ids)])
        with torch.no_grad(), policy.autocast():
            want = response_logprobs(policy.model, batch, 1.0)[0]
        deltas += (torch.tensor(gen.logprobs) - want).abs().tolist()
    assert sum(deltas) / len(deltas) < LOGPROB_TOLERANCE

    # an update that teaches a new answer to the first prompt
    target = policy.tokenizer(
        "Basel is on the Rhine. Basel is on the Rhine.", add_special_tokens=False
    )["input_ids"]
    greedy = SamplingParams(temperature=0.0, max_new_tokens=len(target))
    (before,) = engine.generate_ids(prompts[:1], greedy)
    assert list(before.token_ids) != target
    optimizer, _ = make_optimizer(policy.model, OptimConfig(lr=3e-4, warmup_ratio=0.0), 10)
    for _ in range(10):
        sft_step(policy, optimizer, [(prompts[0], target)], 1, 1.0)
    (own,) = policy.llm.generate_ids(prompts[:1], greedy)
    assert list(own.token_ids) == target  # the trained policy learned it
    (stale,) = engine.generate_ids(prompts[:1], greedy)
    assert stale.token_ids == before.token_ids  # the engine has the old weights until reloaded
    engine.reload(policy.model.named_parameters())
    (after,) = engine.generate_ids(prompts[:1], greedy)
    assert list(after.token_ids) == target


def test_the_trainer_rolls_out_with_vllm_and_reloads_after_every_update(tmp_path, real_instances):
    """Two GRPO steps of SmolLM2 with rollout.engine: vllm on real SQuAD data."""
    from memalpha.data import write_instances
    from memalpha.rl import TrainConfig
    from memalpha.rl.trainer import Trainer, read_metrics

    data = tmp_path / "train.jsonl"
    write_instances(real_instances(["squad"], instances=2, max_tokens=96, chunk_tokens=48), data)
    cfg = TrainConfig.model_validate(
        {
            "out_dir": str(tmp_path / "run"),
            "policy": {"batch_size": 4},
            "format": "hermes",
            "prompt": "compact",
            "data": {"train_files": [str(data)], "val_files": []},
            "rollout": {
                "instances_per_step": 1,
                "group_size": 2,
                "max_new_tokens": 24,
                "engine": "vllm",
                "engine_max_model_len": 2048,
                # vLLM's CPU KV budget is this share of RAM minus what the process already
                # holds (the module's other engine is alive): 0.2 left it negative on 24 GiB
                "engine_memory_utilization": 0.4,
            },
            "reader": {"kind": "extractive"},
            "judge": {"kind": "rule"},
            "ppo": {"kl_coef": 0.0, "micro_batch_size": 2},
            "schedule": {"steps": 2, "val_every": 10, "save_every": 10},
        }
    )
    Trainer(cfg).run()
    train = [r for r in read_metrics(tmp_path / "run") if r["kind"] == "train"]
    assert [r["step"] for r in train] == [1, 2]
    assert all(r["samples"] > 0 and r["time_engine_reload"] > 0 for r in train)
