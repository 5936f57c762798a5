"""The memory writer: one generation per chunk, its tool calls executed in order.

One step is view → prompt → generate → parse → execute → record (`ChunkStep`). `step` runs
a batch of memories with one batched generation; `memorize_many` advances many memories chunk
by chunk in lock-step, dropping those whose input has ended.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Literal

from memalpha.llm import LLM, FunctionCall, Generation, Message, SamplingParams, ToolCallFormat
from memalpha.memory import (
    CallStatus,
    Memory,
    ToolCall,
    ToolExecutor,
    ToolResult,
    ViewConfig,
    fit_k,
    render_for_config,
    render_memory_state,
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


def _prompt(name: str) -> str:
    return files("memalpha.agent").joinpath(f"prompts/{name}").read_text("utf-8")


USER_TEMPLATE = _prompt("memorize_user.txt")
COMPACT_SYSTEM = _prompt("compact_system.txt")
COMPACT_USER = _prompt("compact_user.txt")
PromptStyle = Literal["published", "compact"]
MAX_CALLS = 64  # calls run per output; a chunk needs a few dozen at most


def memorize_user_prompt(chunk: str, max_new_tokens: int) -> str:
    """The published unified user prompt (the response limit shown is 80% of the budget)."""
    return USER_TEMPLATE.format(context=chunk, max_new_tokens=int(0.8 * max_new_tokens))


def tool_signatures(functions: list[dict[str, Any]]) -> str:
    """One line per tool: `name(arg: a|b, other)` and its description's first sentence."""
    lines = []
    for fn in functions:
        params = fn["parameters"]["properties"]
        args = ", ".join(
            f"{name}: {'|'.join(spec['enum'])}" if "enum" in spec else name
            for name, spec in params.items()
        )
        lines.append(f"- {fn['name']}({args}): {fn['description'].split('. ')[0].rstrip('.')}.")
    return "\n".join(lines)


def to_tool_call(call: FunctionCall) -> ToolCall:
    return ToolCall(call.name, call.arguments)


