"""What writers do with their tools on conflict-resolution inputs: calls per tool and how many
succeed, and for every fact that changed (`QA.superseded`: an attribute, or an employer)
whether the final memory holds the new value only (overwritten), an entry still stating the
old value beside the new (both), the old only, or neither (`Superseded.fate`); single-hop
(attribute) changes are also counted apart, as the first measurements were. Targeting: at
every chunk the selective teacher is asked what it would update or delete given the very
prompt the writer saw; the writer's semantic updates and deletes are counted as hitting one of
those entries or another (a small model gets the call right and the id wrong). Grounded aim
(`memalpha.aim`, the reward's r5) checks the same calls against the data instead of the
teacher: changes wanted, calls aimed, hits, and the mean r5 over chunks. Keep (the reward's
r6): how many of the facts the questions depend on that are due at the input's end
(`aim.facts_of`: changed values as they end, and bridge answers) the final memory states, and
the mean r6 over chunks (rows from outputs older than it show "-"). The rule writer,
the selective teacher and policy folders write greedily the held-out test instances of
`configs/eval/select.yaml`'s conflict sources. Each policy after the first is compared with
the first on the share of changed facts overwritten, paired by instance (95% bootstrap); so is
each `--pool`, the per-instance mean over the policies it names (training seeds of one recipe).
Every row also keeps each question's fates (`fates_by_question`, "instance id/question id"), so
`benchmarks/fate_answers.py` can set them beside the reader's answers of an eval on the same
instances.

    python benchmarks/tool_use.py --policy warm-start=runs/sft-smollm2-select/policy \
        --policy grpo=runs/grpo-smollm2-select-stale/checkpoints/step_000008/policy \
        [--pool grpo-seeds=grpo,grpo-seed1] [--instances 6] [--scale 1] [--chunk-tokens 128] \
        [--out benchmarks/results/tool_use.json] [--reuse benchmarks/results/tool_use.json] \
        [--print-changes] [--loop-stop] [--threads 1]

`--loop-stop`: the `--policy` writers end an answer whose tail repeats one span
(`memalpha.llm.loops`' defaults), as `loop_stop: {}` on an eval method does; rows are reused
only from outputs run with the same setting.

`--threads`: CPU threads to write on (default: as found, OMP_NUM_THREADS or one per core); the
output records the count, and rows are reused only from outputs written under the same one:
greedy bf16 writing differs with it (benchmarks/RESULTS.md, "Groups of 8 at change chunks").

`--reuse` an earlier output (repeatable): a `--policy` it measured under the very same
NAME=folder, on the same instances, is taken from it instead of written again (greedy writing
is deterministic; a folder rewritten since is not noticed).

A policy writes as its folder's `writer.json` says (as the eval does); the rule writers write
with the selective recipe's view (8 retrieved entries per list).
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import Counter
from pathlib import Path
from typing import get_args

from rich.console import Console
from rich.table import Table

from memalpha.agent import RuleWriterLLM, WriterConfig, build_agent, policy_writer
from memalpha.aim import episode_aim, facts_of
from memalpha.data import BuildConfig, Fate, build
from memalpha.eval.stats import paired_difference
from memalpha.llm import FORMATS, ModelConfig, make_llm, pin_threads
from memalpha.llm.loops import LoopStop
from memalpha.memory import Memory
from memalpha.tokens import make_token_counter
from report import save

SOURCES = ("synth_cr", "conflict")
TOOLS = ("new_memory_insert", "memory_update", "memory_delete")
FATES = get_args(Fate)  # overwritten, both, old, lost: `Superseded.fate`


def semantic_targets(calls) -> list[str]:
    """The semantic-memory ids that update and delete calls name."""
    return [
        str(c.arguments.get("memory_id"))
        for c in calls
        if c.name in TOOLS[1:]
        and isinstance(c.arguments, dict)
        and c.arguments.get("memory_type") == "semantic_memory"
    ]


def targeting(episodes, fmt, sampling) -> Counter[str]:
    """The writer's semantic update/delete targets against the teacher's on the same prompts."""
    teacher = RuleWriterLLM(fmt, selective=True)
    out: Counter[str] = Counter()
    for step in (s for e in episodes for s in e.steps):
        wanted = Counter(
            semantic_targets(fmt.parse(teacher.generate([step.messages], sampling)[0].text).calls)
        )
        named = Counter(semantic_targets(r.call for r in step.results))
        out["wanted"] += sum(wanted.values())
        out["hit"] += sum((named & wanted).values())
        out["other"] += sum((named - wanted).values())
    return out


def print_changes(name: str, instances, episodes) -> None:
    """Every update and delete call a writer made, by instance and chunk, with the content an
    update wrote: what `--print-changes` shows, to read where the calls landed."""
    for inst, episode in zip(instances, episodes, strict=True):
        print(f"{name} {inst.id}")
        for step in episode.steps:
            for r in step.results:
                if r.call.name in TOOLS[1:]:
                    args = r.call.arguments if isinstance(r.call.arguments, dict) else {}
                    where = f"{args.get('memory_type')} {args.get('memory_id')}"
                    wrote = args.get("new_content")
                    print(f"  chunk {step.index}: {r.call.name} {where} ok={r.ok} {wrote!r}")


def measure(
    name: str, writer_llm, cfg: WriterConfig, instances, counter, show: bool = False
) -> dict:
    agent = build_agent(cfg, counter)
    memories = [Memory(cfg.memory, counter) for _ in instances]
    episodes = agent.memorize_many(
        writer_llm, cfg.sampling(), memories, [i.chunks for i in instances]
    )
    if show:
        print_changes(name, instances, episodes)
    calls: Counter[str] = Counter()
    ok: Counter[str] = Counter()
    for step in (s for e in episodes for s in e.steps):
        for r in step.results:
            calls[r.call.name] += 1
            ok[r.call.name] += r.ok
    aim = targeting(episodes, FORMATS[cfg.format], cfg.sampling())
    grounded = [
        a
        for inst, e in zip(instances, episodes, strict=True)
        for a in episode_aim(inst, [s.results for s in e.steps], cfg.memory, counter)
    ]
    core = sum(bool(m.core) for m in memories)
    due_at_end, kept_at_end = 0, 0  # facts `aim.facts_of` due at the input's end, and stated
    fates: Counter[str] = Counter()
    single: Counter[str] = Counter()
    overwritten_share = []  # per instance: the unit the paired interval resamples
    by_question: dict[str, list[str]] = {}  # benchmarks/fate_answers.py joins them to QA
    for inst, memory in zip(instances, memories, strict=True):
        contents = memory.contents()
        due = [f for f in facts_of(inst) if f.due_at(len(inst.chunks) - 1)]
        due_at_end += len(due)
        kept_at_end += sum(f.stated(contents) for f in due)
        own: Counter[str] = Counter()
        for q in inst.questions:
            for change in q.superseded:
                fate = change.fate(contents)
                own[fate] += 1
                single[fate] += q.qtype == "single_hop"
                by_question.setdefault(f"{inst.id}/{q.id}", []).append(fate)
        fates += own
        overwritten_share.append(own["overwritten"] / max(1, own.total()))
    return {
        "writer": name,
        **{f"{t}_calls": calls[t] for t in TOOLS},
        **{f"{t}_ok": ok[t] for t in TOOLS},
        "core_set": core / len(memories),
        "changed_facts": sum(fates.values()),
        **{k: fates[k] for k in FATES},
        "single_hop_changed_facts": sum(single.values()),
        **{f"single_hop_{k}": single[k] for k in FATES},
        "memory_tokens": statistics.fmean(m.total_tokens for m in memories),
        "teacher_targets": aim["wanted"],
        "targets_hit": aim["hit"],
        "targets_other": aim["other"],
        "aim_wanted": sum(a.wanted for a in grounded),
        "aim_aimed": sum(a.aimed for a in grounded),
        "aim_hits": sum(a.hits for a in grounded),
        "aim_resolved": sum(a.resolved for a in grounded),  # reward.aim_misses: fate
        "r5_aim": statistics.fmean(a.r5 for a in grounded),
        "facts_due_at_end": due_at_end,
        "facts_kept_at_end": kept_at_end,
        "r6_keep": statistics.fmean(a.r6 for a in grounded),
        "overwritten_share_by_instance": overwritten_share,
        "fates_by_question": by_question,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", action="append", default=[], help="NAME=HF folder")
    parser.add_argument(
        "--pool", action="append", default=[], help="NAME=policy,policy: seeds pooled"
    )
    parser.add_argument("--instances", type=int, default=6, help="per source")
    parser.add_argument(
        "--scale", type=int, default=1, help="input length as a multiple of 512 tokens"
    )
    parser.add_argument("--chunk-tokens", type=int, default=128, help="tokens per chunk")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("results") / "tool_use.json"
    )
    parser.add_argument(
        "--reuse",
        type=Path,
        action="append",
        default=[],
        help="an earlier output to take rows from",
    )
    parser.add_argument(
        "--print-changes",
        action="store_true",
        help="print every update and delete call of the --policy writers it writes",
    )
    parser.add_argument(
        "--loop-stop",
        action="store_true",
        help="the --policy writers cut an answer that loops (memalpha.llm.loops defaults)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads to write on (default: as found)"
    )
    args = parser.parse_args()
    args.threads = pin_threads(args.threads)  # recorded in the output's config
    names = [spec.partition("=")[0] for spec in args.policy]
    pool_specs = [parse_pool(spec, names) for spec in args.pool]
    rule_cfg = WriterConfig(
        prompt="compact", max_new_tokens=640, memory={"view": {"mode": "retrieved", "k": 8}}
    )
    counter = make_token_counter(rule_cfg.memory.tokenizer)
    instances = [
        inst
        for source in SOURCES
        for inst in build(
            BuildConfig(
                source=source,
                split="test",
                seed=0,
                instances=args.instances,
                max_tokens=512 * args.scale,
                chunk_tokens=args.chunk_tokens,
                questions=6,
                facts=6,
            ),
            counter,
        )
    ]
    rows = [
        measure("rule-writer", RuleWriterLLM(FORMATS["hermes"]), rule_cfg, instances, counter),
        measure(
            "selective-teacher",
            RuleWriterLLM(FORMATS["hermes"], selective=True),
            rule_cfg,
            instances,
            counter,
        ),
    ]
    earlier = reusable_rows(args, instances)
    for spec in args.policy:
        name, _, folder = spec.partition("=")
        if spec in earlier:
            source, row = earlier[spec]
            print(f"{name}: taken from {source}")
            rows.append(row)
            continue
        llm = make_llm(ModelConfig(model=folder, batch_size=len(instances)))
        try:
            rows.append(
                measure(name, llm, writer_of(folder, args), instances, counter, args.print_changes)
            )
        finally:
            llm.close()
    title = f"Tool use on {len(instances)} held-out conflict instances, {512 * args.scale} tokens"
    title += f" in {args.chunk_tokens}-token chunks"
    table = Table(title=title)
    heads = ["writer", "insert ok/all", "update ok/all", "delete ok/all", "core set"]
    heads += ["changed facts", *FATES, "single-hop overwritten", "aim hit/teacher's", "aim other"]
    heads += ["r5 hits/wanted", "resolved/wanted", "r5 aimed", "r5 mean"]
    heads += ["facts kept at end", "r6 mean"]
    heads += ["memory tokens"]
    for head in heads:
        table.add_column(head, justify="left" if head == "writer" else "right")
    for r in rows:
        table.add_row(
            r["writer"],
            *(f"{r[f'{t}_ok']}/{r[f'{t}_calls']}" for t in TOOLS),
            f"{r['core_set']:.2f}",
            *(str(r[k]) for k in ("changed_facts", *FATES)),
            f"{r['single_hop_overwritten']}/{r['single_hop_changed_facts']}",
            f"{r['targets_hit']}/{r['teacher_targets']}",
            str(r["targets_other"]),
            f"{r['aim_hits']}/{r['aim_wanted']}",
            f"{r['aim_resolved']}/{r['aim_wanted']}" if "aim_resolved" in r else "-",
            str(r["aim_aimed"]),
            f"{r['r5_aim']:.3f}",
            f"{r['facts_kept_at_end']}/{r['facts_due_at_end']}" if "r6_keep" in r else "-",
            f"{r['r6_keep']:.3f}" if "r6_keep" in r else "-",
            f"{r['memory_tokens']:.0f}",
        )
    console = Console(width=200)
    console.print(table)
    policies = rows[2:]
    pools = [pooled(name, members, policies) for name, members in pool_specs]
    for r in policies[1:] + pools:
        d = paired_difference(
            r["overwritten_share_by_instance"], policies[0]["overwritten_share_by_instance"]
        )
        r["overwritten_share_vs_first_policy"] = d
        console.print(
            f"{r['writer']} − {policies[0]['writer']}: share of changed facts overwritten "
            f"{d['diff']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}] (95% paired bootstrap over "
            f"{len(instances)} instances)"
        )
    save(args.out, {"rows": rows, "pools": pools}, args)


def writer_of(folder: str, args: argparse.Namespace) -> WriterConfig:
    """How a policy folder writes: its `writer.json`, with the loop stop if `--loop-stop`."""
    writer = policy_writer(folder)
    return writer.model_copy(update={"loop_stop": LoopStop()}) if args.loop_stop else writer


def reusable_rows(args: argparse.Namespace, instances) -> dict[str, tuple[Path, dict]]:
    """For this run's `--policy` specs, a row of a `--reuse` file (and the file) measured under
    the same NAME=folder, with the same instance count, length, chunking, loop stop and
    thread count, on these instances (an output that did not record its thread count: none).

    Raises:
        SystemExit: a file is not an output of this script.
    """
    shape = ("instances", "scale", "chunk_tokens", "loop_stop", "threads")
    unrecorded = {"loop_stop": False, "threads": None}  # outputs before these options
    ids = {inst.id for inst in instances}
    out: dict[str, tuple[Path, dict]] = {}
    for path in args.reuse:
        try:
            earlier = json.loads(path.read_text("utf-8"))
            config, rows = earlier["config"], {r["writer"]: r for r in earlier["rows"]}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SystemExit(f"--reuse {path}: not an output of this script ({exc})") from None
        if differ := [k for k in shape if config.get(k, unrecorded.get(k)) != getattr(args, k)]:
            print(f"--reuse {path}: written with other {', '.join(differ)}; nothing taken")
            continue
        for spec in args.policy:
            row = rows.get(spec.partition("=")[0])
            if spec in out or spec not in config.get("policy", []) or row is None:
                continue
            asked = {key.rpartition("/")[0] for key in row["fates_by_question"]}
            if asked <= ids and len(row["overwritten_share_by_instance"]) == len(instances):
                out[spec] = (path, row)
    return out


def parse_pool(spec: str, names: list[str]) -> tuple[str, list[str]]:
    """(name, members) of a `--pool NAME=a,b`, checked before anything is measured.

    Raises:
        SystemExit: the spec names no policy, or one that is not a `--policy`.
    """
    name, _, members = spec.partition("=")
    listed = [m for m in members.split(",") if m]
    missing = [m for m in listed if m not in names]
    if not name or not listed or missing:
        raise SystemExit(f"--pool {spec!r}: give NAME=policy,policy of --policy names {names}")
    return name, listed


def pooled(name: str, members: list[str], policies: list[dict]) -> dict:
    """A pool's row: per instance, the mean overwritten share of its member policies."""
    by_name = {r["writer"]: r for r in policies}
    shares = [by_name[m]["overwritten_share_by_instance"] for m in members]
    return {
        "writer": name,
        "members": members,
        "overwritten_share_by_instance": [statistics.fmean(v) for v in zip(*shares, strict=True)],
    }


if __name__ == "__main__":
    main()
