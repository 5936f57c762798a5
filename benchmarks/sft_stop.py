"""Does a warm start know where its answer ends? For each policy, the probability it gives the
end-of-sequence token right after the teacher's last call (at once, on a chunk the teacher
writes nothing for), on the SFT config's own training transcripts, beside the mean
log-probability of the other target tokens (how well the calls themselves were learned).

A writer that learned the calls but not the stop re-inserts facts it already stored until its
token budget runs out (issue 25: Qwen2.5-Coder-0.5B warm-started on the SmolLM2 recipe). The
probe reads the transcripts the SFT run trained on (`memalpha.rl.sft.teacher_transcripts` of
`--config`), so nothing here is held out: it measures what the training reached.

    python benchmarks/sft_stop.py --config configs/sft/cpu-smollm2-select.yaml \
        --policy smollm2=runs/sft-smollm2-select/policy \
        --policy qwen=runs/sft-qwen05-select/policy [--examples 24] \
        [--out benchmarks/results/sft_stop.json]

A policy may also be a registry name (the model before any warm start).
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from memalpha.config import load_config
from memalpha.rl.config import SFTConfig
from memalpha.rl.policy import Policy, response_logprobs
from memalpha.rl.sft import sft_examples, teacher_transcripts
from memalpha.tokens import make_token_counter
from report import save


def probe(cfg: SFTConfig, folder: str, transcripts, examples: int) -> dict:
    """The stop probability and the other tokens' mean log-probability of `folder` on the
    first `examples` of the SFT run's shuffled examples (as `memalpha sft` orders them)."""
    policy_cfg = cfg.policy.model_copy(update={"model": folder})
    policy = Policy(policy_cfg, None, bf16=False)
    try:
        pairs, _ = sft_examples(cfg, policy, transcripts)
        stop, rest = [], []
        for prompt, target in pairs[:examples]:
            with torch.no_grad():
                logprobs = response_logprobs(policy.model, policy.batch([prompt], [target]))[0]
            stop.append(math.exp(float(logprobs[-1])))
            if len(target) > 1:  # a chunk the teacher writes nothing for has the stop only
                rest.append(float(logprobs[:-1].mean()))
    finally:
        policy.close()
    return {
        "p_stop_mean": statistics.fmean(stop),
        "p_stop_median": statistics.median(stop),
        "p_stop_below_half": sum(p < 0.5 for p in stop),
        "other_token_logprob": statistics.fmean(rest),
        "p_stop": stop,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="the SFT run's config")
    parser.add_argument("--policy", action="append", required=True, help="NAME=HF folder")
    parser.add_argument("--examples", type=int, default=24)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("results") / "sft_stop.json"
    )
    args = parser.parse_args()
    cfg = load_config(SFTConfig, args.config)
    transcripts = teacher_transcripts(cfg, make_token_counter(cfg.memory.tokenizer))
    rows = []
    for spec in args.policy:
        name, _, folder = spec.partition("=")
        rows.append(
            {"policy": name, "folder": folder, **probe(cfg, folder, transcripts, args.examples)}
        )
    table = Table(title=f"End of answer on {args.examples} SFT training examples ({args.config})")
    for head in ("policy", "p(stop) mean", "median", "below 0.5", "other tokens: mean log-prob"):
        table.add_column(head, justify="left" if head == "policy" else "right")
    for r in rows:
        table.add_row(
            r["policy"],
            f"{r['p_stop_mean']:.3f}",
            f"{r['p_stop_median']:.3f}",
            f"{r['p_stop_below_half']}/{args.examples}",
            f"{r['other_token_logprob']:.3f}",
        )
    Console(width=160).print(table)
    save(args.out, {"rows": rows}, args)


if __name__ == "__main__":
    main()
