"""GreedyMemo in front of a real local model (the tiny random Llama of tests/tiny.py): a greedy
prompt seen before is answered from memory, each new prompt reaches the model once, sampled
calls always reach it, and the oldest prompts are forgotten beyond the cap."""

from __future__ import annotations

import pytest

from memalpha.llm import GreedyMemo, SamplingParams, make_llm
from memalpha.llm.registry import ModelConfig

GREEDY = SamplingParams(temperature=0.0, max_new_tokens=6)


class Counting:
    """The real model, with a record of the prompts each call sent it (a spy, not a fake)."""

    def __init__(self, llm) -> None:
        self.llm, self.name, self.calls = llm, llm.name, []

    def generate(self, prompts, sampling):
        self.calls.append(len(prompts))
        return self.llm.generate(prompts, sampling)

    def close(self) -> None:
        self.llm.close()


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def model(tiny_model):
    llm = Counting(make_llm(ModelConfig(model=str(tiny_model), batch_size=8)))
    yield llm
    llm.close()


def test_a_greedy_prompt_reaches_the_model_once(model):
    memo = GreedyMemo(model)
    first = memo.generate([ask("alpha"), ask("beta"), ask("alpha")], GREEDY)
    assert model.calls == [2]  # the repeat inside one call is asked once too
    assert first[0] == first[2]
    again = memo.generate([ask("beta"), ask("gamma"), ask("alpha")], GREEDY)
    assert model.calls == [2, 1]
    assert again[0] == first[1] and again[2] == first[0]
    assert (memo.hits, memo.misses) == (3, 3)
    # what the model itself answers to the new prompt alone
    assert again[1].text == model.llm.generate([ask("gamma")], GREEDY)[0].text


def test_other_settings_are_other_prompts_and_sampling_is_never_remembered(model):
    memo = GreedyMemo(model)
    memo.generate([ask("alpha")], GREEDY)
    memo.generate([ask("alpha")], GREEDY.model_copy(update={"max_new_tokens": 3}))
    assert model.calls == [1, 1]
    memo.generate([ask("alpha")], GREEDY.model_copy(update={"seed": 5}))  # greedy: seed unused
    assert model.calls == [1, 1]
    sampled = SamplingParams(temperature=1.0, max_new_tokens=6, seed=1)
    memo.generate([ask("alpha"), ask("alpha")], sampled)
    memo.generate([ask("alpha")], sampled)
    assert model.calls == [1, 1, 2, 1]
    assert (memo.hits, memo.misses) == (1, 2)


def test_the_least_recently_used_prompt_is_forgotten_beyond_the_cap(model):
    """The cap counts token ids held (prompt and answer), so a long prompt weighs what it is."""
    size = {
        w: len(g.prompt_ids) + len(g.token_ids)
        for w in "abc"
        for g in model.llm.generate([ask(w)], GREEDY)
    }
    memo = GreedyMemo(model, max_tokens=size["a"] + max(size["b"], size["c"]))
    memo.generate([ask("a")], GREEDY)
    memo.generate([ask("b")], GREEDY)
    memo.generate([ask("a")], GREEDY)  # a is now the most recent
    memo.generate([ask("c")], GREEDY)  # forgets b
    assert model.calls == [1, 1, 1]
    assert memo.held == size["a"] + size["c"] <= memo.max_tokens
    memo.generate([ask("a")], GREEDY)
    assert model.calls == [1, 1, 1]
    memo.generate([ask("b")], GREEDY)
    assert model.calls == [1, 1, 1, 1]
    # more new prompts in one call than the cap holds still come back, each its own
    out = memo.generate([ask(w) for w in ("d", "e", "f", "g")], GREEDY)
    assert len(out) == 4 and model.calls[-1] == 4 and memo.held <= memo.max_tokens
    with pytest.raises(ValueError, match="max_tokens"):
        GreedyMemo(model, max_tokens=0)
