"""The fixed reader that answers from memory alone, an LLM-free extractive reader, and judges."""

from memalpha.reader.extractive import ExtractiveReader
from memalpha.reader.judges import (
    ContentJudge,
    RubricJudge,
    RuleJudge,
    parse_validity,
    parse_yes_no,
)
from memalpha.reader.rag import Answer, Question, RagReader, qa_system_prompt, query_prompt

__all__ = [
    "Answer",
    "ContentJudge",
    "ExtractiveReader",
    "Question",
    "RagReader",
    "RubricJudge",
    "RuleJudge",
    "parse_validity",
    "parse_yes_no",
    "qa_system_prompt",
    "query_prompt",
]
