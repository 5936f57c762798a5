"""What the loop stop (`loop_stop`, memalpha.llm.loops) saves and changes: one policy writes the
same instances with and without it, greedily and sampled (T, G copies of each instance, the
same seed), and the table gives per setting the answers cut as loops, the answers that ran to
the budget, the tokens decoded, the decoding seconds (the baseline: the same setting without
the stop, in the same run) and the mean memory. As a check, every first-chunk answer with the
stop must be a prefix of the one without (later chunks see memories the cuts changed).

    python benchmarks/loop_stop.py --policy runs/qs-amd/sft/policy \
        --data runs/qs-amd/data/train.jsonl [--instances 12] [--group 4] [--temperature 0.8] \
        [--out benchmarks/results/loop_stop.json]

The policy writes as its folder's `writer.json` says, with `loop_stop` replaced.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from memalpha.agent import build_agent, policy_writer
from memalpha.data import read_instances
from memalpha.llm import LoopStop, ModelConfig, make_llm
from memalpha.memory import Memory
from memalpha.tokens import make_token_counter
from report import save


def write_all(llm, writer, instances, counter, temperature: float, group: int, seed: int):
    """Every instance written `group` times in lock-step batches; (episodes, memories,
    seconds)."""
    agent = build_agent(writer, counter)
    inputs = [i.chunks for i in instances for _ in range(group)]
    memories = [Memory(writer.memory, counter) for _ in inputs]
    start = time.perf_counter()
    episodes = agent.memorize_many(llm, writer.sampling(temperature, seed=seed), memories, inputs)
    return episodes, memories, time.perf_counter() - start


def measure(episodes, memories, seconds: float) -> dict:
    gens = [step.generation for episode in episodes for step in episode.steps]
    return {
        "answers": len(gens),
        "looped": sum(g.finish_reason == "loop" for g in gens) / len(gens),
        "at_budget": sum(g.finish_reason == "length" for g in gens) / len(gens),
        "tokens_decoded": sum(len(g.token_ids) for g in gens),
        "seconds": seconds,
        "memory_tokens": statistics.mean(m.total_tokens for m in memories),
    }


def first_chunks_are_prefixes(cut, whole) -> float:
    """Share of first-chunk answers with the stop that are a prefix of the answer without."""
    pairs = [
        (c.steps[0].generation, w.steps[0].generation) for c, w in zip(cut, whole, strict=True)
    ]
    same = sum(w.token_ids[: len(c.token_ids)] == c.token_ids for c, w in pairs)
    return same / len(pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--instances", type=int, default=12)
    parser.add_argument("--group", type=int, default=4)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/loop_stop.json"))
    args = parser.parse_args()

    instances = read_instances(args.data)[: args.instances]
    base = policy_writer(args.policy)
    counter = make_token_counter(base.memory.tokenizer)
    model = ModelConfig(model=str(args.policy), dtype="float32", batch_size=args.batch_size)
    rows: dict[str, dict] = {}
    with make_llm(model) as llm:
        for label, temperature, group in (
            ("greedy", 0.0, 1),
            (f"T={args.temperature}, G={args.group}", args.temperature, args.group),
        ):
            runs = {}
            for stop in (None, LoopStop()):
                writer = base.model_copy(update={"loop_stop": stop})
                runs[stop is not None] = write_all(
                    llm, writer, instances, counter, temperature, group, args.seed
                )
                rows[f"{label}, {'loop stop' if stop else 'no stop'}"] = measure(
                    *runs[stop is not None]
                )
            rows[f"{label}, loop stop"]["speedup"] = (
                rows[f"{label}, no stop"]["seconds"] / rows[f"{label}, loop stop"]["seconds"]
            )
            rows[f"{label}, loop stop"]["first_chunk_prefixes"] = first_chunks_are_prefixes(
                runs[True][0], runs[False][0]
            )

    table = Table(title=f"loop stop: {args.policy} on {len(instances)} instances of {args.data}")
    for column in (
        "setting",
        "answers",
        "looped",
        "at budget",
        "tokens decoded",
        "seconds",
        "speed-up",
        "memory tokens",
    ):
        table.add_column(column, justify="left" if column == "setting" else "right")
    for name, r in rows.items():
        table.add_row(
            name,
            str(r["answers"]),
            f"{r['looped']:.1%}",
            f"{r['at_budget']:.1%}",
            str(r["tokens_decoded"]),
            f"{r['seconds']:.0f}",
            f"{r['speedup']:.2f}x" if "speedup" in r else "1 (baseline)",
            f"{r['memory_tokens']:.0f}",
        )
    Console().print(table)
    for name, r in rows.items():
        if "first_chunk_prefixes" in r:
            print(
                f"{name}: first-chunk answers a prefix of the uncut one: "
                f"{r['first_chunk_prefixes']:.0%}"
            )
    save(args.out, {"rows": rows}, args)


if __name__ == "__main__":
    main()
