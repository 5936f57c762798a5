"""Tool-call formats: the published ✿ parser's behaviour, Hermes robustness, render∘parse."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from memalpha.llm import FORMATS, FunctionCall
from memalpha.memory import Component, ToolCall, ToolExecutor, ToolRegistry

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
qwen, hermes = FORMATS["qwen"], FORMATS["hermes"]


def test_qwen_tool_block_is_the_published_text() -> None:
    fn = {"name": "t", "description": "Do it.", "parameters": {"type": "object", "properties": {}}}
    block = qwen.system_block([fn, {**fn, "name": "u"}])
    assert block.startswith(
        "# Tools\n\n## You have access to the following tools:\n\n### t\n\nt: Do it. Parameters: "
        '{"type": "object", "properties": {}} Format the arguments as a JSON object.\n\n### u\n\n'
    )
    assert (
        "✿FUNCTION✿: The name of tool 1, should be one of [t,u]\n✿ARGS✿: The input of tool 1\n"
        in block
    )
    assert block.endswith(
        "✿RETURN✿: Reply based on tool results. Images need to be rendered as ![](url)"
    )


def test_memalpha4b_transcript_builds_the_published_memory(memory) -> None:
    fixture = json.loads((FIXTURES / "memalpha4b_transcript.json").read_text("utf-8"))
    executor = ToolExecutor(ToolRegistry())
    calls, oks = [], []
    for text in fixture["generations"]:
        parsed = qwen.parse(text)
        results = executor.execute_all(
            memory, [ToolCall(c.name, c.arguments) for c in parsed.calls]
        )
        calls.append(len(results))
        oks.append(sum(r.ok for r in results))
    want = fixture["expected"]
    assert memory.core == want["core"]
    assert [e.content for e in memory.entries(Component.SEMANTIC)] == want["semantic"]
    assert [e.content for e in memory.entries(Component.EPISODIC)] == want["episodic"]
    assert calls == want["calls_per_chunk"] and oks == want["ok_per_chunk"]


def test_qwen_parse_cuts_imagined_results_and_keeps_reasoning() -> None:
    text = 'thinking\n✿FUNCTION✿: a\n✿ARGS✿: {"x": "1"}\n✿RESULT✿: ok\n✿FUNCTION✿: b\n✿ARGS✿: {}'
    out = qwen.parse(text)
    assert out.reasoning == "thinking" and [c.name for c in out.calls] == ["a"]


def test_qwen_truncated_args_are_left_for_repair_and_missing_args_is_an_error() -> None:
    out = qwen.parse('✿FUNCTION✿: a\n✿ARGS✿: {"x": "unterminated\n✿FUNCTION✿: b\n')
    assert out.calls[0].arguments == '{"x": "unterminated' and out.calls[0].error is None
    assert out.calls[1].name == "b" and out.calls[1].error


def test_hermes_parses_several_calls_with_text_around_them() -> None:
    text = (
        'Sure.\n<tool_call>\n{"name": "a", "arguments": {"k": "v"}}\n</tool_call>\nand\n'
        '<tool_call>{"name": "b", "arguments": "{\\"n\\": \\"1\\"}"}</tool_call> bye'
    )
    out = hermes.parse(text)
    assert out.reasoning == "Sure."
    assert out.calls == [FunctionCall("a", {"k": "v"}), FunctionCall("b", {"n": "1"})]


def test_hermes_truncated_last_call_is_repaired() -> None:
    out = hermes.parse('<tool_call>\n{"name": "a", "arguments": {"content": "half a sent')
    assert out.calls == [FunctionCall("a", {"content": "half a sent"})]


def test_hermes_unusable_block_is_an_error_call() -> None:
    (call,) = hermes.parse("<tool_call>no json here</tool_call>").calls
    assert call.error and call.name == ""


def test_hermes_block_lists_every_function() -> None:
    block = hermes.system_block(ToolRegistry().functions())
    assert block.count('{"type": "function"') == 3 and "<tool_call>" in block


safe_text = st.text(
    st.characters(blacklist_characters="✿", blacklist_categories=("Cs",)), max_size=40
)
calls = st.lists(
    st.builds(
        FunctionCall,
        st.sampled_from(["new_memory_insert", "memory_update", "x_y"]),
        st.dictionaries(
            st.sampled_from(["memory_type", "content", "memory_id"]), safe_text, max_size=3
        ),
    ),
    max_size=5,
)


@settings(max_examples=150, deadline=None)
@given(calls)
def test_render_then_parse_gives_the_calls_back(sequence) -> None:
    for fmt in (qwen, hermes):
        assert fmt.parse(fmt.render(sequence)).calls == sequence, fmt.name
