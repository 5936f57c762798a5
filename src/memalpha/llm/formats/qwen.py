"""The qwen-agent `✿FUNCTION✿ / ✿ARGS✿` format that Memalpha-4B was trained on (qwen-agent
0.0.29, parallel calls, English; MEMALPHA_SPEC §2.2–2.3), parsed exactly as published."""

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
)

FN_NAME, FN_ARGS, FN_RESULT, FN_EXIT = "✿FUNCTION✿", "✿ARGS✿", "✿RESULT✿", "✿RETURN✿"


class QwenAgentFormat:
    """The published ✿FUNCTION✿ format. Generation stops at ✿RESULT✿: past it the model only
    imagines tool results, which the published trainer cut off before training."""

    stop_strings = (FN_RESULT,)
    name = "qwen"

    def system_block(self, functions: list[dict[str, Any]]) -> str:
        """The tool block qwen-agent appends to the system prompt (after a blank line)."""
        descs = "\n\n".join(
            f"### {f['name']}\n\n{f['name']}: {f['description']} Parameters: "
            f"{json.dumps(f['parameters'], ensure_ascii=False)} Format the arguments as a JSON "
            "object."
            for f in functions
        )
        names = ",".join(f["name"] for f in functions)
        return (
            "# Tools\n\n## You have access to the following tools:\n\n" + descs + "\n\n"
            "## Insert the following command in your reply when you need to call N tools in "
            f"parallel:\n\n{FN_NAME}: The name of tool 1, should be one of [{names}]\n"
            f"{FN_ARGS}: The input of tool 1\n{FN_NAME}: The name of tool 2\n{FN_ARGS}: The input "
            f"of tool 2\n...\n{FN_NAME}: The name of tool N\n{FN_ARGS}: The input of tool N\n"
            f"{FN_RESULT}: The result of tool 1\n{FN_RESULT}: The result of tool 2\n...\n"
            f"{FN_RESULT}: The result of tool N\n{FN_EXIT}: Reply based on tool results. Images "
            "need to be rendered as ![](url)"
        )

    def parse(self, text: str) -> ParsedOutput:
        """Calls in order, as the published regex reads them, in one linear pass (the regex
        is quadratic on a line of repeated `✿FUNCTION✿:`). The text is cut at the first
        `✿RESULT✿:` (the model imagining tool results) as the published trainer does;
        arguments are trimmed to the last `}` (or closing fence) as published. A
        `✿FUNCTION✿` without usable `✿ARGS✿` becomes an error call."""
        text = text.split(f"{FN_RESULT}:", 1)[0]
        head, *segments = text.split(FN_NAME)
        calls = [_segment_call(seg[1:]) for seg in segments if seg.startswith(":")]
        return ParsedOutput(head.strip(), calls)

    def render(self, calls: list[FunctionCall]) -> str:
        """Calls as Memalpha-4B writes them; any dict arguments parse back unchanged (a `✿` in
        content is a JSON escape, so it cannot end the arguments or start a call)."""
        return "\n".join(
            f"{FN_NAME}: {c.name}\n{FN_ARGS}: "
            + (dumps_escaped(c.arguments, ("✿",)) if isinstance(c.arguments, dict) else c.arguments)
            for c in calls
        )


def _segment_call(rest: str) -> FunctionCall:
    """The call in the text after one `✿FUNCTION✿:` (up to the next one or the end), read as
    the published `✿FUNCTION✿:\\s*([^\\n]+)\\s*✿ARGS✿:\\s*([^✿]+?)(?=✿RESULT✿|✿RETURN✿|…|$)`."""
    at = rest.find(f"{FN_ARGS}:")
    name = rest[:at].strip() if at >= 0 else ""
    if at < 0 or not name or "\n" in name:
        first_line = rest.lstrip().split("\n", 1)[0].strip()
        return FunctionCall(first_line, "", error=f"no {FN_ARGS} after {FN_NAME}")
    region = rest[at + len(FN_ARGS) + 1 :]
    stop = region.find("✿")
    args = (region if stop < 0 else region[:stop]).strip()
    if not args or (stop >= 0 and not region.startswith((FN_RESULT, FN_EXIT), stop)):
        return FunctionCall(name, "", error=f"no {FN_ARGS} after {FN_NAME}")
    problem = argument_problem(args)
    if problem is not None:
        return FunctionCall(name, args[:200], error=f"unusable tool call: {problem}")
    if args.startswith("{") and "}" in args:
        args = args[: args.rfind("}") + 1]
    elif args.startswith("```") and args.count("```") >= 2:
        args = args[: args.rfind("```") + 3]
        args = re.sub(r"^```(?:json)?\s*|\s*```$", "", args)
    parsed = loads_object(args)
    return FunctionCall(name, parsed if parsed is not None else args)
