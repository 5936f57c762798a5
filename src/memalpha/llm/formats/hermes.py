"""The Hermes / Qwen3-native `<tool_call>{"name": …, "arguments": …}</tool_call>` format, robust
to truncated output, text around the calls and JSON that json_repair can mend."""

from __future__ import annotations

import json
import re
from typing import Any

from memalpha.llm.formats.base import (
    FunctionCall,
    ParsedOutput,
    argument_problem,
    dumps_escaped,
    loads_object,
    repair_object,
)

_MARKERS = ("<tool_call>", "</tool_call>")
_CALL = re.compile(r"<tool_call>(.*?)(?:</tool_call>|(?=<tool_call>)|$)", re.S)


class HermesFormat:
    """Hermes-style <tool_call> JSON, as the Qwen2.5/Qwen3 chat templates write it. Generation
    stops at <tool_response>: past it the model only imagines tool results."""

    name = "hermes"
    stop_strings = ("<tool_response>",)

    def system_block(self, functions: list[dict[str, Any]]) -> str:
        """The tool block of the Qwen2.5/Qwen3 chat templates."""
        tools = "\n".join(
            json.dumps({"type": "function", "function": f}, ensure_ascii=False) for f in functions
        )
        return (
            "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
            "You are provided with function signatures within <tools></tools> XML tags:\n"
            f"<tools>\n{tools}\n</tools>\n\n"
            "For each function call, return a json object with function name and arguments "
            "within <tool_call></tool_call> XML tags:\n<tool_call>\n"
            '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
        )

    def parse(self, text: str) -> ParsedOutput:
        first = text.find("<tool_call>")
        reasoning = (text if first < 0 else text[:first]).strip()
        return ParsedOutput(reasoning, [_call(m.group(1).strip()) for m in _CALL.finditer(text)])

    def render(self, calls: list[FunctionCall]) -> str:
        """Calls as the model writes them; any content parses back unchanged (a call marker
        inside content is written with a JSON escape, so it cannot close or open a call)."""
        return "\n".join(
            "<tool_call>\n"
            + dumps_escaped({"name": c.name, "arguments": c.arguments}, _MARKERS)
            + "\n</tool_call>"
            for c in calls
        )


def _call(body: str) -> FunctionCall:
    problem = argument_problem(body)
    if problem is not None:
        return FunctionCall("", body[:200], error=f"unusable tool call: {problem}")
    obj = loads_object(body) or repair_object(body)
    if obj is None or not isinstance(obj.get("name"), str) or not obj["name"]:
        return FunctionCall("", body, error=f"not a tool call object: {body[:80]!r}")
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):
        args = loads_object(args) or args
    return FunctionCall(obj["name"], args)
