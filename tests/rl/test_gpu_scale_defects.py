"""The local trainer's defects that show at GPU scale (issue: engines, D1–D8), one test each,
on real small models (the tiny Llama of tests/tiny.py, SmolLM2-135M). Each failed on the code
before its fix."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from memalpha.agent import WriterConfig, build_agent
from memalpha.config import load_config
from memalpha.llm import ModelConfig, SamplingParams, TransformersLLM
from memalpha.llm.local import SampledLogprobs
from memalpha.memory import Component, Memory, MemoryConfig
from memalpha.reader import ReaderConfig, build_reader
from memalpha.rl import TrainConfig
from memalpha.rl.loss import aggregate
from memalpha.rl.policy import Policy, response_logprobs
from memalpha.rl.update import recompute_old_logprobs
from memalpha.rollout import Sample

PROMPTS = [[5, 7, 9, 11, 3], [8, 4, 10, 12, 6, 9]]


def _sample(prompt, generation) -> Sample:
    return Sample(0, 0, 0, tuple(prompt), generation.token_ids, generation.logprobs, None, "stop")


def test_d1_old_new_and_reference_logprobs_are_one_precision(tiny_model):
    """Under bf16, the behaviour log-probs the trainer recomputes are those of the update's
    own first forward pass: the PPO ratio of an unchanged policy is exactly 1."""
    policy = Policy(ModelConfig(model=str(tiny_model)), bf16=True)
    gens = policy.llm.generate_ids(
        PROMPTS, SamplingParams(temperature=1.0, max_new_tokens=6, seed=0, logprobs=True)
    )
    samples = [_sample(p, g) for p, g in zip(PROMPTS, gens, strict=True) if g.token_ids]
    old = recompute_old_logprobs(policy, samples, micro=2, temperature=1.0)
    batch = policy.batch([list(s.prompt_ids) for s in old], [list(s.response_ids) for s in old])
    with policy.autocast():  # as grpo_update computes the new log-probs
        new = response_logprobs(policy.model, batch, 1.0)
    with torch.no_grad():
        fp32 = response_logprobs(policy.model, batch, 1.0)
    for b, s in enumerate(old):
        n = len(s.response_ids)
        assert torch.equal(torch.tensor(s.old_logprobs), new[b, :n].detach())
    # and the precision is real: fp32 numbers differ from the bf16 ones
    assert not torch.allclose(fp32, new.detach(), atol=1e-6)


def test_frozen_layers_are_stored_in_bf16_and_the_reference_matches(tiny_model):
    """Under bf16, frozen weights are cast once (autocast re-casts weights that need no grad
    on every forward pass: each generation step was ~1.5x slower), to the values autocast
    would have used; the reference holds the same, so the KL starts at exactly 0."""
    policy = Policy(ModelConfig(model=str(tiny_model)), bf16=True)
    policy.freeze_below(1)
    params = dict(policy.model.named_parameters())
    assert policy.frozen and all(params[n].dtype == torch.bfloat16 for n in policy.frozen)
    assert all(p.dtype == torch.float32 for p in params.values() if p.requires_grad)
    ref = dict(policy.reference().named_parameters())
    assert all(torch.equal(ref[n], p) for n, p in params.items())
    batch = policy.batch([PROMPTS[0]], [[5, 6, 7]])
    with torch.no_grad(), policy.autocast():
        ours = response_logprobs(policy.model, batch, 1.0)
        theirs = response_logprobs(policy.reference(), batch, 1.0)
    assert torch.equal(ours, theirs)


def test_d2_generation_keeps_one_steps_scores_and_exact_logprobs(tiny_model, monkeypatch):
    """Only the sampled tokens' log-probs are kept (no `output_scores`, whose per-step
    full-vocabulary scores were ~80 GB for Qwen3-4B at batch 64 x 2048), and they equal a
    teacher-forced forward pass at the sampling temperature."""
    llm = TransformersLLM(tiny_model, dtype="float32")
    seen = {}
    generate = llm.model.generate

    def spy(**kwargs):
        seen.update(kwargs)
        return generate(**kwargs)

    monkeypatch.setattr(llm.model, "generate", spy)
    sampling = SamplingParams(temperature=0.7, max_new_tokens=8, seed=1, logprobs=True)
    gens = llm.generate_ids(PROMPTS, sampling)
    assert not seen.get("output_scores") and not seen.get("output_logits")
    assert any(isinstance(p, SampledLogprobs) for p in seen["logits_processor"])
    policy = Policy(ModelConfig(model=str(tiny_model)))
    for prompt, gen in zip(PROMPTS, gens, strict=True):
        batch = policy.batch([prompt], [list(gen.token_ids)])
        with torch.no_grad():
            want = response_logprobs(policy.model, batch, 0.7)[0]
        assert torch.allclose(torch.tensor(gen.logprobs), want, atol=1e-4)


def test_d3_every_model_stop_token_ends_a_response(tiny_model, tmp_path):
    """Qwen3 stops on <|im_end|> and <|endoftext|> (its pad token too): a response ends at the
    first of the generation config's EOS ids, is reported as stopped, and keeps no tail."""
    probe = TransformersLLM(tiny_model, dtype="float32")
    greedy = SamplingParams(temperature=0.0, max_new_tokens=1)
    (first,) = probe.generate_ids(PROMPTS[:1], greedy)
    other = first.token_ids[0]
    assert other != probe.tokenizer.eos_token_id
    folder = tmp_path / "two-eos"
    shutil.copytree(tiny_model, folder)
    config = json.loads((folder / "generation_config.json").read_text())
    config["eos_token_id"] = [probe.tokenizer.eos_token_id, other]
    (folder / "generation_config.json").write_text(json.dumps(config))
    llm = TransformersLLM(folder, dtype="float32")
    gens = llm.generate_ids(PROMPTS, SamplingParams(temperature=0.0, max_new_tokens=6))
    assert gens[0].token_ids == (other,) and gens[0].finish_reason == "stop"
    for gen in gens:  # no row carries anything after its stop token
        stops = [i for i, t in enumerate(gen.token_ids) if t in llm.stop_ids]
        assert stops in ([], [len(gen.token_ids) - 1])
        assert (gen.finish_reason == "stop") == bool(stops)


