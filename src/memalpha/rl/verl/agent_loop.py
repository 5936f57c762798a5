"""The memalpha writer as a verl 0.9 agent loop (needs verl: `pip install 'memalpha[verl]'`).

One dataset row is one instance; verl runs `rollout.n` copies of it (G = 8 as published).
Each copy memorizes every chunk with its own prompt — the memory as it is then and the chunk —
through verl's rollout servers (vLLM or SGLang, token ids in and out), executes the calls with
memalpha's tools, and returns one chunk's exact prompt and sampled ids as the training row
(`memalpha.rl.verl.episode` explains the mapping). The reward is computed by
`memalpha.rl.verl.reward_fn.compute_score` in verl's reward workers, from the record of the
episode this loop puts in `extra_fields`.

Register it with an agent-loop config file (configs/verl/agent_loops.yaml):

    - name: memalpha_writer
      _target_: memalpha.rl.verl.agent_loop.MemalphaAgentLoop
      memalpha_config: configs/train/paper-qwen3-4b.yaml
      train_chunk: random
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
from memalpha.llm import Generation, Message
from memalpha.rl.verl.dataset import AGENT_NAME
from memalpha.rl.verl.episode import TrainChunk, Writer, pick_chunk, to_record
from memalpha.rl.verl.reward_fn import EPISODE_KEY, INSTANCE_KEY


@lru_cache(maxsize=4)
def _writer(config_path: str) -> Writer:
    return Writer.from_path(config_path)


@register(AGENT_NAME)
class MemalphaAgentLoop(AgentLoopBase):
    """Args (besides verl's): memalpha_config, the path of the memalpha train config whose
    format, prompt, memory and writer budget the episodes use; train_chunk, random or last."""

    def __init__(
        self,
        *args: Any,
        memalpha_config: str,
        train_chunk: TrainChunk = "random",
        **kwargs: Any,
    ) -> None:
        kwargs.pop("name", None)  # the registry entry's own name, passed along by hydra
        kwargs.pop("tools", None)  # memalpha's tools are its own, not verl tool objects
        super().__init__(*args, **kwargs)
        self.writer = _writer(str(memalpha_config))
        self.train_chunk: TrainChunk = train_chunk
        self.response_length = int(self.rollout_config.response_length)

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        instance = Instance.model_validate_json(kwargs["extra_info"][INSTANCE_KEY])
        budget = min(self.writer.max_new_tokens, self.response_length)
        seconds = 0.0

        async def generate(messages: list[Message]) -> tuple[list[int], Generation]:
            nonlocal seconds
            prompt_ids = await self.ct_build_initial_tokens(messages)
            start = time.perf_counter()
            out = await self.server_manager.generate(
                request_id=uuid4().hex,
                prompt_ids=prompt_ids,
                sampling_params={**sampling_params, "max_tokens": budget},
            )
            seconds += time.perf_counter() - start
            ids = list(out.token_ids)
            generation = Generation(
                text=self.tokenizer.decode(ids, skip_special_tokens=True),
                token_ids=tuple(ids),
                logprobs=tuple(out.log_probs) if out.log_probs else None,
                finish_reason="length" if len(ids) >= budget else "stop",
                prompt_tokens=len(prompt_ids),
                prompt_ids=tuple(prompt_ids),
            )
            return prompt_ids, generation

        trajectory, prompts = await self.writer.run(instance, generate)
        k = pick_chunk(trajectory, self.train_chunk)
        generation = trajectory.episode.steps[k].generation
        response = list(generation.token_ids[: self.response_length])
        logprobs = list(generation.logprobs[: len(response)]) if generation.logprobs else None
        return AgentLoopOutput(
            prompt_ids=prompts[k],
            response_ids=response,
            response_mask=[1] * len(response),
            response_logprobs=logprobs,
            num_turns=2,
            metrics=AgentLoopMetrics(generate_sequences=seconds),
            extra_fields={
                EPISODE_KEY: to_record(trajectory, k).model_dump(mode="json"),
                "turn_scores": [],
                "tool_rewards": [],
            },
        )
