"""The loop stop: where a looping response is cut (against a brute-force reading of the rule),
and the real SmolLM2 decoding a loop, with and without the stop."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memalpha.agent import WriterConfig
from memalpha.llm.loops import LoopStop, loop_cut, loops_at_end, trim_loop
from memalpha.llm.protocol import SamplingParams
from memalpha.llm.registry import ModelConfig, make_llm

SMALL = LoopStop(min_span=2, max_span=5, repeats=3, max_mismatch=0.0)
FUZZY = LoopStop(min_span=3, max_span=6, repeats=3, max_mismatch=0.2)


def first_loop(ids: list[int], stop: LoopStop) -> tuple[int, int] | None:
    """The rule read literally: the first prefix end at which the last `repeats` spans of
    some length each equal the one before, but for `max_mismatch` of the positions compared
    (the shortest such span there). (end, span), or None."""
    for end in range(1, len(ids) + 1):
        for span in range(stop.min_span, stop.max_span + 1):
            width = span * stop.repeats
            if width > end:
                break
            differ = sum(ids[i] != ids[i - span] for i in range(end - width + span, end))
            if differ <= int((width - span) * stop.max_mismatch):
                return end, span
    return None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 2), max_size=40), st.sampled_from([SMALL, FUZZY]))
def test_the_cut_keeps_one_copy_of_the_first_loop_found_token_by_token(ids, stop) -> None:
    # a three-token alphabet loops often, so most examples hold a loop somewhere
    cut, found = loop_cut(ids, stop), first_loop(ids, stop)
    assert (cut is None) == (found is None)
    if found is None:
        return
    end, span = found
    assert span <= cut < end and ids[cut - span] == ids[cut]  # a copy kept, the next begins
    if stop.max_mismatch == 0:
        assert cut <= end - span * (stop.repeats - 1)  # no more than the loop's first copy
    assert loop_cut(ids[:cut], stop) is None  # nothing before the cut loops
    fired = [n for n in range(end + 1) if loops_at_end(np.array([ids[:n]]), stop)[0]]
    assert fired == [end]  # the per-step test first fires where that loop ends


def test_a_sentence_repeated_is_cut_to_its_first_copy_and_varied_text_is_not() -> None:
    head, sentence = list(range(100, 140)), list(range(7, 25))  # 18-token sentence
    ids = head + sentence * 6 + sentence[:5]
    assert loop_cut(ids, LoopStop()) == len(head) + len(sentence)
    assert loop_cut(ids, None) is None  # no loop stop set: nothing is cut
    logprobs = [-float(i) for i in range(len(ids))]
    cut = len(head) + len(sentence)
    assert trim_loop(ids, logprobs, LoopStop()) == (ids[:cut], logprobs[:cut], True)
    assert trim_loop(ids, None, None) == (ids, None, False)
    assert loop_cut(ids[: len(head) + 2 * len(sentence)], LoopStop()) is None  # two copies
    assert loop_cut(list(range(2000)), LoopStop()) is None
    assert loop_cut(head + [5] * 30, LoopStop()) == len(head) + 8  # one token, min_span long
    counting = [s for n in range(6) for s in (sentence + [50 + n // 2])]  # "…: 0; …: 0; …: 1;"
    assert loop_cut(head + counting, LoopStop()) == len(head) + len(sentence) + 1


def test_loop_stop_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="max_span 4 < min_span 8"):
        LoopStop(max_span=4)
    assert WriterConfig().sampling().loop_stop is None  # as published: decode to the budget
    assert WriterConfig(loop_stop=LoopStop()).sampling(0.8).loop_stop == LoopStop()


LOOPING = [  # SmolLM2 continues a repeated list to its budget
    {"role": "user", "content": "List the facts."},
    {"role": "assistant", "content": "- Paris is in France.\n" * 4},
]
PLAIN = [{"role": "user", "content": "What is the capital of France?"}]


def test_smollm2_looping_answer_is_cut_to_a_prefix_of_what_it_decodes(smol_folder) -> None:
    with make_llm(ModelConfig(model=str(smol_folder))) as llm:
        budget = SamplingParams(max_new_tokens=96, logprobs=True)
        whole = llm.generate([LOOPING, PLAIN], budget)
        cut = llm.generate([LOOPING, PLAIN], budget.model_copy(update={"loop_stop": LoopStop()}))
    assert whole[0].finish_reason == "length" and len(whole[0].token_ids) == 96
    looped = cut[0]
    assert looped.finish_reason == "loop" and len(looped.token_ids) < 20
    assert whole[0].token_ids[: len(looped.token_ids)] == looped.token_ids  # the same sample
    assert looped.logprobs == pytest.approx(whole[0].logprobs[: len(looped.token_ids)], abs=1e-4)
    # the line is 7 tokens, under min_span 8: its loop is found as a two-line span, kept once
    assert looped.text == "- Paris is in France.\n" * 2
    assert cut[1] == whole[1] and cut[1].finish_reason == "stop"  # a row that ends is untouched
