"""Every QA metric, one function per name, and `score()` to apply the one a data source uses.

Published rules (MEMALPHA_SPEC §3.1, §5.4) with the bugs the spec marks fixed: PerLTQA-style
partial containment lowercases the prediction too; `\\boxed{}` parsing handles nested braces;
answers are scored after a `<think>…</think>` prefix is removed (a dangling `<think>` scores 0).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable

from memalpha.errors import ConfigError

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def strip_thinking(prediction: str) -> str | None:
    """The answer after a reasoning block; None when the block never closed (no answer)."""
    if "</think>" in prediction:
        return prediction.rsplit("</think>", 1)[1].strip()
    if "<think>" in prediction:
        return None
    return prediction.strip()


def normalize(text: str) -> str:
    """SQuAD normalisation: lowercase, drop punctuation and articles, collapse whitespace."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def exact_match(prediction: str, answers: list[str]) -> float:
    return float(any(normalize(prediction) == normalize(a) for a in answers))


def _candidates(prediction: str) -> list[str]:
    """The whole output, plus the text after 'Answer:' or else the first line (published)."""
    after = re.split(r"answer:", prediction, flags=re.I)
    short = after[-1] if len(after) > 1 else prediction.strip().split("\n", 1)[0]
    return [prediction, short]


def substring_exact_match(prediction: str, answers: list[str]) -> float:
    """Normalised gold contained in a normalised candidate (MemoryAgentBench's default)."""
    cands = [normalize(c) for c in _candidates(prediction)]
    return float(any(normalize(a) and normalize(a) in c for a in answers for c in cands))


def containment(prediction: str, answers: list[str]) -> float:
    """Case-insensitive containment of any gold alias (published squad/hotpotqa reward)."""
    low = prediction.lower()
    return float(any(a.strip() and a.strip().lower() in low for a in answers))


def _fraction_found(prediction: str, answers: list[str], sep: str) -> float:
    """Best over gold aliases of the fraction of `sep`-separated parts found (lowercased)."""
    low = prediction.lower()
    best = 0.0
    for answer in answers:
        parts = [p.strip().lower() for p in answer.split(sep) if p.strip()]
        if parts:
            best = max(best, sum(p in low for p in parts) / len(parts))
    return best


def partial_containment(prediction: str, answers: list[str]) -> float:
    """Fraction of ';'-separated gold parts contained (PerLTQA); both sides lowercased, which
    fixes the published comparison of lowercased gold with the raw prediction."""
    return _fraction_found(prediction, answers, ";")


def f1(prediction: str, answers: list[str]) -> float:
    """Token F1 over normalised words, max over gold aliases."""
    pred = normalize(prediction).split()
    best = 0.0
    for answer in answers:
        gold = normalize(answer).split()
        common = sum((Counter(pred) & Counter(gold)).values())
        if common:
            p, r = common / len(pred), common / len(gold)
            best = max(best, 2 * p * r / (p + r))
    return best


def boxed(text: str) -> str | None:
    """Content of the first `\\boxed{...}`, nested braces included; None if there is none."""
    start = text.find("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j]
    return None


def boxed_label(prediction: str, answers: list[str]) -> float:
    """The boxed answer (or the whole answer) must be a bare integer equal to a gold label."""
    value = boxed(prediction)
    value = (prediction if value is None else value).strip().strip("'\"`").strip()
    return float(bool(re.fullmatch(r"\d+", value)) and value in [a.strip() for a in answers])


def keyword_recall(prediction: str, answers: list[str]) -> float:
    """Fraction of the gold's comma-separated keywords found (case-insensitive), best alias."""
    return _fraction_found(prediction, answers, ",")


def rouge_l(prediction: str, answers: list[str]) -> float:
    """ROUGE-L F-measure (rouge-score, Porter stemming), best alias."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return max(scorer.score(a, prediction)["rougeL"].fmeasure for a in answers)


METRICS: dict[str, Callable[[str, list[str]], float]] = {
    "exact_match": exact_match,
    "substring_exact_match": substring_exact_match,
    "containment": containment,
    "partial_containment": partial_containment,
    "f1": f1,
    "boxed_label": boxed_label,
    "keyword_recall": keyword_recall,
    "rouge_l": rouge_l,
}


def score(metric: str, prediction: str, answers: list[str]) -> float:
    """Score one answer in [0, 1] with the named metric, after removing a thinking block.

    Raises:
        ConfigError: unknown metric name.
    """
    fn = METRICS.get(metric)
    if fn is None:
        raise ConfigError(f"unknown metric '{metric}' (known: {', '.join(METRICS)})")
    answer = strip_thinking(prediction)
    return 0.0 if answer is None else fn(answer, answers)
