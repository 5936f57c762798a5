"""Every metric against hand-checked examples, including the published bugs we fix."""

from __future__ import annotations

import typing

import pytest

from memalpha import metrics
from memalpha.data.instance import Metric
from memalpha.errors import ConfigError


def test_metric_names_match_the_instance_schema() -> None:
    assert set(typing.get_args(Metric)) == set(metrics.METRICS)


def test_normalize() -> None:
    assert metrics.normalize("  The Eiffel-Tower, in   PARIS! ") == "eiffeltower in paris"
    assert metrics.normalize("an apple a day") == "apple day"


@pytest.mark.parametrize(
    ("metric", "prediction", "answers", "expected"),
    [
        ("exact_match", "The Denver Broncos.", ["Denver Broncos"], 1.0),
        ("exact_match", "Denver Broncos won", ["Denver Broncos"], 0.0),
        ("substring_exact_match", "I think it was the Denver Broncos.", ["denver broncos"], 1.0),
        ("substring_exact_match", "Answer: Broncos", ["Denver Broncos"], 0.0),
        ("containment", "It is PARIS, France", ["Lyon", "paris"], 1.0),
        ("containment", "It is Lyonnais", ["Paris"], 0.0),
        ("containment", "anything", ["  "], 0.0),  # an empty gold never matches
        ("partial_containment", "He likes Tea and COFFEE", ["tea; coffee; milk"], 2 / 3),
        ("f1", "the cat sat", ["cat sat down"], 0.8),
        ("f1", "dog", ["cat"], 0.0),
        ("boxed_label", "The label is \\boxed{3}.", ["3"], 1.0),
        ("boxed_label", "\\boxed{'12'}", ["12"], 1.0),
        ("boxed_label", "\\boxed{\\text{3}}", ["3"], 0.0),  # nested braces parsed, not a bare int
        ("boxed_label", "3", ["3"], 1.0),  # no box: the whole answer
        ("boxed_label", "label 3", ["3"], 0.0),
        ("boxed_label", "\\boxed{4} or \\boxed{3}", ["3"], 0.0),  # only the first box counts
        (
            "keyword_recall",
            "Darcy met Elizabeth at Pemberley",
            ["Darcy, Elizabeth, Jane, Bingley"],
            0.5,
        ),
        ("rouge_l", "the cat sat on the mat", ["a cat sat on a mat"], 2 / 3),
    ],
)
def test_hand_checked_examples(metric, prediction, answers, expected) -> None:
    assert metrics.score(metric, prediction, answers) == pytest.approx(expected)


def test_partial_containment_fixes_the_published_case_bug() -> None:
    # published: "tea" in "TEA" is False because the prediction was not lowercased
    assert metrics.partial_containment("TEA", ["Tea"]) == 1.0


def test_boxed_handles_nesting_and_unclosed() -> None:
    assert metrics.boxed("x \\boxed{a{b}c} y") == "a{b}c"
    assert metrics.boxed("\\boxed{open") is None
    assert metrics.boxed("none") is None


def test_thinking_is_stripped_and_a_dangling_block_scores_zero() -> None:
    assert metrics.score("containment", "<think>maybe Lyon</think> Paris", ["Paris"]) == 1.0
    assert metrics.score("containment", "<think>Paris, probably", ["Paris"]) == 0.0


def test_unknown_metric_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown metric 'bleu'"):
        metrics.score("bleu", "x", ["x"])
