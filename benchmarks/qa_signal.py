"""How much QA signal a GRPO step would see: G rollouts of a policy per training instance, at each
given temperature, and for how many instances the rollouts disagree on r1 at all. An instance
whose G rollouts all score the same r1 gives GRPO no QA gradient (only the shaped terms differ).

Each instance is also written once greedily, the way the held-out comparison decodes. Samples
that beat the greedy memory are the only ones that show GRPO a better-than-greedy writer; if the
best of G is no better than greedy, the update can mostly learn to avoid its own sampling errors.

    python benchmarks/qa_signal.py --policy runs/sft-smollm2/policy --temperature 0.8 \
        --temperature 1.0 [--per-source 2] [--group-size 4]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from memalpha.agent import build_agent
from memalpha.config import load_config
from memalpha.reader import build_judge, build_reader
from memalpha.rl.advantages import share_with_spread
from memalpha.rl.config import TrainConfig
from memalpha.rl.parts import load_instances, seed_everything
from memalpha.rl.policy import Policy
from memalpha.rollout import Scoring, anchor_stats, rollout
from memalpha.tokens import make_token_counter
from report import save


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=Path("configs/train/cpu-smollm2.yaml"))
    p.add_argument("--policy", required=True, help="Model name or HF folder.")
    p.add_argument("--temperature", type=float, action="append", required=True)
    p.add_argument("--per-source", type=int, default=2, help="Training instances per source.")
    p.add_argument("--group-size", type=int, default=4)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/qa_signal.json"))
    p.add_argument("--set", action="append", default=[], help="Config override, key.path=value.")
    args = p.parse_args()
    cfg = load_config(TrainConfig, args.config, [*args.set, f"policy.model={args.policy}"])
    counter = make_token_counter(cfg.memory.tokenizer)
    specs = [s.model_copy(update={"instances": args.per_source}) for s in cfg.data.train]
    instances = load_instances(specs, [], counter)
    reader, _ = build_reader(cfg.reader, counter)
    judge, _ = build_judge(cfg.judge)
    scoring = Scoring(reader, judge, cfg.reward, counter)
    policy = Policy(cfg.policy)
    g = args.group_size
    agent = build_agent(cfg.writer, counter)
    anchors = rollout(agent, policy.llm, cfg.writer.sampling(), instances, 1, cfg.memory, scoring)
    # each instance's anchor, written once for every temperature
    greedy_trajs = [replace(t, greedy=True) for t in anchors.trajectories]
    greedy = [s.qa for s in anchors.scores]
    rows = []
    for temperature in args.temperature:
        seed_everything(cfg.seed)
        sampling = cfg.writer.sampling(temperature, seed=cfg.seed, logprobs=True)
        began = time.perf_counter()
        done = rollout(agent, policy.llm, sampling, instances, g, cfg.memory, scoring)
        r1s = [s.qa for s in done.scores]
        groups = [r1s[i * g : (i + 1) * g] for i in range(len(instances))]
        spread = [max(r1) - min(r1) for r1 in groups]
        anchored = anchor_stats(
            [*greedy_trajs, *done.trajectories], [*anchors.scores, *done.scores]
        )
        rows.append(
            {
                "temperature": temperature,
                "instances": len(instances),
                "with_qa_variance": share_with_spread(r1s, [i // g for i in range(len(r1s))]),
                "mean_r1_range": sum(spread) / len(spread),
                "mean_r1": sum(map(sum, groups)) / (g * len(groups)),
                "greedy_r1": anchored["anchor_r1"],
                "best_of_g_r1": sum(map(max, groups)) / len(groups),
                "samples_above_greedy": anchored["samples_above_anchor"],
                "samples_below_greedy": anchored["samples_below_anchor"],
                "seconds": time.perf_counter() - began,
                "r1": {
                    f"{inst.data_source}/{inst.id}": {"greedy": base, "samples": r1}
                    for inst, r1, base in zip(instances, groups, greedy, strict=True)
                },
            }
        )
    policy.close()
    table = Table(title=f"QA spread over G = {g} rollouts of {args.policy}")
    cols = [
        "temperature",
        "instances",
        "with_qa_variance",
        "mean_r1_range",
        "mean_r1",
        "greedy_r1",
        "best_of_g_r1",
        "samples_above_greedy",
        "samples_below_greedy",
        "seconds",
    ]
    for c in cols:
        table.add_column(c, justify="right")
    for r in rows:
        table.add_row(*(f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in cols))
    Console().print(table)
    save(args.out, {"rows": rows}, args)


if __name__ == "__main__":
    main()
