"""Held-out comparison of writers after training: the untrained policy, the warm-started one
and GRPO checkpoints, each writing memories greedily for the same held-out instances, answered
by the same reader. Reports mean QA (r1) with a 95% bootstrap interval over instances, per
source, plus call success and memory size.

    python benchmarks/train_compare.py --config configs/train/cpu-smollm2.yaml \
        --policy untrained=smollm2-135m-instruct --policy sft=runs/sft-smollm2/policy \
        --policy grpo=runs/grpo-smollm2/checkpoints/step_000020/policy [--split test]

Greedy writing is deterministic, so `--reuse earlier.json` takes the rows of policies already
scored there (same config, split, instance count and model) instead of writing them again;
only new checkpoints cost time. The paired differences are computed as usual.

`--seed` draws another set of held-out instances (default 7, the set every earlier result
used): a confirmation on instances that no choice of settings has seen yet.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from memalpha.agent import build_agent
from memalpha.config import load_config
from memalpha.eval.stats import bootstrap_interval, paired_difference
from memalpha.reader import build_judge, build_reader
from memalpha.rl.config import TrainConfig
from memalpha.rl.parts import load_instances
from memalpha.rl.policy import Policy
from memalpha.rollout import Scoring, by_source, rollout, summarize
from memalpha.tokens import make_token_counter
from report import save

HELD_OUT_SEED = 7  # the test instances of every result before `--seed`, whose JSONs lack the key


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=Path("configs/train/cpu-smollm2.yaml"))
    p.add_argument("--policy", action="append", required=True, help="name=model")
    p.add_argument("--split", default="test")
    p.add_argument("--instances", type=int, default=8, help="Per source.")
    p.add_argument("--seed", type=int, default=HELD_OUT_SEED, help="Which held-out instances.")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/train_compare.json"))
    p.add_argument("--set", action="append", default=[], help="Config override, key.path=value.")
    p.add_argument("--reuse", type=Path, help="An earlier output of this script on the same set.")
    args = p.parse_args()
    reused = reusable_rows(args)
    cfg = load_config(TrainConfig, args.config, args.set)
    counter = make_token_counter(cfg.memory.tokenizer)
    specs = [
        s.model_copy(update={"split": args.split, "instances": args.instances, "seed": args.seed})
        for s in cfg.data.val
    ]
    instances = load_instances(specs, [], counter)
    reader, _ = build_reader(cfg.reader, counter)
    judge, _ = build_judge(cfg.judge)
    scoring = Scoring(reader, judge, cfg.reward, counter)
    writer = cfg.val_writer
    agent = build_agent(writer, counter)
    rows = []
    for item in args.policy:
        name, _, model = item.partition("=")
        if (name, model) in reused:
            rows.append(reused[name, model])
            continue
        policy = Policy(cfg.policy.model_copy(update={"model": model}))
        done = rollout(agent, policy.llm, writer.sampling(), instances, 1, cfg.memory, scoring)
        trajectories = done.trajectories
        policy.close()
        per_instance = [s.qa for s in done.scores]
        low, high = bootstrap_interval(per_instance)
        s = summarize(trajectories, done.scores)
        rows.append(
            {
                "policy": name,
                "model": model,
                "qa": s["r1_qa"],
                "qa_low": low,
                "qa_high": high,
                **{f"qa/{k}": v for k, v in by_source(trajectories, done.scores).items()},
                "reward": s["reward"],
                "call_success": s["call_success"],
                "memory_tokens": s["memory_tokens"],
                "per_instance": per_instance,
            }
        )
    table = Table(title=f"held-out {args.split}: {len(instances)} instances, greedy writer")
    cols = [k for k in rows[0] if k not in ("model", "per_instance")]
    for c in cols:
        table.add_column(c, justify="right")
    for r in rows:
        table.add_row(*(f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in cols))
    Console().print(table)
    diffs = paired_differences(rows)
    table = Table(title="paired QA differences (same instances), 95% bootstrap interval")
    for c in ("policy", "minus", "diff", "low", "high"):
        table.add_column(c, justify="right")
    for d in diffs:
        table.add_row(d["policy"], d["minus"], *(f"{d[c]:+.3f}" for c in ("diff", "low", "high")))
    Console().print(table)
    save(args.out, {"rows": rows, "paired": diffs, "instances": len(instances)}, args)


def reusable_rows(args: argparse.Namespace) -> dict[tuple[str, str], dict]:
    """Rows of `--reuse` by (name, model), after checking it scored the same instances."""
    if args.reuse is None:
        return {}
    earlier = json.loads(args.reuse.read_text("utf-8"))
    ours = {
        "config": str(args.config),
        "split": args.split,
        "instances": args.instances,
        "set": args.set,
        "seed": args.seed,
    }
    recorded = {"seed": HELD_OUT_SEED} | earlier["config"]
    same = {k: recorded.get(k) for k in ours}
    if same != ours:
        raise SystemExit(f"--reuse {args.reuse}: scored {same}, not {ours}")
    return {(r["policy"], r["model"]): r for r in earlier["rows"]}


def paired_differences(rows: list[dict]) -> list[dict]:
    """Every later policy minus every earlier one, instance by instance: the instances are
    shared, so the paired interval is much tighter than comparing two marginal intervals."""
    out = []
    for i, a in enumerate(rows):
        for b in rows[:i]:
            d = paired_difference(a["per_instance"], b["per_instance"])
            out.append({"policy": a["policy"], "minus": b["policy"], **d})
    return out


if __name__ == "__main__":
    main()
