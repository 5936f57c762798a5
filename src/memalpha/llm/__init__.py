"""LLM backends behind one small protocol, and tool-call text formats; nothing of memory."""

from memalpha.llm.formats import FORMATS, FunctionCall, ParsedOutput, ToolCallFormat
from memalpha.llm.protocol import LLM, Generation, Message, SamplingParams
from memalpha.llm.registry import ModelConfig, make_llm, resolve_folder

__all__ = [
    "FORMATS",
    "LLM",
    "FunctionCall",
    "Generation",
    "Message",
    "ModelConfig",
    "ParsedOutput",
    "SamplingParams",
    "ToolCallFormat",
    "make_llm",
    "resolve_folder",
]
