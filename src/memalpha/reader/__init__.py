"""The fixed reader that answers from memory alone, an LLM-free extractive reader, and judges."""

from memalpha.reader.config import (
    Judge,
    JudgeConfig,
    Reader,
    ReaderConfig,
    build_judge,
    build_reader,
)
from memalpha.reader.extractive import ExtractiveReader
from memalpha.reader.judges import (
    ContentJudge,
    RubricJudge,
    RuleJudge,
    parse_validity,
    parse_yes_no,
)
from memalpha.reader.rag import (
    Answer,
    Question,
    RagReader,
    answer_prefix,
    begin_answer,
    qa_system_prompt,
    query_prompt,
    user_message,
)

__all__ = [
    "Answer",
    "ContentJudge",
    "ExtractiveReader",
    "Judge",
    "JudgeConfig",
    "Question",
    "RagReader",
    "Reader",
    "ReaderConfig",
    "RubricJudge",
    "RuleJudge",
    "answer_prefix",
    "begin_answer",
    "build_judge",
    "build_reader",
    "parse_validity",
    "parse_yes_no",
    "qa_system_prompt",
    "query_prompt",
    "user_message",
]
