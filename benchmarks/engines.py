"""Rollout engines side by side, in one run: tokens/s, log-prob agreement with the trainer's
recompute, and weight-reload time, for every engine installed here.

    python benchmarks/engines.py [--prompts 16] [--new-tokens 128] [--device cpu]

Workload: SmolLM2-135M (the shipped model) writing memories: the compact writer prompt of real
SQuAD chunks (~400 tokens each), `--prompts` of them in one batch, `--new-tokens` sampled at
T = 1 with per-token log-probs, the rollout the local trainer makes.

Engines: transformers fp32 weights; transformers bf16 weights; the trainer's own policy (fp32
master weights under bf16 autocast, `ppo.autocast_bf16: auto`); vLLM bf16 when `vllm` imports
(`memalpha[vllm]`). Agreement compares each engine's rollout log-probs of the tokens it sampled
with a teacher-forced forward pass of the same weights, fp32 and bf16-autocast: mean |Δ|, p95,
and the share of exp(Δ) outside PPO's [0.8, 1.2]. Reload: putting the trainer's updated weights
into the engine (in place).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from memalpha.agent import WriterConfig, build_agent
from memalpha.data import BuildConfig, build
from memalpha.llm import ModelConfig, SamplingParams, TransformersLLM, bf16_native, resolve_folder
from memalpha.memory import Memory
from memalpha.rl.policy import Policy, response_logprobs
from memalpha.tokens import make_token_counter
from report import save


def writer_prompts(n: int, counter) -> list[list[dict]]:
    """The compact writer's prompts of the first chunk of `n` SQuAD test instances."""
    spec = BuildConfig(source="squad", split="test", instances=n, max_tokens=300, chunk_tokens=300)
    instances = build(spec, counter)
    writer = WriterConfig(prompt="compact")
    agent = build_agent(writer, counter)
    return [agent.messages(Memory(writer.memory, counter), i.chunks[0]) for i in instances][:n]


def agreement(policy: Policy, prompts: list[list[int]], gens, bf16: bool) -> dict[str, float]:
    """Rollout log-probs against a teacher-forced forward of `policy`'s weights."""
    deltas: list[float] = []
    policy.bf16 = bf16
    for prompt, gen in zip(prompts, gens, strict=True):
        if not gen.token_ids:
            continue
        batch = policy.batch([prompt], [list(gen.token_ids)])
        with torch.no_grad(), policy.autocast():
            want = response_logprobs(policy.model, batch, 1.0)[0]
        deltas += (torch.tensor(gen.logprobs) - want).tolist()
    mags = sorted(abs(d) for d in deltas)
    outside = [d for d in deltas if not 0.8 <= float(torch.tensor(d).exp()) <= 1.2]
    return {
        "mean_abs": statistics.fmean(mags),
        "p95_abs": mags[int(0.95 * (len(mags) - 1))],
        "ratio_outside": len(outside) / len(deltas),
    }


def timed_rollout(generate, prompts, sampling) -> tuple[list, dict[str, float]]:
    generate(prompts[:2], sampling.model_copy(update={"max_new_tokens": 4}))  # warm-up
    start, cpu = time.perf_counter(), time.process_time()
    gens = generate(prompts, sampling)
    wall = time.perf_counter() - start
    tokens = sum(len(g.token_ids) for g in gens)
    return gens, {
        "tokens": tokens,
        "seconds": wall,
        "tokens_per_s": tokens / wall,
        "cpu_s": time.process_time() - cpu,
    }


def transformers_engine(folder: Path, device: str, dtype: str, policy: Policy | None = None):
    """(generate, reload): reload copies the trainer's weights in place."""
    llm = policy.llm if policy is not None else TransformersLLM(folder, device=device, dtype=dtype)

    def reload(weights) -> None:
        state = dict(weights)
        with torch.no_grad():
            for name, param in llm.model.named_parameters():
                param.copy_(state[name])

    return llm.generate_ids, reload


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompts", type=int, default=16)
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--device", default="cpu")
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/engines.json"))
    args = p.parse_args()
    counter = make_token_counter()
    folder = resolve_folder(ModelConfig(model=args.model))
    trainer = Policy(ModelConfig(model=args.model, device=args.device))  # fp32 master weights
    messages = writer_prompts(args.prompts, counter)
    prompts = [trainer.prompt_ids(m) for m in messages]
    state = {k: v.detach().clone() for k, v in trainer.model.named_parameters()}
    sampling = SamplingParams(
        temperature=1.0, max_new_tokens=args.new_tokens, seed=0, logprobs=True
    )
    engines = {
        "transformers fp32": lambda: transformers_engine(folder, args.device, "float32"),
        "transformers bf16": lambda: transformers_engine(folder, args.device, "bfloat16"),
        "trainer policy (bf16 autocast)": lambda: transformers_engine(
            folder, args.device, "float32", Policy(ModelConfig(model=args.model), bf16=True)
        ),
    }
    if importlib.util.find_spec("vllm") is not None:
        from memalpha.llm.vllm_engine import VllmEngine

        def vllm_engine():
            engine = VllmEngine(folder, device=args.device)
            return engine.generate_ids, engine.reload

        engines["vllm bf16"] = vllm_engine
    rows = []
    for name, make in engines.items():
        generate, reload = make()
        gens, speed = timed_rollout(generate, prompts, sampling)
        start = time.perf_counter()
        reload(state.items())
        reload_s = time.perf_counter() - start
        fp32 = agreement(trainer, prompts, gens, bf16=False)
        bf16 = agreement(trainer, prompts, gens, bf16=True)
        rows.append(
            {
                "engine": name,
                **speed,
                "reload_s": reload_s,
                **{f"fp32_{k}": v for k, v in fp32.items()},
                **{f"bf16_{k}": v for k, v in bf16.items()},
            }
        )
        Console().print(rows[-1])
    base = rows[0]["tokens_per_s"]
    for row in rows:
        row["speedup"] = row["tokens_per_s"] / base
    table = Table(
        title=f"rollout engines ({args.model}, {args.prompts} prompts x "
        f"{args.new_tokens} tokens, {args.device})"
    )
    cols = [
        "engine",
        "tokens_per_s",
        "speedup",
        "cpu_s",
        "reload_s",
        "fp32_mean_abs",
        "fp32_ratio_outside",
        "bf16_mean_abs",
        "bf16_ratio_outside",
    ]
    for col in cols:
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(
            *(f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in cols)
        )
    Console().print(table)
    save(args.out, {"engines": rows, "bf16_native": bf16_native(args.device)}, args)


if __name__ == "__main__":
    main()
