"""Tool-call formats: the published ✿ parser's behaviour, Hermes robustness, render∘parse."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
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


# any text at all: call markers, lone surrogates, control characters included
MARKERS = ["<tool_call>", "</tool_call>", "✿", "✿FUNCTION✿: ", "✿ARGS✿: ", "✿RESULT✿: "]
any_text = st.lists(
    st.one_of(st.characters(), st.sampled_from([*MARKERS, "}", "{", '"', "\\"])), max_size=40
).map("".join)
any_calls = st.lists(
    st.builds(
        FunctionCall,
        st.sampled_from(["new_memory_insert", "memory_update", "memory_delete"]),
        st.dictionaries(
            st.sampled_from(["memory_type", "content", "new_content", "memory_id"]),
            any_text,
            max_size=3,
        ),
    ),
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(any_calls)
def test_render_then_parse_is_exact_for_any_content(sequence) -> None:
    """Content holding `</tool_call>`, `<tool_call>` or `✿` came back changed (4 of 16
    samples), so the rule writer turned document text into memory operations."""
    for fmt in (qwen, hermes):
        assert fmt.parse(fmt.render(sequence)).calls == sequence, fmt.name


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(st.characters(), st.sampled_from([*MARKERS, "[", "{", '"'])), max_size=300
    ).map("".join)
)
def test_parse_never_raises_on_any_text(text) -> None:
    for fmt in (qwen, hermes):
        fmt.parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "<tool_call>" + "[" * 5000,
        "<tool_call>" + '{"a": ' * 5000,
        "✿FUNCTION✿: x\n✿ARGS✿: " + "[" * 5000,
        "✿FUNCTION✿: " * 4000,
        '<tool_call>{"name": "new_memory_insert", "arguments": {"content": "' + "x" * 1_000_000,
        '✿FUNCTION✿: new_memory_insert\n✿ARGS✿: {"content": "' + "x" * 1_000_000,
    ],
    ids=["deep-list", "deep-object", "deep-qwen", "repeated-markers", "1MB-hermes", "1MB-qwen"],
)
def test_hostile_outputs_parse_fast_into_failed_calls(text) -> None:
    """These raised RecursionError/ValueError, or took 6.8 s (quadratic ✿ regex) and 20 s
    (json_repair on 1 MB)."""
    for fmt in (qwen, hermes):
        began = time.perf_counter()
        calls = fmt.parse(text).calls
        assert time.perf_counter() - began < 0.5, fmt.name
        assert all(c.error or isinstance(c.arguments, (dict, str)) for c in calls)