def test_d4_the_paper_config_computes_the_published_loss(repo_root):
    """The published run's loss was a token mean per micro-batch of one sample, averaged:
    seq-mean-token-mean, which differs from a mini-batch token mean when lengths differ."""
    cfg = load_config(TrainConfig, repo_root / "configs/train/paper-qwen3-4b.yaml")
    assert cfg.ppo.loss_agg == "seq-mean-token-mean"
    values = torch.tensor([[1.0, 1.0, 1.0, 1.0], [4.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0]])
    published = (
        sum(float(aggregate(values[i : i + 1], mask[i : i + 1], "token-mean")) for i in (0, 1)) / 2
    )
    assert float(aggregate(values, mask, cfg.ppo.loss_agg)) == pytest.approx(published)
    assert float(aggregate(values, mask, "token-mean")) != pytest.approx(published)


def test_d5_the_reader_answer_budget_is_configured(repo_root, tiny_model, counter):
    cfg = load_config(TrainConfig, repo_root / "configs/train/paper-qwen3-4b.yaml")
    assert (cfg.reader.max_new_tokens, cfg.reader.temperature) == (2048, 0.7)
    reader_cfg = ReaderConfig(
        kind="rag", model={"model": str(tiny_model)}, max_new_tokens=33, temperature=0.4
    )
    reader, llm = build_reader(reader_cfg, counter)
    assert (reader.sampling.max_new_tokens, reader.sampling.temperature) == (33, 0.4)
    llm.close()


def test_d6_the_trainer_caps_the_whole_prompt_in_the_policys_tokens(tiny_model, counter):
    """memory.view.max_prompt_tokens caps the whole chat-templated chunk prompt in the
    policy's tokens under the trainer (published), not just the memory view in cl100k."""
    policy = Policy(ModelConfig(model=str(tiny_model)))
    budget = 120
    writer = WriterConfig(
        prompt="compact", memory=MemoryConfig(view={"k": 5, "max_prompt_tokens": budget})
    )
    memory = Memory(writer.memory, counter)
    for i in range(8):
        memory.insert(Component.SEMANTIC, f"fact number {i} is about the river and the city {i}")
    chunk = "the chunk says several new things about the river"
    capped = build_agent(writer, counter, policy.prompt_tokens).messages(memory, chunk)
    assert policy.prompt_tokens(capped) <= budget
    view_only = build_agent(writer, counter).messages(memory, chunk)
    assert policy.prompt_tokens(view_only) > budget  # what the view-only cap let through


