"""What a writer does at a change chunk when the memory before it is a perfect one: the
selective rule writer (it overwrites every changed fact its view shows) writes an eval config's
instances at each scale, and at every chunk that announces a change whose old value memory still
states (`aim.wanted_changes`) each memalpha method of the config answers that chunk greedily from
that very memory. The table counts the wanted changes by what the answer left: overwritten (new
value stated, old not), both, old, lost (`Superseded.fate`), with the calls that aimed at an entry
and hit a change (`aim.chunk_aim`) and whether the prompt showed the old entry.

Why: the GRPO writers overwrite far fewer changed facts at 16x their training length than at 1x
and, under the view by sentence, insert beside an old entry they were shown (benchmarks/RESULTS.md,
"A view by sentence"). Their own memories at 16x differ from those at 1x in size and in their own
earlier mistakes; from the teacher's memory only the size differs. Same rates at both scales: the
loss is the writer's own drift; lower at 16x: a prompt from a large memory alone changes what
the writer does.

    python benchmarks/change_probe.py --config configs/eval/length-idafter-fate-sentences.yaml \
        --config configs/eval/length-idafter-warm-sentences.yaml \
        [--scale 1] [--id-offset 250] [--threads 2] [--batch 8] \
        [--out benchmarks/results/change_probe.json]
    python benchmarks/change_probe.py --summarize benchmarks/results/change_probe.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml
from rich.console import Console
from rich.progress import track
from rich.table import Table

from memalpha.agent import selective_teacher
from memalpha.aim import chunk_aim, wanted_changes
from memalpha.data import Instance, Superseded
from memalpha.eval import EvalConfig
from memalpha.eval.methods import WriterMethod
from memalpha.eval.runner import load_jobs
from memalpha.eval.summary import FATES
from memalpha.llm import LLM, pin_threads
from memalpha.memory import Memory, ToolExecutor, ToolRegistry
from memalpha.rollout import fresh_memory
from memalpha.tokens import make_token_counter
from report import save


@dataclass(frozen=True, slots=True)
class ChangeState:
    """A chunk that wants a change, and the teacher's memory as the chunk begins."""

    scale: int
    instance: Instance
    index: int
    memory: Memory
    wanted: list[Superseded]


def teacher_states(
    method: WriterMethod, teacher: LLM, jobs: list, id_offset: int = 0
) -> list[ChangeState]:
    """The selective rule writer (`teacher`), through `method`'s agent (format, memory, view,
    ids), writes every job's instance; the states at the chunks that want a change, in job
    order. The memory's list entries are numbered from `id_offset` + 1 (a short input's memory
    under the ids of a long one's)."""
    sampling = method.writer.sampling()
    states = []
    for job in jobs:
        memory = fresh_memory(method.writer.memory, method.counter, id_offset)
        for t, chunk in enumerate(job.instance.chunks):
            if wanted := wanted_changes(job.instance, t, memory):
                states.append(ChangeState(job.scale, job.instance, t, memory.copy(), wanted))
            prompt = method.agent.messages(memory, chunk)
            method.agent.execute(memory, prompt, teacher.generate([prompt], sampling)[0], t)
    return states


def old_entry_shown(state: ChangeState, change: Superseded, prompt_text: str) -> bool:
    """Whether some entry stating the change's old value (and not its new one) is in the prompt."""
    subject, old, new = (x.casefold() for x in (change.subject, change.old, change.new))
    return any(
        subject in (text := c.casefold()) and old in text and new not in text and c in prompt_text
        for c in state.memory.contents()
    )


