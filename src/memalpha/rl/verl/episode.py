"""One memalpha episode driven by an external, asynchronous token generator (verl's rollout
servers), and the record of it that travels to the reward function.

The local trainer advances many episodes in lock-step with one batched generation per chunk
index; in verl every trajectory is its own coroutine and the rollout servers batch concurrent
requests. Both build prompts and execute calls with the same `MemoryAgent`, so a memory written
under verl is the memory the local trainer would have written from the same generations.

Sample mapping, as published (MEMALPHA_SPEC §4.1): one training sample per (trajectory, chunk),
the chunk's prompt (which holds the memory as it was then) and its generation. verl 0.9's V1
trainer stores every output an agent loop returns as its own sample, so the agent loop returns
one output per chunk (`memalpha.rl.verl.agent_loop`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from memalpha.agent import ChunkStep, Episode, MemoryAgent, build_agent
from memalpha.data import Instance
from memalpha.errors import ConfigError
from memalpha.llm import Generation, LoopStop, Message
from memalpha.memory import (
    CallStatus,
    Memory,
    ToolCall,
    ToolResult,
    snapshot_from_dict,
    snapshot_to_dict,
)
from memalpha.rl.config import TrainConfig
from memalpha.rl.verl.shipped import config_from_json
from memalpha.rollout import Trajectory
from memalpha.tokens import TokenCounter, make_token_counter

Generate = Callable[[list[Message], int], Awaitable[tuple[list[int], Generation]]]
"""(messages, chunk index) → (the prompt's token ids, the generation): one request to a rollout
server."""


class CallRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    arguments: dict[str, Any] | str
    status: CallStatus


class ChunkRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    calls: list[CallRecord]
    memory_tokens: int = Field(ge=0)


class EpisodeRecord(BaseModel):
    """What the reward needs of an episode besides its instance: the final memory and, per
    chunk, what every call was and whether it succeeded (r2, r4). JSON-able, so it can ride in
    verl's `extra_fields` from the agent-loop worker to the reward workers."""

    model_config = ConfigDict(extra="forbid")

    memory: dict[str, Any]
    chunks: list[ChunkRecord] = Field(min_length=1)


class Writer:
    """The memory writer of one memalpha config, for episodes whose generations come from
    elsewhere. Built once per process (configs are read from disk, counters are costly).

    Args:
        cfg: the same `TrainConfig` the local trainer reads (format, prompt, memory, budget).
    """

    def __init__(self, cfg: TrainConfig) -> None:
        if cfg.rollout.greedy_anchor:
            raise ConfigError(
                "rollout.greedy_anchor is a local-trainer option: verl samples all rollout.n "
                "copies of an instance with one sampling setting; set it to false for verl"
            )
        if cfg.rollout.max_id_offset:
            raise ConfigError(
                "rollout.max_id_offset is a local-trainer option: verl's episodes start from "
                "empty memories numbered from 1; set it to 0 for verl"
            )
        self.cfg = cfg
        self.counter: TokenCounter = make_token_counter(cfg.memory.tokenizer)
        # generations come from verl's servers and are handed to `MemoryAgent.execute`
        self.agent: MemoryAgent = build_agent(cfg.writer, self.counter)

    @classmethod
    def from_json(cls, text: str) -> Writer:
        """The writer of the config the launcher shipped (`memalpha.rl.verl.shipped`)."""
        return cls(config_from_json(text))

    @property
    def max_new_tokens(self) -> int:
        return self.cfg.rollout.max_new_tokens

    @property
    def loop_stop(self) -> LoopStop | None:
        """Where the agent loop cuts a looping response (verl's servers decode it whole)."""
        return self.cfg.loop_stop

    async def run(
        self, instance: Instance, generate: Generate
    ) -> tuple[Trajectory, list[list[int]]]:
        """Memorize `instance` chunk by chunk: the trajectory and each chunk's prompt ids."""
        memory = Memory(self.cfg.memory, self.counter)
        steps: list[ChunkStep] = []
        prompts: list[list[int]] = []
        for index, chunk in enumerate(instance.chunks):
            messages = self.agent.messages(memory, chunk)
            prompt_ids, generation = await generate(messages, index)
            steps.append(self.agent.execute(memory, messages, generation, index))
            prompts.append(list(prompt_ids))
        return Trajectory(0, instance, memory, Episode(steps)), prompts


def to_record(trajectory: Trajectory) -> EpisodeRecord:
    return EpisodeRecord(
        memory=snapshot_to_dict(trajectory.memory.snapshot()),
        chunks=[
            ChunkRecord(
                calls=[
                    CallRecord(name=r.call.name, arguments=r.call.arguments, status=r.status)
                    for r in step.results
                ],
                memory_tokens=step.memory_tokens,
            )
            for step in trajectory.episode.steps
        ],
    )


@dataclass(frozen=True, slots=True)
class RecordedMemory:
    """An episode as the reward sees it: instance, final memory and each chunk's calls (no
    prompts or generations, which stay with verl) — what `rollout.score_episodes` scores."""

    instance: Instance
    memory: Memory
    calls: list[list[ToolResult]]


def from_record(
    record: EpisodeRecord, instance: Instance, cfg: TrainConfig, counter: TokenCounter
) -> RecordedMemory:
    """The scorable episode a record describes."""
    memory = Memory(cfg.memory, counter)
    memory.restore(snapshot_from_dict(record.memory, source="episode record"))
    calls = [
        [ToolResult(ToolCall(c.name, c.arguments), c.status) for c in chunk.calls]
        for chunk in record.chunks
    ]
    return RecordedMemory(instance, memory, calls)