class MemoryAgent:
    """Turns chunks into memory tool calls. It holds how to prompt and how to execute, not
    which LLM answers nor how it samples: `step` and `memorize_many` take both, so greedy
    evaluation, the greedy anchor of a GRPO group and sampled rollouts share one agent.

    Args:
        fmt: the tool-call text format the policy writes (qwen ✿ or hermes).
        executor: runs calls against memories (its registry lists the offered tools).
        view: what the writer sees of its memory.
        count: token counter for the view's prompt budget.
        prompt: 'published' (the paper's prompts and full JSON tool schemas, ~1.2K tokens) or
            'compact' (~0.2K tokens: the same memory view, one line per tool and an example
            call), for small models on CPUs where prompt processing dominates the cost.
        budget: the writer's token budget per chunk, as the published prompt states it.
        prompt_tokens: counts a whole chat-templated prompt in the policy's own tokens. When
            given, `view.max_prompt_tokens` caps that count, as the published trainer capped
            its chunk prompts (6144 Qwen tokens); otherwise it caps the memory view's text
            in `count`'s tokens (readers, served writers without a local tokenizer).
    """

    def __init__(
        self,
        fmt: ToolCallFormat,
        executor: ToolExecutor,
        view: ViewConfig,
        count: Callable[[str], int],
        *,
        prompt: PromptStyle = "published",
        budget: int = 2048,
        prompt_tokens: Callable[[list[Message]], int] | None = None,
    ) -> None:
        self.fmt, self.executor, self.view, self.count = fmt, executor, view, count
        self.prompt, self.budget, self.prompt_tokens = prompt, budget, prompt_tokens

    def messages(self, memory: Memory, chunk: str) -> list[Message]:
        if self.prompt_tokens is None:
            return self._render(memory, chunk, self.view)
        whole, _ = fit_k(
            lambda k: self._render(
                memory, chunk, self.view.model_copy(update={"k": k, "max_prompt_tokens": None})
            ),
            self.prompt_tokens,
            self.view.max_prompt_tokens,
            self.view.k,
        )
        return whole

    def _render(self, memory: Memory, chunk: str, view: ViewConfig) -> list[Message]:
        if self.prompt == "compact":
            return self._compact_messages(memory, chunk, view)
        system = render_for_config(memory, view, self.count, chunk)
        tools = self.fmt.system_block(self.executor.registry.functions())
        return [
            {"role": "system", "content": f"{system}\n\n{tools}"},
            {"role": "user", "content": memorize_user_prompt(chunk, self.budget)},
        ]

    def _compact_messages(self, memory: Memory, chunk: str, view: ViewConfig) -> list[Message]:
        functions = self.executor.registry.functions()
        state, _ = fit_k(
            lambda k: render_memory_state(memory, mode=view.mode, k=k, chunk=chunk, ids=view.ids),
            self.count,
            view.max_prompt_tokens,
            view.k,
        )
        system = COMPACT_SYSTEM.format(
            memory_state=state, tools=tool_signatures(functions), example=self._example(functions)
        )
        return [
            {"role": "system", "content": system},
            {"role": "user", "content": COMPACT_USER.format(context=chunk)},
        ]

    def _example(self, functions: list[dict[str, Any]]) -> str:
        """An insert call in the policy's format, for a list memory the registry offers."""
        for fn in functions:
            if fn["name"] == "new_memory_insert":
                kinds = fn["parameters"]["properties"]["memory_type"]["enum"]
                kind = "semantic_memory" if "semantic_memory" in kinds else kinds[0]
                args = {"memory_type": kind, "content": "<one fact>"}
                return self.fmt.render([FunctionCall("new_memory_insert", args)])
        return ""

    def step(
        self,
        llm: LLM,
        sampling: SamplingParams,
        memories: list[Memory],
        chunks: list[str],
        index: int,
    ) -> list[ChunkStep]:
        """One batched generation for many memories, each with its own chunk."""
        prompts = [self.messages(m, c) for m, c in zip(memories, chunks, strict=True)]
        generations = llm.generate(prompts, sampling)
        return [
            self.execute(m, p, g, index)
            for m, p, g in zip(memories, prompts, generations, strict=True)
        ]

    def execute(
        self, memory: Memory, prompt: list[Message], gen: Generation, index: int
    ) -> ChunkStep:
        """Parse one generation and run its calls in order (also used by the verl agent loop,
        whose generations come from verl's rollout servers). Total on model output: whatever
        the text, the result is calls that succeeded or failed with a reason; only our own
        failures (a store that cannot write) raise."""
        results = []
        for call in self._calls(gen.text):
            if call.error:  # unusable call text: a failed call, as the executor would report it
                results.append(ToolResult(to_tool_call(call), CallStatus.ERROR, message=call.error))
            else:
                results.append(self.executor.execute(memory, to_tool_call(call)))
        return ChunkStep(index, prompt, gen, results, memory.total_tokens)

    def _calls(self, text: str) -> list[FunctionCall]:
        """The calls of one output, at most `MAX_CALLS`; the rest become one failed call."""
        try:
            calls = self.fmt.parse(text).calls
        except (ValueError, RecursionError, TypeError) as exc:  # a parser bug must not end a run
            return [FunctionCall("", "", error=f"unparseable output ({type(exc).__name__})")]
        if len(calls) <= MAX_CALLS:
            return calls
        dropped = FunctionCall(
            "", "", error=f"{len(calls) - MAX_CALLS} calls over the limit of {MAX_CALLS} not run"
        )
        return [*calls[:MAX_CALLS], dropped]

    def memorize(
        self,
        llm: LLM,
        sampling: SamplingParams,
        memory: Memory,
        chunks: list[str],
        on_step: Callable[[ChunkStep], None] | None = None,
    ) -> Episode:
        return self.memorize_many(llm, sampling, [memory], [chunks], on_step)[0]

    def memorize_many(
        self,
        llm: LLM,
        sampling: SamplingParams,
        memories: list[Memory],
        inputs: list[list[str]],
        on_step: Callable[[ChunkStep], None] | None = None,
        greedy: list[bool] | None = None,
    ) -> list[Episode]:
        """Advance every memory through its chunks in lock-step (one batch per chunk index),
        each chunk index sampled with a seed of its own (`SamplingParams.for_chunk`); the
        memories flagged in `greedy` are decoded greedily in the same batches."""
        steps: list[list[ChunkStep]] = [[] for _ in memories]
        for t in range(max((len(c) for c in inputs), default=0)):
            live = [i for i, chunks in enumerate(inputs) if t < len(chunks)]
            rows = tuple(j for j, i in enumerate(live) if greedy is not None and greedy[i])
            batch = self.step(
                llm,
                sampling.for_chunk(t).model_copy(update={"greedy_rows": rows}),
                [memories[i] for i in live],
                [inputs[i][t] for i in live],
                t,
            )
            for i, step in zip(live, batch, strict=True):
                steps[i].append(step)
                if on_step is not None:
                    on_step(step)
        return [Episode(s) for s in steps]
