"""The fixed reader (published prompt, prefix-free BM25 query, prompt cap), the extractive
reader, and the judges' verdict parsers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from memalpha.llm import ModelConfig, TransformersLLM
from memalpha.llm.protocol import Generation
from memalpha.memory import Component
from memalpha.metrics import score
from memalpha.reader import (
    ContentJudge,
    ExtractiveReader,
    JudgeConfig,
    Question,
    RagReader,
    ReaderConfig,
    parse_validity,
    parse_yes_no,
    qa_system_prompt,
    query_prompt,
)
from memalpha.reader.rag import retrieve


class EchoLLM:
    """Fake LLM that answers with a fixed text and records the prompts (no model needed to
    check prompt construction)."""

    name = "echo"

    def __init__(self, reply: str = "ok") -> None:
        self.reply, self.seen = reply, []

    def generate(self, prompts, sampling):
        self.seen += prompts
        return [Generation(self.reply) for _ in prompts]

    def close(self) -> None:
        pass


def test_qa_prompt_matches_the_published_layout(memory) -> None:
    memory.update(Component.CORE, "Ada likes tea.")
    memory.insert(Component.SEMANTIC, "Tea is a drink.")
    text = qa_system_prompt(memory.core, retrieve(Question(memory, "tea"), 20))
    assert "- Core Memory: Fundamental facts about the user" in text
    assert (
        "<core_memory>\nAda likes tea.\n</core_memory>\n\n<semantic_memory>\n1. Tea is a drink."
        in text
    )
    assert "<episodic_memory>\n(No memories stored)\n</episodic_memory>" in text


def test_bm25_query_ignores_the_instruction_prefix(memory) -> None:
    memory.insert(Component.SEMANTIC, "The core memory stores classification rules.")
    memory.insert(Component.SEMANTIC, "Bananas are yellow.")
    q = Question(memory, "What colour are bananas?", query_prompt("trec_coarse"))
    assert "classification rules" in q.user_message.lower()
    assert [e.content for e in retrieve(q, 1)[Component.SEMANTIC]] == ["Bananas are yellow."]


def test_prompt_cap_shrinks_k(memory, counter) -> None:
    for i in range(30):
        memory.insert(Component.SEMANTIC, f"fact {i} about tea " + "word " * 40)
    llm = EchoLLM()
    reader = RagReader(llm, counter.count, k=20, max_prompt_tokens=600)
    (answer,) = reader.answer([Question(memory, "tea")])
    assert 0 < len(answer.evidence) < 20
    assert counter.count(llm.seen[0][0]["content"]) <= 600


def test_extractive_reader_answers_with_the_best_sentence(memory) -> None:
    memory.insert(Component.SEMANTIC, "Rollo was the first ruler of Normandy. He was a Viking.")
    memory.insert(Component.SEMANTIC, "Paris is large.")
    (answer,) = ExtractiveReader().answer(
        [Question(memory, "Who was the first ruler of Normandy?")]
    )
    assert answer.text == "Rollo was the first ruler of Normandy."


def test_extractive_reader_boxes_the_nearest_label(memory) -> None:
    memory.insert(Component.SEMANTIC, "Sentence: play some jazz music; Label: 4")
    memory.insert(Component.SEMANTIC, "Sentence: book a flight to Rome; Label: 2")
    q = Question(memory, "Sentence: book a train to Rome", query_prompt("banking77"))
    assert ExtractiveReader().answer([q])[0].text == "\\boxed{2}"


def test_verdict_parsers() -> None:
    assert parse_validity('ok ```json\n{"VALID": true, "ISSUES": []}\n```') == 1.0
    assert parse_validity('```json\n{"VALID": "true"}\n```') == 0.0
    assert parse_validity("VALID: true") == 0.0
    assert parse_yes_no("Yes, it does.") == 1.0
    assert parse_yes_no("Yes, as far as I know.") == 1.0  # published: 'no' in 'know' → 0
    assert parse_yes_no("I do not know, now") == 0.0
    assert parse_yes_no("Not sure. Yes.") == 1.0


def test_content_judge_scores_empty_writes_zero_without_asking() -> None:
    llm = EchoLLM('```json\n{"VALID": true}\n```')
    assert ContentJudge(llm).judge(
        [("semantic", "A fact."), ("episodic", "  "), ("procedural", "x")]
    ) == [1.0, 0.0, 0.0]
    assert (
        len(llm.seen) == 1 and "Analyze this semantic memory content" in llm.seen[0][1]["content"]
    )


def test_classification_answers_are_begun_with_a_box_and_scored_whole(memory, counter) -> None:
    memory.insert(Component.SEMANTIC, "Sentence: Who wrote Hamlet ?; Label: 3")
    llm = EchoLLM("3} because of the example")
    boxed = Question(memory, "Sentence: Who wrote Emma ?", query_prompt("trec_coarse"))
    plain = Question(memory, "Who wrote Hamlet?", query_prompt("squad"))
    answers = RagReader(llm, counter.count, k=5).answer([boxed, plain])
    assert llm.seen[0][-1] == {"role": "assistant", "content": "\\boxed{"}
    assert llm.seen[1][-1]["role"] == "user"  # nothing asked for a box
    assert answers[0].text == "\\boxed{3} because of the example"
    assert score("boxed_label", answers[0].text, ["3"]) == 1.0
    assert answers[1].text == "3} because of the example"

    off = EchoLLM("3}")
    (answer,) = RagReader(off, counter.count, k=5, answer_prefix=False).answer([boxed])
    assert off.seen[0][-1]["role"] == "user" and answer.text == "3}"


def test_a_begun_answer_is_rendered_open_for_the_model_to_continue(tiny_model) -> None:
    llm = TransformersLLM(tiny_model, dtype="float32")
    asked = [{"role": "user", "content": "the label"}]
    begun = llm.render([*asked, {"role": "assistant", "content": "\\boxed{"}])
    assert begun.startswith(llm.render(asked)) and begun.endswith("\\boxed{")


def test_rag_reader_and_llm_judge_default_to_the_packaged_cpu_model() -> None:
    assert ReaderConfig(kind="rag").model == ModelConfig(model="qwen2.5-coder-0.5b-instruct")
    assert JudgeConfig(kind="llm").model == ModelConfig(model="qwen2.5-coder-0.5b-instruct")
    served = ModelConfig(backend="openai", model="Qwen/Qwen3-32B", base_url="http://h:1/v1")
    assert ReaderConfig(kind="rag", model=served).model == served
    assert ReaderConfig().model is None and JudgeConfig().model is None
    with pytest.raises(ValidationError):
        ReaderConfig(kind="rag", answer_prefix="sometimes")
