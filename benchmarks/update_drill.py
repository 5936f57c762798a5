"""Transcripts for a second warm-start pass on updates alone: the selective teacher writes fresh
training instances of the conflict sources (train split, another seed than the warm start's),
and only the chunks where it updates or deletes a semantic entry are kept. The question they
answer: does a writer that aims its updates at the wrong entries (benchmarks/tool_use.py,
"aim") learn to aim from more examples of aiming? `--mix` adds every transcript of the warm
start's own data, so that the second pass also sees first chunks (core memory) and chatter.

    python benchmarks/update_drill.py --seed 5 --instances 16 --out runs/update-drill.jsonl
    memalpha sft --config configs/sft/cpu-smollm2-select.yaml --out runs/sft-update-drill \
        --set policy.model=runs/sft-smollm2-select/policy --set transcripts=runs/update-drill.jsonl
    # --mix: also --set examples=222 --set epochs=1 (the config caps examples at 200)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from memalpha.rl.config import SFTConfig
from memalpha.rl.sft import teacher_transcripts, write_transcripts
from memalpha.tokens import make_token_counter

SFT_CONFIG = Path(__file__).parents[1] / "configs/sft/cpu-smollm2-select.yaml"


def aims(response: str) -> bool:
    """The teacher's response names a semantic entry to update or delete."""
    return '"memory_id"' in response and '"semantic_memory"' in response


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=5, help="data seed (the warm start's is 1)")
    parser.add_argument("--instances", type=int, default=16, help="per conflict source")
    parser.add_argument("--out", type=Path, required=True, help="transcripts JSONL to write")
    parser.add_argument("--mix", action="store_true", help="add the warm start's transcripts")
    args = parser.parse_args()
    raw = yaml.safe_load(SFT_CONFIG.read_text("utf-8"))
    warm_start = SFTConfig.model_validate(raw)
    shape = {"split": "train", "seed": args.seed, "instances": args.instances}
    shape |= {"max_tokens": 512, "chunk_tokens": 128, "questions": 6, "facts": 6}
    raw["data"] = {"train": [{"source": s, **shape} for s in ("synth_cr", "conflict")]}
    cfg = SFTConfig.model_validate(raw)
    counter = make_token_counter(cfg.memory.tokenizer)
    transcripts = teacher_transcripts(cfg, counter)
    kept = [t for t in transcripts if aims(t[1])]
    print(f"kept {len(kept)} of {len(transcripts)} fresh chunk transcripts")
    if args.mix:
        mixed = teacher_transcripts(warm_start, counter)
        print(f"added the warm start's {len(mixed)} transcripts")
        kept += mixed
    write_transcripts(args.out, kept)
    print(f"wrote {len(kept)} transcripts to {args.out}")


if __name__ == "__main__":
    main()
