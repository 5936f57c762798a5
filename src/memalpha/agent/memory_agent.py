"""The memory writer: one generation per chunk, its tool calls executed in order.

One step is view → prompt → generate → parse → execute → record (`ChunkStep`). `step` runs
a batch of memories with one batched generation; `memorize_many` advances many memories chunk
by chunk in lock-step, dropping those whose input has ended.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files

from memalpha.llm import LLM, FunctionCall, Generation, Message, SamplingParams, ToolCallFormat
from memalpha.memory import (
    CallStatus,
    Memory,
    ToolCall,
    ToolExecutor,
    ToolResult,
    ViewConfig,
    render_for_config,
)


@dataclass(frozen=True, slots=True)
class ChunkStep:
    """Everything about one chunk of one episode: what the writer saw, said and did."""

    index: int
    messages: list[Message]
    generation: Generation
    results: list[ToolResult]
    memory_tokens: int

    @property
    def successes(self) -> list[bool]:
        return [r.ok for r in self.results]


@dataclass(frozen=True, slots=True)
class Episode:
    """One memory built from one input, chunk by chunk."""

    steps: list[ChunkStep]


USER_TEMPLATE = files("memalpha.agent").joinpath("prompts/memorize_user.txt").read_text("utf-8")


def memorize_user_prompt(chunk: str, max_new_tokens: int) -> str:
    """The published unified user prompt (the response limit shown is 80% of the budget)."""
    return USER_TEMPLATE.format(context=chunk, max_new_tokens=int(0.8 * max_new_tokens))


def to_tool_call(call: FunctionCall) -> ToolCall:
    return ToolCall(call.name, call.arguments)


class MemoryAgent:
    """Turns chunks into memory tool calls with an LLM.

    Args:
        llm: the policy (any `LLM` backend, or the rule writer).
        fmt: the tool-call text format the policy writes (qwen ✿ or hermes).
        executor: runs calls against memories (its registry lists the offered tools).
        view: what the writer sees of its memory.
        sampling: how the policy samples.
        count: token counter for the view's prompt budget.
    """

    def __init__(
        self,
        llm: LLM,
        fmt: ToolCallFormat,
        executor: ToolExecutor,
        view: ViewConfig,
        sampling: SamplingParams,
        count: Callable[[str], int],
    ) -> None:
        self.llm, self.fmt, self.executor = llm, fmt, executor
        self.view, self.sampling, self.count = view, sampling, count

    def messages(self, memory: Memory, chunk: str) -> list[Message]:
        system = render_for_config(memory, self.view, self.count, chunk)
        tools = self.fmt.system_block(self.executor.registry.functions())
        return [
            {"role": "system", "content": f"{system}\n\n{tools}"},
            {"role": "user", "content": memorize_user_prompt(chunk, self.sampling.max_new_tokens)},
        ]

    def step(self, memories: list[Memory], chunks: list[str], index: int) -> list[ChunkStep]:
        """One batched generation for many memories, each with its own chunk."""
        prompts = [self.messages(m, c) for m, c in zip(memories, chunks, strict=True)]
        generations = self.llm.generate(prompts, self.sampling)
        return [
            self._execute(m, p, g, index)
            for m, p, g in zip(memories, prompts, generations, strict=True)
        ]

    def _execute(
        self, memory: Memory, prompt: list[Message], gen: Generation, index: int
    ) -> ChunkStep:
        results = []
        for call in self.fmt.parse(gen.text).calls:
            if call.error:  # unusable call text: a failed call, as the executor would report it
                results.append(ToolResult(to_tool_call(call), CallStatus.ERROR, message=call.error))
            else:
                results.append(self.executor.execute(memory, to_tool_call(call)))
        return ChunkStep(index, prompt, gen, results, memory.total_tokens)

    def memorize(
        self, memory: Memory, chunks: list[str], on_step: Callable[[ChunkStep], None] | None = None
    ) -> Episode:
        return self.memorize_many([memory], [chunks], on_step)[0]

    def memorize_many(
        self,
        memories: list[Memory],
        inputs: list[list[str]],
        on_step: Callable[[ChunkStep], None] | None = None,
    ) -> list[Episode]:
        """Advance every memory through its chunks in lock-step (one batch per chunk index)."""
        steps: list[list[ChunkStep]] = [[] for _ in memories]
        for t in range(max((len(c) for c in inputs), default=0)):
            live = [i for i, chunks in enumerate(inputs) if t < len(chunks)]
            for i, step in zip(
                live,
                self.step([memories[i] for i in live], [inputs[i][t] for i in live], t),
                strict=True,
            ):
                steps[i].append(step)
                if on_step is not None:
                    on_step(step)
        return [Episode(s) for s in steps]