def test_d7_each_chunk_samples_with_its_own_seed(tiny_model, counter):
    """Every chunk of a row used to reseed with the step seed and replay one random stream."""
    llm = TransformersLLM(tiny_model, dtype="float32")
    sampling = SamplingParams(temperature=1.0, max_new_tokens=12, seed=5)
    seeds = {sampling.for_chunk(i).seed for i in range(4)}
    assert len(seeds) == 4 and sampling.seed not in seeds
    assert SamplingParams().for_chunk(3).seed is None
    same_prompt = PROMPTS[:1]
    (a,) = llm.generate_ids(same_prompt, sampling.for_chunk(0))
    (b,) = llm.generate_ids(same_prompt, sampling.for_chunk(1))
    assert a.token_ids != b.token_ids
    calls = []
    real = llm.generate

    def recording(prompts, how):
        calls.append(how.seed)
        return real(prompts, how)

    llm.generate = recording
    agent = build_agent(WriterConfig(prompt="compact", max_new_tokens=4), counter)
    memory = Memory(MemoryConfig(), counter)
    agent.memorize_many(llm, sampling, [memory], [["one chunk", "one chunk", "one chunk"]])
    assert calls == [sampling.for_chunk(i).seed for i in range(3)]


def test_d8_writers_stop_where_an_imagined_tool_result_begins(tiny_model):
    """✿RESULT✿ (qwen) and <tool_response> (hermes) are stop strings of the writer's sampling;
    a response ends with the token that completes one, and nothing after it is kept."""
    assert WriterConfig(format="qwen").sampling().stop == ("✿RESULT✿",)
    assert WriterConfig(format="hermes").sampling().stop == ("<tool_response>",)
    llm = TransformersLLM(tiny_model, dtype="float32")
    free = SamplingParams(temperature=1.0, max_new_tokens=30, seed=3)
    (gen,) = llm.generate_ids(PROMPTS[:1], free)
    words = gen.text.split()
    stop_word = next(
        w for w in words if w in {"hmm", "ok", "well", "so", "right", "yes", "now", "then"}
    )
    (stopped,) = llm.generate_ids(PROMPTS[:1], free.model_copy(update={"stop": (stop_word,)}))
    assert stopped.finish_reason == "stop"
    assert stop_word in stopped.text
    assert stop_word not in llm.tokenizer.decode(list(stopped.token_ids[:-1]))
    assert stopped.token_ids == gen.token_ids[: len(stopped.token_ids)]


def test_gradients_are_freed_once_applied(tiny_model):
    """On an H200 the paper config's later steps ran their rollout beside the last update's
    gradients (16 GB for a 4B policy; benchmarks/RESULTS.md): they are freed after the step."""
    import random

    from memalpha.rl.config import OptimConfig, PPOConfig
    from memalpha.rl.parts import make_optimizer
    from memalpha.rl.update import grpo_update

    policy = Policy(ModelConfig(model=str(tiny_model), dtype="float32"))
    gens = policy.llm.generate_ids(
        PROMPTS, SamplingParams(temperature=1.0, max_new_tokens=6, seed=0, logprobs=True)
    )
    samples = [_sample(p, g) for p, g in zip(PROMPTS, gens, strict=True) if g.token_ids]
    before = [p.detach().clone() for p in policy.model.parameters()]
    optimizer, _ = make_optimizer(policy.model, OptimConfig(lr=1e-2), 10)
    grpo_update(
        policy, None, optimizer, samples, [1.0, -1.0][: len(samples)], PPOConfig(kl_coef=0.0),
        1.0, 1.0, random.Random(0),
    )  # fmt: skip
    params = list(policy.model.parameters())
    assert any(not torch.equal(b, p) for b, p in zip(before, params, strict=True))  # it stepped
    assert all(p.grad is None for p in params)


