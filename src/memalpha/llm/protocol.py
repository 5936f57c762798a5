"""The one small protocol every backend implements: chat prompts in, generations out."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from memalpha.llm.loops import LoopStop

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": str}


class SamplingParams(BaseModel):
    """How to sample. Temperature 0 means greedy decoding."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(0.0, ge=0, description="0 = greedy (eval); published rollouts 1.0.")
    top_p: float = Field(1.0, gt=0, le=1)
    max_new_tokens: int = Field(512, ge=1, description="Published: 2048 for the writer.")
    seed: int | None = Field(None, description="Seed for sampling; None leaves it to the backend.")
    logprobs: bool = Field(False, description="Return the sampled tokens' log-probabilities.")
    stop: tuple[str, ...] = Field(
        (),
        description="Stop strings: a response ends with the token that completes one (kept). "
        "Writers stop where a format's tool result would begin (✿RESULT✿, <tool_response>).",
    )
    loop_stop: LoopStop | None = Field(
        None,
        description="End a response whose tail repeats one span (memalpha.llm.loops), cut "
        "back to the span's first copy (finish reason 'loop'); None: decode to the budget.",
    )

    greedy_rows: tuple[int, ...] = Field(
        (),
        description="Rows of this batch decoded greedily whatever the temperature, with no "
        "log-probs returned (a rollout's greedy anchors in the same call as its samples).",
    )

    def row(self, index: int) -> SamplingParams:
        """The sampling of row `index` alone: greedy without log-probs if it is a greedy row."""
        if index in self.greedy_rows:
            return self.model_copy(
                update={"temperature": 0.0, "top_p": 1.0, "logprobs": False, "greedy_rows": ()}
            )
        return self.model_copy(update={"greedy_rows": ()}) if self.greedy_rows else self

    def subset(self, rows: list[int]) -> SamplingParams:
        """The sampling of `rows` of this batch, in that order, as a batch of their own."""
        if not self.greedy_rows:
            return self
        inside = tuple(j for j, r in enumerate(rows) if r in self.greedy_rows)
        return self.model_copy(update={"greedy_rows": inside})

    def for_chunk(self, index: int) -> SamplingParams:
        """The sampling of chunk `index` of an episode: a seed of its own, derived from this
        one, so that chunks do not replay one random stream (None stays None)."""
        if self.seed is None:
            return self
        digest = hashlib.sha256(f"{self.seed}:{index}".encode()).digest()
        return self.model_copy(update={"seed": int.from_bytes(digest[:4], "big")})


def answer_begun(messages: list[Message]) -> bool:
    """Whether the prompt ends with an assistant message: an answer begun for the model, which
    it continues rather than starting a turn of its own."""
    return bool(messages) and messages[-1]["role"] == "assistant"


@dataclass(frozen=True, slots=True)
class Generation:
    """One completion: its text, the exact sampled token ids (EOS included when the model
    stopped) and their log-probabilities when asked for and available, and the exact prompt
    token ids it was generated from where the backend knows them (local and token-level
    backends; an HTTP chat server does not say), so nothing downstream re-tokenises a prompt."""

    text: str
    token_ids: tuple[int, ...] = ()
    logprobs: tuple[float, ...] | None = None
    finish_reason: str = "stop"  # "stop" (EOS or stop string) | "length" | "loop" (loop stop)
    prompt_tokens: int = 0
    prompt_ids: tuple[int, ...] = ()


class LLM(Protocol):
    """A chat model. Implementations are context managers (they hold models or connections)."""

    name: str

    def generate(self, prompts: list[list[Message]], sampling: SamplingParams) -> list[Generation]:
        """One generation per prompt, in order. A prompt ending with an assistant message is
        an answer begun for the model: the generation continues that text (and holds only
        the continuation).

        Raises:
            BackendError (BackendTimeout, BackendUnavailable): the backend failed.
        """
        ...

    def close(self) -> None: ...
