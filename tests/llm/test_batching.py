"""How a local model batches prompts: by length (the batches partition the rows and hold rows
of similar length) and with a prefix all prompts share computed once. Either way each prompt
gets what it would get alone or plainly padded, in prompt order (the tiny random Llama of
tests/tiny.py)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memalpha.llm import SamplingParams, make_llm
from memalpha.llm.batching import by_length, length_batches
from memalpha.llm.local import shared_prefix
from memalpha.llm.registry import ModelConfig


@given(st.lists(st.integers(0, 50), max_size=40), st.integers(1, 9))
def test_length_batches_partition_the_rows_longest_first(lengths, size):
    batches = length_batches(lengths, size)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(1 <= len(b) <= size for b in batches)
    if len(lengths) > size:  # each batch's rows are all at least as long as the next batch's
        for a, b in itertools.pairwise(batches):
            assert min(lengths[i] for i in a) >= max(lengths[i] for i in b)
    else:
        assert batches == ([list(range(len(lengths)))] if lengths else [])


@given(st.lists(st.integers(0, 50), max_size=40), st.integers(1, 9))
def test_by_length_returns_results_in_row_order(lengths, size):
    seen: list[list[int]] = []

    def run(rows: list[int]) -> list[tuple[int, int]]:
        seen.append(rows)
        return [(i, lengths[i]) for i in rows]

    assert by_length(lengths, size, run) == [(i, n) for i, n in enumerate(lengths)]
    assert seen == length_batches(lengths, size)  # one call per length batch, in batch order


def test_length_batches_pad_less_than_arrival_order():
    lengths = [10, 400, 12, 390, 11, 410]
    padded = [max(lengths[i] for i in b) * len(b) for b in length_batches(lengths, 2)]
    assert padded == [410 * 2, 390 * 2, 11 * 2]  # in arrival order: 400·2, 390·2, 410·2


def test_greedy_rows_follow_their_rows_into_a_subset():
    sampling = SamplingParams(temperature=1.0, greedy_rows=(1, 4))
    assert sampling.subset([4, 0, 1]).greedy_rows == (0, 2)
    assert sampling.subset([2, 3]).greedy_rows == ()
    plain = SamplingParams(temperature=1.0)
    assert plain.subset([3, 1]) is plain


def ask(words: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": " ".join(["alpha beta gamma"] * words)}]


@pytest.fixture
def batched(tiny_model):
    with make_llm(ModelConfig(model=str(tiny_model), batch_size=2)) as llm:
        yield llm


def test_prompts_batched_by_length_come_back_in_prompt_order(batched):
    prompts = [ask(1), ask(30), ask(2), ask(25), ask(3)]
    greedy = SamplingParams(temperature=0.0, max_new_tokens=6)
    together = batched.generate(prompts, greedy)
    alone = [batched.generate([p], greedy)[0] for p in prompts]
    assert [g.prompt_tokens for g in together] == [g.prompt_tokens for g in alone]
    assert [g.token_ids for g in together] == [g.token_ids for g in alone]


def test_greedy_rows_stay_greedy_when_batched_by_length(batched):
    prompts = [ask(1), ask(30), ask(2), ask(25), ask(3)]
    mixed = SamplingParams(
        temperature=1.0, max_new_tokens=6, seed=3, logprobs=True, greedy_rows=(0, 3)
    )
    out = batched.generate(prompts, mixed)
    greedy = SamplingParams(temperature=0.0, max_new_tokens=6)
    for row in (0, 3):
        assert out[row].logprobs is None
        assert out[row].token_ids == batched.generate([prompts[row]], greedy)[0].token_ids
    assert all(out[row].logprobs is not None for row in (1, 2, 4))


def test_shared_prefix_is_the_common_start_less_one_token_and_only_when_long():
    rows = [[1, 2, 3, 4, 5], [1, 2, 3, 4, 9, 9], [1, 2, 3, 4, 5, 6]]
    assert shared_prefix(rows, 2) == 4
    assert shared_prefix(rows, 5) == 0  # under the minimum
    assert shared_prefix([[1, 2, 3], [1, 2, 3]], 1) == 2  # each row keeps a token of its own
    assert shared_prefix([[1, 2, 3]], 1) == 0  # one prompt: nothing to share
    assert shared_prefix(rows, 0) == 0  # 0 turns sharing off


def with_system(words: int) -> list[dict[str, str]]:
    system = {"role": "system", "content": " ".join(["delta epsilon zeta eta"] * 12)}
    return [system, *ask(words)]


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_a_shared_prefix_computed_once_generates_what_plain_padding_does(tiny_model, temperature):
    prompts = [with_system(1), with_system(9), with_system(4)]  # tails of unequal length
    sampling = SamplingParams(temperature=temperature, max_new_tokens=8, seed=5, logprobs=True)
    runs = []
    for minimum in (0, 16):
        with make_llm(ModelConfig(model=str(tiny_model), shared_prefix_min=minimum)) as llm:
            ids = [llm.prompt_ids(p) for p in prompts]
            runs.append((shared_prefix(ids, minimum), llm.generate(prompts, sampling)))
    (none, plain), (shared, reused) = runs
    assert none == 0 and shared >= 40  # the system prompt is computed once in the second run
    assert [g.token_ids for g in reused] == [g.token_ids for g in plain]
    for a, b in zip(plain, reused, strict=True):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
