"""The memalpha writer as a verl 0.9 agent loop (needs verl: `pip install 'memalpha[verl]'`).

One dataset row is one instance; verl runs `rollout.n` copies of it (G = 8 as published).
Each copy memorizes every chunk with its own prompt (the memory as it is then, and the chunk)
through verl's rollout servers (vLLM or SGLang, token ids in and out), executes the calls with
memalpha's tools, and returns one `AgentLoopOutput` per chunk: that chunk's exact prompt ids,
sampled ids and their log-probs. verl's V1 trainer stores each as its own training sample, the
published one sample per (trajectory, chunk). The last output carries the episode record the
reward function (`memalpha.rl.verl.reward_fn`) scores; every output carries its chunk index,
by which the memalpha trainer (`memalpha.rl.verl.trainer`) gives it its own chunk's reward.

The loop is registered by `memalpha/rl/verl/agent_loops.yaml`, and reads the memalpha config
the launcher put into verl's config (`memalpha.config`, see `memalpha.rl.verl.shipped`).
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any
from uuid import uuid4

from verl.experimental.agent_loop.agent_loop import (
    AgentLoopBase,
    AgentLoopMetrics,
    AgentLoopOutput,
    register,
)

from memalpha.data import Instance
from memalpha.errors import DataError
from memalpha.llm import Generation, Message, trim_loop
from memalpha.rl.verl.dataset import AGENT_NAME
from memalpha.rl.verl.episode import Writer, to_record
from memalpha.rl.verl.reward_fn import EPISODE_KEY, INSTANCE_KEY
from memalpha.rl.verl.samples import CHUNK_KEY
from memalpha.rollout import Trajectory


@lru_cache(maxsize=4)
def _writer(config_text: str) -> Writer:
    return Writer.from_json(config_text)


@register(AGENT_NAME)
class MemalphaAgentLoop(AgentLoopBase):
    """verl's agent-loop arguments only; the writer comes from `memalpha.config`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.pop("name", None)  # the registry entry's own name, passed along by hydra
        kwargs.pop("tools", None)  # memalpha's tools are its own, not verl tool objects
        super().__init__(*args, **kwargs)
        self.writer = _writer(str(self.config.get("memalpha", {}).get("config") or ""))
        self.prompt_length = int(self.rollout_config.prompt_length)
        self.response_length = int(self.rollout_config.response_length)
        self._where = ""  # the chunk being prompted, for errors (one loop object per trajectory)

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> list[AgentLoopOutput]:
        instance = Instance.model_validate_json(kwargs["extra_info"][INSTANCE_KEY])
        budget = min(self.writer.max_new_tokens, self.response_length)
        seconds: list[float] = []

        async def generate(messages: list[Message], index: int) -> tuple[list[int], Generation]:
            self._where = f"instance {instance.id}, chunk {index}"
            prompt_ids = await self.ct_build_initial_tokens(messages)
            start = time.perf_counter()
            out = await self.server_manager.generate(
                request_id=uuid4().hex,
                prompt_ids=prompt_ids,
                sampling_params={**sampling_params, "max_tokens": budget},
            )
            seconds.append(time.perf_counter() - start)
            reason = "length" if len(out.token_ids) >= budget else "stop"
            # the server decoded a loop whole: train on its first copy only
            ids, logprobs, looped = trim_loop(
                list(out.token_ids), out.log_probs or None, self.writer.loop_stop
            )
            generation = Generation(
                text=self.tokenizer.decode(ids, skip_special_tokens=True),
                token_ids=tuple(ids),
                logprobs=tuple(logprobs) if logprobs else None,
                finish_reason="loop" if looped else reason,
                prompt_tokens=len(prompt_ids),
                prompt_ids=tuple(prompt_ids),
            )
            return prompt_ids, generation

        trajectory, prompts = await self.writer.run(instance, generate)
        return chunk_outputs(trajectory, prompts, seconds)

    def _cap_text_prompt_length(self, prompt_ids: list[int]) -> list[int]:
        """verl's base class cuts an over-long prompt from the left with a warning, which
        would drop the writer's system prompt and train on a context nobody wrote: refuse.

        Raises:
            DataError: the prompt, counted in the policy's tokens, exceeds rollout.prompt_length.
        """
        if len(prompt_ids) > self.prompt_length:
            raise DataError(
                f"{self._where}: the writer's prompt is {len(prompt_ids)} tokens of the "
                f"policy's tokenizer, over rollout.prompt_length = {self.prompt_length} "
                "(data.max_prompt_length): raise it, or lower memory.view.max_prompt_tokens or "
                "the chunk size"
            )
        return prompt_ids


def chunk_outputs(
    trajectory: Trajectory, prompts: list[list[int]], seconds: list[float]
) -> list[AgentLoopOutput]:
    """One output per chunk, in chunk order; the last carries the episode record."""
    outputs = []
    steps = trajectory.episode.steps
    for index, (step, prompt_ids) in enumerate(zip(steps, prompts, strict=True)):
        generation = step.generation
        response = list(generation.token_ids)
        extra: dict[str, Any] = {CHUNK_KEY: index, "turn_scores": [], "tool_rewards": []}
        if index == len(steps) - 1:
            extra[EPISODE_KEY] = to_record(trajectory).model_dump(mode="json")
        outputs.append(
            AgentLoopOutput(
                prompt_ids=prompt_ids,
                response_ids=response,
                response_mask=[1] * len(response),
                response_logprobs=list(generation.logprobs) if generation.logprobs else None,
                num_turns=2,
                metrics=AgentLoopMetrics(generate_sequences=seconds[index]),
                extra_fields=extra,
            )
        )
    return outputs