def probe(
    name: str, method: WriterMethod, author: LLM, states: list[ChangeState], batch: int
) -> list[dict]:
    """`author`'s greedy answer, through `method`'s agent, at every state; a row per change."""
    replay = ToolExecutor(ToolRegistry(method.writer.memory.disabled))
    agent, sampling = method.agent, method.writer.sampling()
    prompts = [agent.messages(s.memory, s.instance.chunks[s.index]) for s in states]
    generations = []
    for start in track(range(0, len(prompts), batch), description=name):
        generations += author.generate(prompts[start : start + batch], sampling)
    rows = []
    for state, prompt, gen in zip(states, prompts, generations, strict=True):
        step = agent.execute(state.memory.copy(), prompt, gen, state.index)
        after = state.memory.copy()
        aim = chunk_aim(after, state.wanted, step.results, replay)
        text = "\n".join(m["content"] for m in prompt)
        rows += [
            {
                "method": name,
                "scale": state.scale,
                "index": state.index,
                "memory_tokens": state.memory.total_tokens,
                "shown": old_entry_shown(state, change, text),
                "fate": change.fate(after.contents()),
                "aimed": aim.aimed,
                "hits": aim.hits,
                "calls": len(step.results),
            }
            for change in state.wanted
        ]
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    """Per (method, scale): wanted changes by fate, shown old entries, calls per change chunk,
    and how many of the changes that came alone in their chunk (`lone`) were overwritten. A
    row's chunk is told apart by its (chunk index, memory tokens): two instances' states with
    both equal would be counted as one chunk."""
    at_state = Counter((r["method"], r["scale"], r["index"], r["memory_tokens"]) for r in rows)
    out = []
    for key in dict.fromkeys((r["method"], r["scale"]) for r in rows):
        mine = [r for r in rows if (r["method"], r["scale"]) == key]
        fates = Counter(r["fate"] for r in mine)
        lone = [r for r in mine if at_state[(*key, r["index"], r["memory_tokens"])] == 1]
        out.append(
            {
                "method": key[0],
                "scale": key[1],
                "wanted": len(mine),
                **{f: fates[f] for f in FATES if f != "mixed"},
                "shown": sum(r["shown"] for r in mine),
                "overwritten_when_shown": sum(
                    r["shown"] and r["fate"] == "overwritten" for r in mine
                ),
                "lone": len(lone),
                "lone_overwritten": sum(r["fate"] == "overwritten" for r in lone),
                "memory_tokens": sum(r["memory_tokens"] for r in mine) / max(1, len(mine)),
                "calls": sum(r["calls"] for r in mine) / max(1, len(mine)),
            }
        )
    return out


def print_summary(summary: list[dict]) -> None:
    heads = list(summary[0])
    table = Table(title="Wanted changes answered from the selective teacher's memory, by fate")
    for head in heads:
        table.add_column(head, justify="left" if head == "method" else "right")
    for r in summary:
        table.add_row(*(f"{r[h]:.1f}" if isinstance(r[h], float) else str(r[h]) for h in heads))
    Console(width=180).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--summarize",
        type=Path,
        action="append",
        help="print the summary of stored results JSON (no model) and exit",
    )
    parser.add_argument(
        "--config",
        type=Path,
        action="append",
        help="memalpha eval config (repeatable: instances and scales from the first, "
        "memalpha writers from all; they must share the first writer's memory layout)",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--batch", type=int, default=8, help="prompts per generate call")
    parser.add_argument("--scale", type=int, action="append", help="only these scales")
    parser.add_argument(
        "--id-offset", type=int, default=0, help="number the teacher's entries from this + 1"
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("results") / "change_probe.json"
    )
    args = parser.parse_args()
    if args.summarize:
        for path in args.summarize:
            print(path)
            print_summary(summarize(json.loads(path.read_text())["rows"]))
        return
    if not args.config:
        parser.error("--config is required (or --summarize)")
    pin_threads(args.threads)
    configs = [EvalConfig.model_validate(yaml.safe_load(p.read_text())) for p in args.config]
    cfg = configs[0]
    writers = [m for c in configs for m in c.methods if m.kind == "memalpha"]
    layouts = {m.writer.memory.model_dump_json() for m in writers}
    if len(layouts) != 1:
        raise SystemExit("the writers' memory layouts differ: one teacher state cannot serve all")
    jobs = load_jobs(cfg.model_copy(update={"methods": writers[:1]}), make_token_counter())
    jobs = [j for j in jobs if args.scale is None or j.scale in args.scale]
    rows: list[dict] = []
    states: list[ChangeState] = []
    for spec in writers:
        method = WriterMethod(spec, make_token_counter())
        if not states:  # the first writer's memory layout is the teacher's
            teacher = selective_teacher(method.writer)
            states = teacher_states(method, teacher, jobs, args.id_offset)
            rows += probe("selective-teacher", method, teacher, states, args.batch)
        started = time.perf_counter()
        rows += probe(spec.name, method, method.author, states, args.batch)
        print(f"{spec.name}: {time.perf_counter() - started:.0f} s")
        method.close()
    summary = summarize(rows)
    print_summary(summary)
    save(args.out, {"summary": summary, "rows": rows}, args)


if __name__ == "__main__":
    main()
