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
to differ.
"""

from __future__ import annotations

import json
from collections import OrderedDict

from memalpha.llm.protocol import LLM, Generation, Message, SamplingParams


class GreedyMemo:
    """An `LLM` in front of another one that answers a greedy prompt it has generated before
    from memory, and sends only new prompts (each once) to the backend.

    Args:
        llm: the backend.
        max_entries: prompts remembered; the least recently used is forgotten beyond it.
    """

    def __init__(self, llm: LLM, max_entries: int = 65_536) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be positive, got {max_entries}")
        self.llm, self.name, self.max_entries = llm, llm.name, max_entries
        self.hits = self.misses = 0  # prompts answered from memory / by the backend
        self._seen: OrderedDict[str, Generation] = OrderedDict()

    def generate(self, prompts: list[list[Message]], sampling: SamplingParams) -> list[Generation]:
        if sampling.temperature > 0:
            return self.llm.generate(prompts, sampling)
        settings = sampling.model_dump(mode="json", exclude={"seed", "greedy_rows"})
        keys = [json.dumps([p, settings], sort_keys=True) for p in prompts]
        found = {k: self._seen[k] for k in keys if k in self._seen}
        new = [k for k in dict.fromkeys(keys) if k not in found]
        if new:
            asked = [prompts[keys.index(k)] for k in new]
            found.update(zip(new, self.llm.generate(asked, sampling), strict=True))
        self.misses += len(new)
        self.hits += len(keys) - len(new)
        for key in dict.fromkeys(keys):
            self._remember(key, found[key])
        return [found[k] for k in keys]

    def _remember(self, key: str, generation: Generation) -> None:
        """Keep `generation` as the most recently used; forget the least recent beyond the cap."""
        self._seen[key] = generation
        self._seen.move_to_end(key)
        while len(self._seen) > self.max_entries:
            self._seen.popitem(last=False)

    def close(self) -> None:
        self._seen.clear()
        self.llm.close()
