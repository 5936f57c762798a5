"""LLM backends behind one small protocol, and tool-call text formats; nothing of memory."""

from memalpha.llm.formats import FORMATS, FunctionCall, ParsedOutput, ToolCallFormat

__all__ = ["FORMATS", "FunctionCall", "ParsedOutput", "ToolCallFormat"]
