"""Supervised warm start: teach a policy that never calls tools (SmolLM2) to write valid tool
calls, from the rule-based writer's transcripts or from recorded episodes.

A transcript is one chunk's prompt (the exact messages the agent would send, including the
memory built so far: the teacher's own, or under `teacher_states: policy` the policy's) and the
teacher's response. The target is the response's tokens plus EOS, so the policy learns to
stop. Responses over the writer budget are dropped, not cut: a cut target would teach the
policy to run out of budget.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memalpha.agent import ChunkStep, RuleWriterLLM, build_agent, check_trained_layout
from memalpha.aim import AIMED_TOOLS
from memalpha.errors import ConfigError, DataError
from memalpha.llm import FORMATS, LLM, Message, ToolCallFormat, pin_threads
from memalpha.memory import Memory
from memalpha.rl.config import SFTConfig
from memalpha.rl.parts import load_instances, make_optimizer, seed_everything
from memalpha.rl.policy import Policy, uses_bf16
from memalpha.rl.update import SFTExample, chunks, sft_step
from memalpha.tokens import TokenCounter, make_token_counter

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

Transcript = tuple[list[Message], str]


def teacher_transcripts(
    cfg: SFTConfig,
    counter: TokenCounter,
    writer_llm: LLM | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> list[Transcript]:
    """Run the writer over the training instances and record every chunk's prompt with the
    rule-based teacher's response to it. The writer is the teacher itself, or under
    `teacher_states: policy` the given `writer_llm` (the policy being trained), greedy.
    `on_event` gets {"kind": "transcripts", "done", "total"} as chunks are written: a policy
    writing them takes minutes, and the progress bar would otherwise stand still.

    Raises:
        ConfigError: no training instances, or `teacher_states: policy` without `writer_llm`.
    """
    instances = load_instances(cfg.data.train, cfg.data.train_files, counter)
    if not instances:
        raise ConfigError("data.train and data.train_files give no instances to learn from")
    teacher = RuleWriterLLM(
        FORMATS[cfg.format],
        max_sentences=cfg.teacher_max_sentences,
        selective=cfg.teacher == "selective",
        id_last=cfg.teacher_id_last,
    )
    if cfg.teacher_states == "policy" and writer_llm is None:
        raise ConfigError("teacher_states: policy needs the policy's LLM to write the memories")
    writer = teacher if cfg.teacher_states == "teacher" else writer_llm
    agent = build_agent(cfg.writer, counter)
    sampling = cfg.writer.sampling()
    memories = [Memory(cfg.memory, counter) for _ in instances]
    total = sum(len(i.chunks) for i in instances)
    done = itertools.count(1)

    def written(step: ChunkStep) -> None:
        on_event({"kind": "transcripts", "done": next(done), "total": total})

    episodes = agent.memorize_many(
        writer, sampling, memories, [i.chunks for i in instances], written if on_event else None
    )
    prompts = [s.messages for e in episodes for s in e.steps]
    if writer is teacher:
        responses = [s.generation.text for e in episodes for s in e.steps]
    else:
        responses = [g.text for g in teacher.generate(prompts, sampling)]
    return list(zip(prompts, responses, strict=True))


def write_transcripts(path: Path, transcripts: list[Transcript]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for messages, response in transcripts:
            f.write(json.dumps({"messages": messages, "response": response}) + "\n")


def read_transcripts(path: Path) -> list[Transcript]:
    """JSONL of {"messages": [...], "response": str}.

    Raises:
        DataError: the file is missing or a line is not such a record.
    """
    if not path.is_file():
        raise DataError(f"no transcripts file at {path}")
    out = []
    for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            messages, response = record["messages"], record["response"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataError(f"{path}:{n}: not a {{messages, response}} record ({exc})") from None
        if not isinstance(response, str) or not isinstance(messages, list):
            raise DataError(f"{path}:{n}: messages must be a list and response a string")
        out.append((messages, response))
    return out


def aim_weights(
    tokenizer: PreTrainedTokenizerBase, fmt: ToolCallFormat, response: str, weight: float
) -> list[float]:
    """One loss weight per token of `Policy.response_ids(response)` (`tokenizer` is the
    policy's): `weight` for the tokens that spell the memory_id of a non-core memory_update or
    memory_delete call, 1 for the rest (the EOS included). The ids are found in the text in
    call order, each after the last."""
    aims = [
        str(c.arguments["memory_id"])
        for c in fmt.parse(response).calls
        if c.name in AIMED_TOOLS
        and isinstance(c.arguments, dict)
        and c.arguments.get("memory_type") != "core_memory"
        and c.arguments.get("memory_id") is not None
    ]
    spans, start = [], 0
    for aim in aims:
        if m := re.compile(rf"(?<!\w){re.escape(aim)}(?!\w)").search(response, start):
            spans.append(m.span())
            start = m.end()
    offsets = tokenizer(response, add_special_tokens=False, return_offsets_mapping=True)[
        "offset_mapping"
    ]
    heavy = [any(a < e and b > s for s, e in spans) for a, b in offsets]
    return [weight if h else 1.0 for h in heavy] + [1.0]


def sft_examples(
    cfg: SFTConfig, policy: Policy, transcripts: list[Transcript]
) -> tuple[list[SFTExample], int]:
    """The (prompt ids, target ids[, token weights]) examples trained on, shuffled by
    `cfg.seed` and capped at `cfg.examples`, and how many transcripts were dropped as over the
    writer budget. Weights come with `cfg.aim_weight` above 1 (`aim_weights`). Examples whose
    response updates or deletes (`calls_aimed_tool`) are added `cfg.aimed_repeats - 1` more
    times, after the cap: the cap picks transcripts, the repeats weigh the rare tools.

    Raises:
        DataError: every transcript is over the budget.
    """
    fmt = FORMATS[cfg.format]
    examples: list[tuple[SFTExample, str]] = []
    dropped = 0
    for messages, response in transcripts:
        target = policy.response_ids(response)
        if len(target) > cfg.max_new_tokens:
            dropped += 1
            continue
        if cfg.aim_weight == 1.0:
            examples.append(((policy.prompt_ids(messages), target), response))
        else:
            weights = aim_weights(policy.tokenizer, fmt, response, cfg.aim_weight)
            examples.append(((policy.prompt_ids(messages), target, weights), response))
    if not examples:
        raise DataError(
            f"all {len(transcripts)} transcripts exceed max_new_tokens={cfg.max_new_tokens}"
        )
    random.Random(cfg.seed).shuffle(examples)
    kept = examples[: cfg.examples]
    aimed = [e for e, response in kept if calls_aimed_tool(fmt, response)]
    return [e for e, _ in kept] + aimed * (cfg.aimed_repeats - 1), dropped


def calls_aimed_tool(fmt: ToolCallFormat, response: str) -> bool:
    """The response calls memory_update or memory_delete (a core-memory set included)."""
    return any(c.name in AIMED_TOOLS for c in fmt.parse(response).calls)


def run_sft(cfg: SFTConfig, on_event: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """Fine-tune `cfg.policy` on transcripts; returns the HF folder of the result."""
    on_event = on_event or (lambda e: None)
    check_trained_layout(cfg.policy.model, cfg.memory)  # a second stage from a warm start
    pin_threads(cfg.threads)
    seed_everything(cfg.seed)
    counter = make_token_counter(cfg.memory.tokenizer)
    policy = Policy(cfg.policy, cfg.lora, bf16=uses_bf16(cfg.autocast_bf16, cfg.policy.device))
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.transcripts:
        transcripts = read_transcripts(cfg.transcripts)
    else:
        with policy.autocast():
            transcripts = teacher_transcripts(cfg, counter, policy.llm, on_event)
        # Kept before training starts: under `teacher_states: policy` writing them takes the
        # better part of an hour, and `transcripts:` reuses them for another recipe.
        write_transcripts(cfg.out_dir / "transcripts.jsonl", transcripts)
    policy.train_top_layers(cfg.train_layers)
    examples, dropped = sft_examples(cfg, policy, transcripts)
    steps = cfg.epochs * -(-len(examples) // cfg.batch_size)
    optimizer, scheduler = make_optimizer(policy.model, cfg.optim, steps)
    log = (cfg.out_dir / "metrics.jsonl").open("w", encoding="utf-8")
    on_event({"kind": "start", "steps": steps, "examples": len(examples), "dropped": dropped})
    step = 0
    for epoch in range(cfg.epochs):
        order = examples[:]
        random.Random(cfg.seed + epoch).shuffle(order)
        for batch in chunks(order, cfg.batch_size):
            step += 1
            with policy.autocast():
                stats = sft_step(
                    policy, optimizer, batch, cfg.micro_batch_size, cfg.optim.grad_clip
                )
            scheduler.step()
            record = {"step": step, "kind": "sft", "epoch": epoch, **stats}
            log.write(json.dumps(record) + "\n")
            log.flush()
            on_event(record)
    log.close()
    folder = cfg.out_dir / "policy"
    policy.save(folder, cfg.writer)
    policy.close()
    summary = {"examples": len(examples), "dropped": dropped, "steps": step, "policy": str(folder)}
    (cfg.out_dir / "sft.json").write_text(json.dumps(summary, indent=2), "utf-8")
    return folder
