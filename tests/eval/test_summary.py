"""Row grouping of `memalpha.eval.summary`: what the reports and the quickstart's paired
comparisons average over."""

from __future__ import annotations

from memalpha.eval.summary import by_instance, summarize


def row(method, instance, question, score, scale=1):
    return {
        "method": method,
        "scale": scale,
        "instance_id": instance,
        "question_id": question,
        "score": score,
        "data_source": "squad",
        "competency": "AR",
        "memory_tokens": 10,
        "input_tokens": 100,
    }


def test_a_redone_question_counts_once_with_its_last_score():
    rows = [row("sft", "a", "q1", 0.0), row("sft", "a", "q2", 1.0), row("sft", "a", "q1", 1.0)]
    grouped = by_instance(rows)
    assert list(grouped) == [("sft", 1, "a")]
    assert sorted(r["score"] for r in grouped["sft", 1, "a"]) == [1.0, 1.0]
    assert summarize(rows)["methods"]["sft"]["1"]["overall"] == 1.0


def test_instances_are_kept_apart_by_method_and_scale():
    rows = [
        row("sft", "a", "q1", 1.0),
        row("sft", "a", "q1", 0.0, scale=2),
        row("rag", "a", "q1", 0.5),
        row("sft", "b", "q1", 0.0),
    ]
    grouped = by_instance(rows)
    assert set(grouped) == {("sft", 1, "a"), ("sft", 2, "a"), ("rag", 1, "a"), ("sft", 1, "b")}
    summary = summarize(rows)["methods"]
    assert summary["sft"]["1"]["overall"] == 0.5  # mean over instances a (1.0) and b (0.0)
    assert summary["sft"]["2"]["overall"] == 0.0
    assert summary["rag"]["1"]["overall"] == 0.5
