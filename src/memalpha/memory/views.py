"""What the memory writer sees of its memory: the published memorize-mode system prompt
(full core + the K most recent entries per list, SPEC §1.4) or, as options, the K entries per
list that BM25 ranks highest against the new chunk, or against each of its sentences in turn;
plus the published K-halving to fit a budget."""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from typing import TypeVar

from memalpha.errors import LimitExceededError
from memalpha.memory.config import LIST_COMPONENTS, Component, ViewConfig
from memalpha.memory.model import Entry, Memory
from memalpha.sentences import split_sentences

_INSTRUCTION = {
    Component.CORE: "* core_memory: Information stored so far (stored as a compact paragraph)",
    Component.SEMANTIC: "* semantic_memory: General knowledge, factual or conceptual information",
    Component.EPISODIC: "* episodic_memory: Specific personal experiences or events with "
    "timestamp (mandatory), place, or context",
}
_HEADER = {
    "recent": "(Only show the most recent {shown} out of {total} memories)",
    "retrieved": "(Only show the {shown} out of {total} memories most relevant to the new chunk)",
}
_HEADER["sentences"] = _HEADER["retrieved"]  # one prompt text: only which entries are shown differs


# read once at import: a constant string, not state (rendered for every chunk of every rollout)
MEMORIZE_TEMPLATE = (
    files("memalpha.memory").joinpath("prompts/memorize_system.txt").read_text("utf-8")
)


P = TypeVar("P")  # a rendered prompt: its text, or chat messages


def visible_entries(
    memory: Memory, component: Component, mode: str, k: int, chunk: str
) -> list[Entry]:
    """The entries of one list the writer sees: newest K, or BM25 top-K against `chunk`, or
    against its sentences (`by_sentence`).

    Retrieved entries are shown in memory order (oldest first), like the recent view.
    """
    if mode == "recent" or not chunk:
        return memory.recent(component, k)
    if mode == "sentences":
        hits = by_sentence(memory, component, chunk, k)
    else:
        hits = {e.id for e, _ in memory.search(component, chunk, k)}
    return [e for e in memory.entries(component) if e.id in hits]


def by_sentence(memory: Memory, component: Component, chunk: str, k: int) -> set[str]:
    """Ids of the K entries that best match the chunk's sentences one at a time: each
    sentence's best match before any sentence's second, stronger matches first.

    Why: ranked against the whole chunk, the entry a sentence changes competes with every entry
    about the chunk's other subjects; in a memory of hundreds of entries it falls out of the K
    shown, and a writer cannot update what it cannot see (benchmarks/RESULTS.md, "A view by
    sentence")."""
    ranked = sorted(
        (rank, -score, entry.id)
        for sentence in split_sentences(chunk)
        for rank, (entry, score) in enumerate(memory.search(component, sentence, k))
    )
    return set(list(dict.fromkeys(entry_id for _, _, entry_id in ranked))[:k])


def render_entry(entry: Entry, ids: str = "before") -> str:
    """One shown entry's line: `[id] content` as published, or `content [id]` (`ViewConfig.ids`)."""
    return f"{entry.content} [{entry.id}]" if ids == "after" else f"[{entry.id}] {entry.content}"


def render_memory_state(
    memory: Memory, *, mode: str = "recent", k: int = 5, chunk: str = "", ids: str = "before"
) -> str:
    """The CURRENT MEMORY STATE block, exactly as published for mode 'recent' and ids 'before'."""
    sections = []
    if memory.config.enabled(Component.CORE):
        sections.append(f"<core_memory>\n{memory.core}\n</core_memory>")
    for c in LIST_COMPONENTS:
        if not memory.config.enabled(c):
            continue
        shown = visible_entries(memory, c, mode, k, chunk)
        body = "\n".join(render_entry(e, ids) for e in shown) or "Empty."
        header = _HEADER[mode].format(shown=len(shown), total=memory.count(c))
        sections.append(f"<{c.value}_memory> {header}\n{body}\n</{c.value}_memory>")
    return "\n\n".join(sections)


def render_memorize_prompt(
    memory: Memory, *, mode: str = "recent", k: int = 5, chunk: str = "", ids: str = "before"
) -> str:
    """The writer's full memorize-mode system prompt (without the tool block)."""
    instructions = "\n".join(_INSTRUCTION[c] for c in Component if memory.config.enabled(c))
    state = render_memory_state(memory, mode=mode, k=k, chunk=chunk, ids=ids)
    return MEMORIZE_TEMPLATE.format(instructions=instructions, memory_state=state)


def fit_k(
    render: Callable[[int], P], count: Callable[[P], int], budget: int | None, k: int
) -> tuple[P, int]:
    """Render with K entries per list, halving K (5→2→1→0, as published) until it fits `budget`.

    Args:
        render: builds the prompt for a given K: its text, or whole chat messages.
        count: counts what `render` built, in the tokens the budget is in.
        budget: max prompt tokens, or None for no limit.
        k: starting K.

    Returns:
        The prompt and the K it used.

    Raises:
        LimitExceededError: the prompt is over budget even with K=0 (core + chunk too long).
    """
    while True:
        text = render(k)
        if budget is None:
            return text, k
        tokens = count(text)
        if tokens <= budget:
            return text, k
        if k == 0:
            raise LimitExceededError(
                f"memorize prompt is {tokens} tokens with no entries shown, over the {budget}-"
                "token budget; use smaller chunks, a shorter core or a larger budget",
                limit=budget,
                actual=tokens,
            )
        k //= 2


def render_for_config(
    memory: Memory, view: ViewConfig, count: Callable[[str], int], chunk: str = ""
) -> str:
    """The system prompt under a `ViewConfig` (mode, K and budget)."""
    text, _ = fit_k(
        lambda k: render_memorize_prompt(memory, mode=view.mode, k=k, chunk=chunk, ids=view.ids),
        count,
        view.max_prompt_tokens,
        view.k,
    )
    return text
