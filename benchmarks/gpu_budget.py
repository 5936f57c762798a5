"""The paper configuration's memory on one GPU, measured through the local trainer's own parts.

    python benchmarks/gpu_budget.py --tokenizer TOKENIZER_DIR [--shape qwen3-4b] [--device cuda]

docs/engines.md writes out what `configs/train/paper-qwen3-4b.yaml` needs on one 141 GB GPU
(fp32 master weights, gradients, AdamW moments, an fp32 reference, the rollout KV cache of
`policy.batch_size` rows, the update's activations). This script checks it: a model of
Qwen3-4B's exact shape (36 layers, hidden 2560, 8 KV heads of 128, vocabulary 151,936) with
random weights (nothing is downloaded; the shape, not the values, sets memory and time) goes
through `Policy` (fp32 master weights, bf16 autocast, gradient checkpointing), `reference()`,
`make_optimizer`, a rollout of `--rows` prompts of `--prompt-tokens` with `--new-tokens`
sampled (the paper's 32 x 6144 + 2048) and `grpo_update` (old log-probs recomputed, k3 KL,
micro-batch 1) over `--update-samples` of those sequences. Per phase: seconds, the GPU memory
held after it and the peak during it (`torch.cuda.max_memory_allocated`).

`--tokenizer` is any HF folder with a Qwen tokenizer (its vocabulary must fit 151,936: the
Qwen2.5 folder memalpha caches for `qwen2.5-coder-0.5b-instruct` does). `--shape tiny` runs the
same code on a CPU in seconds (no memory figures there).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from memalpha.llm import ModelConfig, SamplingParams
from memalpha.reward import RewardTerms
from memalpha.rl.config import OptimConfig, PPOConfig
from memalpha.rl.parts import make_optimizer
from memalpha.rl.policy import Policy
from memalpha.rl.update import grpo_update, recompute_old_logprobs
from memalpha.rollout import Sample
from report import save

SHAPES = {
    # Qwen/Qwen3-4B config.json
    "qwen3-4b": dict(
        hidden_size=2560,
        intermediate_size=9728,
        num_hidden_layers=36,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=128,
        vocab_size=151_936,
        tie_word_embeddings=True,
        max_position_embeddings=40_960,
        rope_theta=1_000_000.0,
        rms_norm_eps=1e-6,
    ),
    "tiny": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        vocab_size=151_936,
        tie_word_embeddings=True,
        max_position_embeddings=4096,
    ),
}
GB = 1e9
NO_TERMS = RewardTerms(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)  # rewards play no part here


def make_folder(shape: str, tokenizer: Path, device: str, out: Path) -> Path:
    """An HF folder of the named shape with random weights (bf16 on disk) and the tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3Config

    config = Qwen3Config(**SHAPES[shape])
    tok = AutoTokenizer.from_pretrained(tokenizer)
    if len(tok) > config.vocab_size:
        raise SystemExit(f"{tokenizer}: {len(tok)} tokens do not fit a {config.vocab_size} vocab")
    config.eos_token_id = tok.eos_token_id
    config.pad_token_id = tok.pad_token_id
    if out.exists():
        shutil.rmtree(out)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    del model
    return out


class Phases:
    """Seconds and GPU memory (held after, peak during) per phase."""

    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")
        self.rows: list[dict] = []

    def run(self, name: str, fn, *args):
        """`fn(*args)`, timed and measured as phase `name`."""
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        result = fn(*args)
        if self.cuda:
            torch.cuda.synchronize()
        row = {"phase": name, "seconds": time.perf_counter() - t}
        if self.cuda:
            row["held_gb"] = torch.cuda.memory_allocated() / GB
            row["peak_gb"] = torch.cuda.max_memory_allocated() / GB
        self.rows.append(row)
        print(json.dumps(row), flush=True)
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", type=Path, required=True)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="qwen3-4b")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rows", type=int, default=32, help="policy.batch_size (paper config)")
    parser.add_argument("--prompt-tokens", type=int, default=6144)
    parser.add_argument("--new-tokens", type=int, default=2048)
    parser.add_argument("--update-samples", type=int, default=4)
    parser.add_argument("--steps", type=int, default=2, help="2: the second holds AdamW state")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/memalpha-gpu-budget-model"))
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("results") / "gpu_budget.json"
    )
    args = parser.parse_args()
    phases = Phases(args.device)
    folder = phases.run(
        "random weights to disk",
        lambda: make_folder(args.shape, args.tokenizer, args.device, args.folder),
    )
    cfg = ModelConfig(model=str(folder), device=args.device, dtype="float32", batch_size=args.rows)
    policy = phases.run("policy, fp32 master weights", lambda: Policy(cfg, bf16=True))
    policy.model.gradient_checkpointing_enable()
    ref = phases.run("reference, fp32", policy.reference)
    optimizer, _ = make_optimizer(policy.model, OptimConfig(lr=1e-6), 100)

    rng = random.Random(0)
    top = len(policy.tokenizer) - 300  # ordinary tokens, no specials
    ppo = PPOConfig(
        kl_coef=0.001,
        micro_batch_size=1,
        mini_batch_size=args.update_samples,
        loss_agg="seq-mean-token-mean",
        autocast_bf16=True,
        gradient_checkpointing=True,
    )
    generated = 0
    for step in range(1, args.steps + 1):  # step 2 on: AdamW's moments are held too
        prompts = [
            [rng.randrange(top) for _ in range(args.prompt_tokens)] for _ in range(args.rows)
        ]
        sampling = SamplingParams(temperature=1.0, max_new_tokens=args.new_tokens, seed=step)
        gens = phases.run(
            f"step {step}: rollout (bf16 autocast)", policy.llm.generate_ids, prompts, sampling
        )
        generated += sum(len(g.token_ids) for g in gens)
        samples = [
            Sample(0, i, 0, tuple(p), tuple(g.token_ids), tuple(g.logprobs or ()), NO_TERMS, "")
            for i, (p, g) in enumerate(zip(prompts, gens, strict=True))
        ][: args.update_samples]
        samples = phases.run(
            f"step {step}: old log-probs (bf16)", recompute_old_logprobs, policy, samples, 1, 1.0
        )
        advantages = [rng.choice((-1.0, 1.0)) for _ in samples]
        stats = phases.run(
            f"step {step}: update (fwd+bwd+KL, AdamW)",
            grpo_update,
            *(policy, ref, optimizer, samples, advantages, ppo, 1.0, 1.0, rng),
        )
    rollout_s = sum(r["seconds"] for r in phases.rows if "rollout" in r["phase"])
    summary = {
        "generated_tokens": generated,
        "rollout_tokens_per_s": generated / rollout_s,
        "update_stats": stats,
        "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "torch": torch.__version__,
        "max_peak_gb": max((r.get("peak_gb", 0.0) for r in phases.rows), default=0.0),
    }
    table = Table(title=f"{args.shape}: {args.rows} x ({args.prompt_tokens} + {args.new_tokens})")
    for col in ("phase", "seconds", "held GB", "peak GB"):
        table.add_column(col, justify="left" if col == "phase" else "right")
    for r in phases.rows:
        held, peak = r.get("held_gb"), r.get("peak_gb")
        table.add_row(
            r["phase"],
            f"{r['seconds']:.1f}",
            "-" if held is None else f"{held:.1f}",
            "-" if peak is None else f"{peak:.1f}",
        )
    Console(width=110).print(table)
    print(json.dumps(summary, indent=1))
    save(args.out, {"phases": phases.rows, **summary}, args)


if __name__ == "__main__":
    main()
