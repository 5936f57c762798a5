"""Tool-call text formats, one module each, registered by name."""

from memalpha.llm.formats.base import FunctionCall, ParsedOutput, ToolCallFormat
from memalpha.llm.formats.hermes import HermesFormat
from memalpha.llm.formats.qwen import QwenAgentFormat

FORMATS: dict[str, ToolCallFormat] = {"qwen": QwenAgentFormat(), "hermes": HermesFormat()}

__all__ = [
    "FORMATS",
    "FunctionCall",
    "HermesFormat",
    "ParsedOutput",
    "QwenAgentFormat",
    "ToolCallFormat",
]
