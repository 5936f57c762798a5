"""Micro-batches of similar length against micro-batches in arrival order: padded tokens and
seconds of the quickstart's SFT steps and of a GRPO update, on the same examples in one run.

    python benchmarks/length_batching.py [--batches 6] [--set sft.micro_batch_size=2]
        [--out benchmarks/results/length_batching.json]

The examples are the quickstart's own (`--recipe store-all`): its rule-writer teacher's
transcripts of its training data, tokenized for its SmolLM2 policy
(`memalpha.rl.sft.sft_examples`). "arrival" is the code before
`memalpha.llm.batching.length_batches` (micro-batches cut in the order the rows come), put back
for the baseline by replacing that one function; "by length" is the code as it is.
Each SFT batch is stepped both ways, the order of the two alternating from batch to batch, at
learning rate 0, so that both see the same weights. The GRPO update runs on samples made of
the same (prompt, response) pairs with advantages +1/-1, micro-batches as the quickstart's.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

import memalpha.rl.update as update
from memalpha.quickstart import load_quickstart_config
from memalpha.reward import RewardTerms
from memalpha.rl.config import DataConfig
from memalpha.rl.policy import Policy, pad_batch
from memalpha.rl.sft import sft_examples, teacher_transcripts
from memalpha.rollout import Sample
from memalpha.tokens import make_token_counter
from report import save

BY_LENGTH = update.length_batches
NO_TERMS = RewardTerms(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)  # the update reads none


def arrival(lengths: list[int], size: int) -> list[list[int]]:
    """The baseline: rows cut into micro-batches in the order they come."""
    return [list(range(i, min(i + size, len(lengths)))) for i in range(0, len(lengths), size)]


def padded(pairs: list[tuple[list[int], list[int]]], size: int, batches) -> tuple[int, int]:
    """(tokens a padded forward computes, tokens that are not padding) for these micro-batches,
    padded as the update pads them (`pad_batch`)."""
    total = 0
    for rows in batches([len(p) + len(r) for p, r in pairs], size):
        part = [pairs[i] for i in rows]
        total += pad_batch([p for p, _ in part], [r for _, r in part], 0, "cpu")[
            "input_ids"
        ].numel()
    return total, sum(len(p) + len(r) for p, r in pairs)


def timed(grouping, step, *args) -> float:
    """Seconds of `step(*args)` with micro-batches cut by `grouping`."""
    update.length_batches = grouping
    try:
        began = time.perf_counter()
        step(*args)
        return time.perf_counter() - began
    finally:
        update.length_batches = BY_LENGTH


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=6, help="SFT batches stepped both ways.")
    p.add_argument("--grpo-samples", type=int, default=32, help="Samples in the GRPO update.")
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/length_batching.json"))
    args = p.parse_args()
    qs = load_quickstart_config(None, args.overrides, "store-all")
    torch.manual_seed(0)
    sft = qs.sft.model_copy(
        update={
            "policy": qs.sft.policy.model_copy(update={"model": qs.base_model}),
            "data": DataConfig(train=qs.train_data),
        }
    )
    policy = Policy(sft.policy)
    examples, _ = sft_examples(
        sft, policy, teacher_transcripts(sft, make_token_counter(sft.memory.tokenizer))
    )
    rows = sft_rows(policy, examples, sft.batch_size, sft.micro_batch_size, args.batches)
    rows += grpo_rows(policy, examples[: args.grpo_samples], qs.train.ppo)
    for name in ("SFT", "GRPO"):
        base, new = [r for r in rows if r["pass"].startswith(name)]
        new["speedup"] = base["seconds_per_step"] / new["seconds_per_step"]
        new["padding_saved"] = 1 - new["padded_tokens"] / base["padded_tokens"]
    show(rows)
    save(args.out, {"rows": rows}, args)


def frozen_optimizer(policy: Policy) -> torch.optim.Optimizer:
    """Steps at learning rate 0: every timed pass sees the same weights."""
    return torch.optim.SGD([w for w in policy.model.parameters() if w.requires_grad], lr=0.0)


def sft_rows(policy: Policy, examples, batch_size: int, micro: int, batches: int) -> list[dict]:
    """The first `batches` SFT batches, each stepped in both groupings (alternating first)."""
    optimizer = frozen_optimizer(policy)
    groupings = {"arrival": arrival, "by length": BY_LENGTH}
    seconds: dict[str, list[float]] = {name: [] for name in groupings}
    tokens = {name: [0, 0] for name in groupings}
    for n in range(min(batches, len(examples) // batch_size)):
        batch = examples[n * batch_size : (n + 1) * batch_size]
        for name in list(groupings)[:: 1 if n % 2 == 0 else -1]:
            seconds[name].append(
                timed(groupings[name], update.sft_step, policy, optimizer, batch, micro, 1.0)
            )
            pad, real = padded(batch, micro, groupings[name])
            tokens[name] = [tokens[name][0] + pad, tokens[name][1] + real]
    return [
        {
            "pass": f"SFT step ({batch_size}/{micro})",
            "grouping": name,
            "steps": len(seconds[name]),
            "padded_tokens": tokens[name][0],
            "real_tokens": tokens[name][1],
            "seconds_per_step": statistics.mean(seconds[name]),
        }
        for name in groupings
    ]


def grpo_rows(policy: Policy, pairs, ppo) -> list[dict]:
    """One on-policy GRPO update over `pairs` as samples, in each grouping, timed."""
    samples = [
        Sample(0, i, 0, tuple(p), tuple(r), None, NO_TERMS, "stop")
        for i, (p, r) in enumerate(pairs)
    ]
    advantages = [1.0 if i % 2 else -1.0 for i in range(len(samples))]
    optimizer = frozen_optimizer(policy)
    out = []
    for name, grouping in (("arrival", arrival), ("by length", BY_LENGTH)):
        # the update shuffles its samples first; its micro-batches are cut from that order
        order = samples[:]
        random.Random(0).shuffle(order)
        pad, real = padded(
            [(s.prompt_ids, s.response_ids) for s in order], ppo.micro_batch_size, grouping
        )
        sec = timed(
            grouping,
            update.grpo_update,
            *(policy, None, optimizer, samples, advantages, ppo, 1.0, 1.0, random.Random(0)),
        )
        out.append(
            {
                "pass": f"GRPO update ({len(samples)}/{ppo.micro_batch_size})",
                "grouping": name,
                "steps": 1,
                "padded_tokens": pad,
                "real_tokens": real,
                "seconds_per_step": sec,
            }
        )
    return out


# each column and how its cells are written ('' where a row has no value)
COLUMNS = {
    "pass": str,
    "grouping": str,
    "steps": str,
    "padded_tokens": str,
    "real_tokens": str,
    "seconds_per_step": "{:.1f}".format,
    "speedup": "{:.2f}x".format,
    "padding_saved": "{:.0%}".format,
}


def show(rows: list[dict]) -> None:
    table = Table(
        title="Micro-batches in arrival order vs by length (pass: rows/micro-batch; same run)"
    )
    for col in COLUMNS:
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(*(cell(r[col]) if col in r else "" for col, cell in COLUMNS.items()))
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
