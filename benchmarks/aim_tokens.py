"""How well warm starts have learned to aim: teacher-forced on the selective teacher's own
transcripts of fresh train draws (the teacher writes every chunk), each policy's mean NLL and
argmax accuracy on the tokens that spell the memory_id of a semantic update or delete
(`memalpha.rl.sft.aim_weights` marks them) against every other target token, and the share of
those ids it would name whole (every token of the id its argmax). A warm start whose mean loss
is near 0.01 can still put most of its error on these few tokens, which decide whether an
update lands on the entry that holds the old value.

    python benchmarks/aim_tokens.py --policy warm=runs/sft-smollm2-select/policy \
        --policy aim=runs/sft-smollm2-select-aim/policy [--seed 6] [--instances 4] \
        [--chunk-tokens 128] [--recipe configs/sft/cpu-smollm2-select.yaml] \
        [--out benchmarks/results/aim_tokens.json]

The draws are the train split (seed 6 by default: no warm start's config uses it) of the
conflict sources of `--recipe` (an SFT config; the selective warm start's by default), whose
teacher, prompt, view and format the transcripts follow: measure a policy on the recipe it was
trained with (`cpu-smollm2-select-idafter.yaml`'s ids come after their text).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from memalpha.config import load_config
from memalpha.data import BuildConfig
from memalpha.llm import FORMATS
from memalpha.rl.config import SFTConfig
from memalpha.rl.policy import Policy
from memalpha.rl.sft import aim_weights, teacher_transcripts
from memalpha.tokens import make_token_counter
from report import save


def fresh_draws(args: argparse.Namespace) -> SFTConfig:
    """The recipe with its conflict sources drawn again at `args.seed`."""
    cfg = load_config(SFTConfig, args.recipe)
    specs = [
        BuildConfig(
            source=source,
            split="train",
            seed=args.seed,
            instances=args.instances,
            max_tokens=512,
            chunk_tokens=args.chunk_tokens,
            questions=6,
            facts=6,
        )
        for source in ("synth_cr", "conflict")
    ]
    return cfg.model_copy(update={"data": cfg.data.model_copy(update={"train": specs})})


def measure(cfg: SFTConfig, folder: str, transcripts) -> dict:
    """Teacher-forced NLL and argmax accuracy by token role for the policy in `folder`."""
    policy = Policy(cfg.policy.model_copy(update={"model": folder}), None, bf16=False)
    fmt = FORMATS[cfg.format]
    nll: dict[str, list[float]] = {"aim": [], "other": []}
    right: dict[str, list[bool]] = {"aim": [], "other": []}
    ids_whole: list[bool] = []
    try:
        for messages, response in transcripts:
            prompt, target = policy.prompt_ids(messages), policy.response_ids(response)
            heavy = [w > 1 for w in aim_weights(policy.tokenizer, fmt, response, 2.0)]
            with torch.no_grad():
                logits = policy.model(torch.tensor([prompt + target])).logits[0].float()
            logprobs = torch.log_softmax(logits[len(prompt) - 1 : -1], -1)
            hits = (logprobs.argmax(-1) == torch.tensor(target)).tolist()
            for t, token in enumerate(target):
                role = "aim" if heavy[t] else "other"
                nll[role].append(-float(logprobs[t, token]))
                right[role].append(bool(hits[t]))
            ids_whole += whole_ids(heavy, hits)
    finally:
        policy.close()
    row = {"aim_ids": len(ids_whole), "aim_ids_whole": sum(ids_whole)}
    for role in nll:
        row |= {
            f"{role}_tokens": len(nll[role]),
            f"{role}_nll": statistics.fmean(nll[role]),
            f"{role}_accuracy": statistics.fmean(right[role]),
        }
    return row


def whole_ids(heavy: list[bool], hits: list[bool]) -> list[bool]:
    """For each run of marked tokens (one id), whether every token of it was the argmax."""
    out: list[bool] = []
    inside = False
    for marked, hit in zip(heavy, hits, strict=True):
        if marked and not inside:
            out.append(hit)
        elif marked:
            out[-1] = out[-1] and hit
        inside = marked
    return out


def show(rows: list[dict]) -> None:
    table = Table(title="teacher-forced on the selective teacher's transcripts (fresh draws)")
    for col in (
        "policy",
        "aim tokens",
        "aim NLL",
        "aim acc",
        "ids whole",
        "other NLL",
        "other acc",
    ):
        table.add_column(col, justify="left" if col == "policy" else "right")
    for r in rows:
        table.add_row(
            r["policy"],
            str(r["aim_tokens"]),
            f"{r['aim_nll']:.3f}",
            f"{r['aim_accuracy']:.3f}",
            f"{r['aim_ids_whole']}/{r['aim_ids']}",
            f"{r['other_nll']:.4f}",
            f"{r['other_accuracy']:.4f}",
        )
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", action="append", required=True, help="NAME=HF folder")
    parser.add_argument("--seed", type=int, default=6, help="train-split draw")
    parser.add_argument("--instances", type=int, default=4, help="per conflict source")
    parser.add_argument("--chunk-tokens", type=int, default=128)
    parser.add_argument(
        "--recipe",
        type=Path,
        default=Path("configs/sft/cpu-smollm2-select.yaml"),
        help="SFT config whose teacher, view and format the transcripts follow",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/aim_tokens.json"))
    args = parser.parse_args()
    cfg = fresh_draws(args)
    transcripts = teacher_transcripts(cfg, make_token_counter(cfg.memory.tokenizer))
    rows = []
    for spec in args.policy:
        name, folder = spec.split("=", 1)
        rows.append({"policy": name, "folder": folder, **measure(cfg, folder, transcripts)})
    show(rows)
    save(args.out, {"transcripts": len(transcripts), "rows": rows}, args)


if __name__ == "__main__":
    main()
