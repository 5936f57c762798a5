"""The qwen-agent `✿FUNCTION✿ / ✿ARGS✿` format that Memalpha-4B was trained on (qwen-agent
0.0.29, parallel calls, English; MEMALPHA_SPEC §2.2–2.3), parsed exactly as published."""

from __future__ import annotations

import json
import re
from typing import Any

from memalpha.llm.formats.base import FunctionCall, ParsedOutput, loads_object

FN_NAME, FN_ARGS, FN_RESULT, FN_EXIT = "✿FUNCTION✿", "✿ARGS✿", "✿RESULT✿", "✿RETURN✿"
# the published parser (agent.py::_parse_function_calls_from_text), DOTALL
_CALL = re.compile(
    r"✿FUNCTION✿:\s*([^\n]+)\s*✿ARGS✿:\s*([^✿]+?)(?=✿RESULT✿|✿RETURN✿|✿FUNCTION✿|$)", re.S
)
_NAME_ONLY = re.compile(r"✿FUNCTION✿:\s*([^\n]*)")


class QwenAgentFormat:
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
        """Calls in order. The text is cut at the first `✿RESULT✿:` (the model imagining tool
        results) as the published trainer does; arguments are trimmed to the last `}` (or
        closing fence) as published. A `✿FUNCTION✿` without `✿ARGS✿` becomes an error call."""
        text = text.split(f"{FN_RESULT}:", 1)[0]
        first = text.find(FN_NAME)
        reasoning = (text if first < 0 else text[:first]).strip()
        calls, covered = [], []
        for m in _CALL.finditer(text):
            covered.append(m.start())
            args = m.group(2).strip()
            if args.startswith("{") and "}" in args:
                args = args[: args.rfind("}") + 1]
            elif args.startswith("```") and args.count("```") >= 2:
                args = args[: args.rfind("```") + 3]
                args = re.sub(r"^```(?:json)?\s*|\s*```$", "", args)
            parsed = loads_object(args)
            calls.append(
                (
                    m.start(),
                    FunctionCall(m.group(1).strip(), parsed if parsed is not None else args),
                )
            )
        for m in _NAME_ONLY.finditer(text):
            if m.start() not in covered:
                calls.append(
                    (
                        m.start(),
                        FunctionCall(m.group(1).strip(), "", error=f"no {FN_ARGS} after {FN_NAME}"),
                    )
                )
        return ParsedOutput(reasoning, [c for _, c in sorted(calls, key=lambda x: x[0])])

    def render(self, calls: list[FunctionCall]) -> str:
        return "\n".join(
            f"{FN_NAME}: {c.name}\n{FN_ARGS}: "
            + (
                json.dumps(c.arguments, ensure_ascii=False)
                if isinstance(c.arguments, dict)
                else c.arguments
            )
            for c in calls
        )