def test_importing_memalpha_keeps_jax_from_taking_the_gpu():
    """bm25s imports JAX where installed; JAX's default takes 75% of the GPU at first use."""
    import subprocess
    import sys

    code = "import os, memalpha; print(os.environ['XLA_PYTHON_CLIENT_PREALLOCATE'])"
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("XLA_")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "false", out.stderr


def test_greedy_rows_decode_greedily_inside_a_sampled_batch(tiny_model):
    """The greedy anchors share the samples' generate call (one call per chunk index instead
    of two): a greedy row writes exactly what a greedy call writes, across batch slices."""
    llm = TransformersLLM(tiny_model, dtype="float32", batch_size=2)
    prompts = [*PROMPTS, [7, 7, 3, 9]]
    sampling = SamplingParams(
        temperature=1.0, max_new_tokens=8, seed=3, logprobs=True, greedy_rows=(0, 2)
    )
    mixed = llm.generate_ids(prompts, sampling)
    greedy = llm.generate_ids(prompts, SamplingParams(temperature=0.0, max_new_tokens=8))
    sampled = llm.generate_ids(prompts, sampling.model_copy(update={"greedy_rows": ()}))
    for row in (0, 2):  # rows 0 and 2 sit in different slices of batch_size 2
        assert mixed[row].token_ids == greedy[row].token_ids and mixed[row].logprobs is None
    assert mixed[1].logprobs is not None and len(mixed[1].logprobs) == len(mixed[1].token_ids)
    # the sampled row really samples: at T = 1 its tokens are not the greedy ones
    assert sampled[1].token_ids != greedy[1].token_ids or mixed[1].token_ids != greedy[1].token_ids


@pytest.mark.parametrize("bf16", [False, True])
def test_the_reference_reuses_the_policys_frozen_layers(tiny_model, bf16):
    """With `train_layers`, the reference's log-probs come from its upper layers on the
    policy's own frozen-trunk output: exactly what its full forward pass computes."""
    from memalpha.rl.policy import Trunk

    policy = Policy(ModelConfig(model=str(tiny_model), dtype="float32"), bf16=bf16)
    policy.freeze_below(1)
    ref = policy.reference()
    with torch.no_grad():  # the policy moves away from the reference (as training does)
        for p in policy.model.model.layers[-1].parameters():
            p.add_(0.05 * torch.randn_like(p))
    batch = policy.batch(PROMPTS, [[5, 6, 7], [9, 4]])
    with torch.no_grad(), policy.autocast():
        with Trunk.of(policy) as trunk:
            response_logprobs(policy.model, batch, 0.7)
        shared = trunk.upper_logprobs(ref, batch, 0.7)
        full = response_logprobs(ref, batch, 0.7)
        moved = response_logprobs(policy.model, batch, 0.7)
    assert torch.equal(shared, full)
    assert not torch.allclose(moved, full)  # the upper layers differ: a real test of them


def test_the_update_runs_none_of_the_references_frozen_layers(tiny_model):
    import random

    from memalpha.rl.config import OptimConfig, PPOConfig
    from memalpha.rl.parts import make_optimizer
    from memalpha.rl.update import grpo_update

    policy = Policy(ModelConfig(model=str(tiny_model), dtype="float32"), bf16=True)
    policy.freeze_below(1)
    ref = policy.reference()
    calls = {"lower": 0, "upper": 0}
    ref.model.layers[0].register_forward_hook(lambda *a: calls.__setitem__("lower", 1))
    ref.model.layers[1].register_forward_hook(lambda *a: calls.__setitem__("upper", 1))
    gens = policy.llm.generate_ids(
        PROMPTS, SamplingParams(temperature=1.0, max_new_tokens=6, seed=0, logprobs=True)
    )
    samples = [_sample(p, g) for p, g in zip(PROMPTS, gens, strict=True) if g.token_ids]
    optimizer, _ = make_optimizer(policy.model, OptimConfig(lr=1e-3), 10)
    stats = grpo_update(
        policy, ref, optimizer, samples, [1.0, -1.0][: len(samples)], PPOConfig(kl_coef=0.1),
        1.0, 1.0, random.Random(0),
    )  # fmt: skip
    assert calls == {"lower": 0, "upper": 1} and "kl" in stats
