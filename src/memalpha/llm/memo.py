"""Greedy generations remembered by prompt, so an evaluation asks its reader each distinct
question once.

A greedy decode is a function of its prompt and sampling settings. An evaluation that compares
writers asks the reader the same question of the same memory whenever two writers stored the
same thing: in the quickstart, a GRPO step leaves most of the warm start's memories unchanged,
and answering those again costs the reader's prefill (compute-bound on a CPU) a second time.
Answering them from memory also makes an unchanged memory score the same for both writers, where
a fresh decode in a batch of other prompts may differ in the last float bits (left padding), and
with them, rarely, in a token.

Sampled generations (temperature > 0) are never remembered: two samples of one prompt are meant
to differ. What is held is bounded by token ids (a generation keeps its prompt's ids, up to the
reader's whole prompt cap), not by entries, so long prompts cannot grow it without bound.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict

from memalpha.llm.protocol import LLM, Generation, Message, SamplingParams


def _size(generation: Generation) -> int:
    """Token ids a remembered generation holds (at least 1, so every entry counts)."""
    return max(1, len(generation.prompt_ids) + len(generation.token_ids))


class GreedyMemo:
    """An `LLM` in front of another one that answers a greedy prompt it has generated before
    from memory, and sends only new prompts (each once) to the backend.

    Args:
        llm: the backend.
        max_tokens: token ids held (prompts and answers); the least recently used generations
            are forgotten beyond it (4M ids: ~150 MB as Python ints at most).
    """

    def __init__(self, llm: LLM, max_tokens: int = 4_000_000) -> None:
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be positive, got {max_tokens}")
        self.llm, self.name, self.max_tokens = llm, llm.name, max_tokens
        self.hits = self.misses = 0  # prompts answered from memory / by the backend
        self.held = 0  # token ids held now
        self._seen: OrderedDict[str, Generation] = OrderedDict()

    def generate(self, prompts: list[list[Message]], sampling: SamplingParams) -> list[Generation]:
        if sampling.temperature > 0:
            return self.llm.generate(prompts, sampling)
        settings = sampling.model_dump(mode="json", exclude={"seed", "greedy_rows"})
        keys = [_key(p, settings) for p in prompts]
        first: dict[str, list[Message]] = {}  # each distinct prompt, in order of first sight
        for key, prompt in zip(keys, prompts, strict=True):
            first.setdefault(key, prompt)
        found = {k: self._seen[k] for k in first if k in self._seen}
        new = [k for k in first if k not in found]
        if new:
            asked = [first[k] for k in new]
            found.update(zip(new, self.llm.generate(asked, sampling), strict=True))
        self.misses += len(new)
        self.hits += len(keys) - len(new)
        for key in first:
            self._remember(key, found[key])
        return [found[k] for k in keys]

    def _remember(self, key: str, generation: Generation) -> None:
        """Keep `generation` as the most recently used; forget the least recent beyond the cap."""
        if key in self._seen:
            self.held -= _size(self._seen.pop(key))
        self._seen[key] = generation
        self.held += _size(generation)
        while self.held > self.max_tokens and self._seen:
            self.held -= _size(self._seen.popitem(last=False)[1])

    def close(self) -> None:
        self._seen.clear()
        self.held = 0
        self.llm.close()


def _key(prompt: list[Message], settings: dict) -> str:
    """A prompt and its sampling settings, hashed: a key the size of a digest, not a prompt."""
    text = json.dumps([prompt, settings], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
