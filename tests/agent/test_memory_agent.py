"""The memory agent: prompts, one generation per chunk, calls executed in order, lock-step
batches; driven by the rule writer (a real component) and, for exact edge cases, by a scripted
LLM (a fake, used only where the test needs exact model text)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memalpha.agent import (
    MemoryAgent,
    RuleWriterLLM,
    WriterConfig,
    build_agent,
    memorize_user_prompt,
    rule_calls,
)
from memalpha.agent.memory_agent import MAX_CALLS
from memalpha.agent.rule_writer import is_chatter
from memalpha.data import BuildConfig, build
from memalpha.llm import FORMATS, FunctionCall
from memalpha.llm.protocol import Generation, SamplingParams
from memalpha.memory import (
    CallStatus,
    Component,
    Memory,
    MemoryConfig,
    ToolExecutor,
    ToolRegistry,
    ViewConfig,
)
from memalpha.memory.content import content_problem


class ScriptedLLM:
    """Fake LLM returning fixed texts in order (exact model output for edge cases)."""

    name = "scripted"

    def __init__(self, texts: list[str]) -> None:
        self.texts = list(texts)
        self.seen: list[list[dict]] = []

    def generate(self, prompts, sampling):
        self.seen += prompts
        return [Generation(self.texts.pop(0)) for _ in prompts]

    def close(self) -> None:
        pass


class Driven:
    """An agent with the LLM and sampling that drive it (the agent itself holds neither)."""

    def __init__(self, agent: MemoryAgent, llm, sampling: SamplingParams) -> None:
        self.agent, self.llm, self.sampling = agent, llm, sampling

    def messages(self, memory, chunk):
        return self.agent.messages(memory, chunk)

    def memorize(self, memory, chunks):
        return self.agent.memorize(self.llm, self.sampling, memory, chunks)

    def memorize_many(self, memories, inputs):
        return self.agent.memorize_many(self.llm, self.sampling, memories, inputs)


def make_agent(llm, counter, fmt="hermes", **view) -> Driven:
    agent = MemoryAgent(
        FORMATS[fmt],
        ToolExecutor(ToolRegistry()),
        ViewConfig(**view),
        counter.count,
        budget=1000,
    )
    return Driven(agent, llm, SamplingParams(max_new_tokens=1000))


def test_prompt_is_system_view_plus_tools_and_the_published_user_prompt(counter, memory) -> None:
    messages = make_agent(RuleWriterLLM(FORMATS["hermes"]), counter).messages(memory, "CHUNK")
    assert messages[0]["content"].startswith("You are a personal assistant with a sophisticated")
    assert "<tools>" in messages[0]["content"]
    assert messages[1]["content"] == memorize_user_prompt("CHUNK", 1000)
    assert "Response limit is 800 tokens" in messages[1]["content"]


def test_calls_run_in_order_and_bad_calls_are_failed_results(counter, memory) -> None:
    text = (
        '<tool_call>{"name": "new_memory_insert", "arguments": {"memory_type": '
        '"semantic_memory", "content": "A"}}</tool_call>\n<tool_call>garbage</tool_call>\n'
        '<tool_call>{"name": "memory_delete", "arguments": {"memory_type": "semantic_memory", '
        '"memory_id": "s9"}}</tool_call>'
    )
    episode = make_agent(ScriptedLLM([text, "Done"]), counter).memorize(memory, ["c1", "c2"])
    first, second = episode.steps
    assert [r.status for r in first.results] == [CallStatus.OK, CallStatus.ERROR, CallStatus.ERROR]
    assert first.successes == [True, False, False] and second.results == []
    assert [e.content for e in memory.entries(Component.SEMANTIC)] == ["A"]


def test_the_next_prompt_shows_the_updated_memory(counter, memory) -> None:
    llm = ScriptedLLM(
        [
            '<tool_call>{"name": "new_memory_insert", "arguments": {"memory_type": '
            '"episodic_memory", "content": "At noon, X."}}</tool_call>',
            "Done",
        ]
    )
    make_agent(llm, counter).memorize(memory, ["c1", "c2"])
    assert "[e1] At noon, X." in llm.seen[1][0]["content"]


def test_lock_step_batches_equal_one_by_one_runs(counter) -> None:
    instances = build(
        BuildConfig(source="squad", instances=2, max_tokens=1500, chunk_tokens=300), counter
    ) + build(
        BuildConfig(source="trec_coarse", instances=1, max_tokens=800, chunk_tokens=300), counter
    )
    agent = make_agent(RuleWriterLLM(FORMATS["hermes"]), counter)
    together = [Memory(MemoryConfig(), counter) for _ in instances]
    agent.memorize_many(together, [i.chunks for i in instances])
    for inst, mem in zip(instances, together, strict=True):
        alone = Memory(MemoryConfig(), counter)
        agent.memorize(alone, inst.chunks)
        assert alone.snapshot() == mem.snapshot()


@pytest.mark.parametrize("fmt", ["hermes", "qwen"])
def test_rule_writer_stores_every_fact_in_either_format(counter, fmt) -> None:
    (inst,) = build(BuildConfig(source="squad", instances=1, max_tokens=1200), counter)
    memory = Memory(MemoryConfig(), counter)
    episode = make_agent(RuleWriterLLM(FORMATS[fmt]), counter, fmt=fmt).memorize(
        memory, inst.chunks
    )
    assert all(all(s.successes) for s in episode.steps)
    text = " ".join(e.content for e in memory.entries(Component.SEMANTIC))
    for q in inst.questions:
        assert any(a in text for a in q.answers)
    assert memory.core and memory.count(Component.EPISODIC) == len(inst.chunks)


def test_rule_writer_turns_labelled_lines_into_examples() -> None:
    calls = rule_calls(
        "Sentence: book a flight\nLabel: 3\nSentence: play jazz\nLabel: 1", first=False
    )
    assert [c.arguments["content"] for c in calls] == [
        "Sentence: book a flight; Label: 3",
        "Sentence: play jazz; Label: 1",
    ]


def test_rule_writer_baseline_stores_every_sentence_with_its_speaker() -> None:
    """A fair baseline: no per-chunk cap (it kept 40 sentences of a 2,048-token dialogue
    chunk, ~30 % of it) and every dialogue turn keeps who said it."""
    turns = [f"User: I ran race number {i} on a sunny day." for i in range(60)]
    chunk = (
        "[Dialogue between User and Assistant on 2024-01-05 10:00]\n<User>Hi there.\n"
        + "\n".join(turns)
        + "\nAssistant: Well done. You ran a lot."
    )
    contents = [c.arguments["content"] for c in rule_calls(chunk, first=False)]
    facts = [c for c in contents if not c.startswith("At ")]
    assert facts[0] == "User: I ran race number 0 on a sunny day."  # the <User> opener is chatter
    assert len([f for f in facts if f.startswith("User: I ran race")]) == 60
    assert facts[-2:] == ["Assistant: Well done.", "Assistant: You ran a lot."]
    # the SFT teacher keeps its cap: transcripts must fit the warm start's budget
    capped = rule_calls(chunk, first=False, max_sentences=40)
    assert len([c for c in capped if not c.arguments["content"].startswith("At ")]) == 40
    llm = RuleWriterLLM(FORMATS["hermes"], max_sentences=5)
    prompt = [
        {"role": "system", "content": ""},
        {"role": "user", "content": f"<new_chunk>\n{chunk}\n</new_chunk>"},
    ]
    (gen,) = llm.generate([prompt], SamplingParams())
    assert gen.text.count("<tool_call>") == 5 + 1  # five facts and the episodic entry


HOSTILE = ["<tool_call>", "</tool_call>", "✿FUNCTION✿: ", "✿ARGS✿: ", "[", "{", '"', "\ud800"]
CALL_TEXT = (
    '<tool_call>{"name": "new_memory_insert", "arguments": {"memory_type": "semantic_memory", '
    '"content": "'
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.characters(), st.sampled_from([*HOSTILE, CALL_TEXT])), max_size=200).map(
        "".join
    ),
    st.sampled_from(["hermes", "qwen"]),
)
def test_execute_is_total_on_any_model_output(counter, text, fmt) -> None:
    """Whatever the model writes, `execute` returns results (no exception escapes), every
    call is counted, and the memory keeps its invariants."""
    agent = build_agent(WriterConfig(format=fmt), counter)
    memory = Memory(MemoryConfig(), counter)
    step = agent.execute(memory, [], Generation(text), 0)
    assert all(r.ok or r.message for r in step.results)  # a failure always says why
    ids = [e.id for e in memory.entries(Component.SEMANTIC)]
    assert len(ids) == len(set(ids))
    assert all(content_problem(e.content) is None for e in memory.entries(Component.SEMANTIC))


def test_calls_beyond_the_limit_are_one_failed_call(counter) -> None:
    one = FORMATS["hermes"].render([FunctionCall("memory_delete", {"memory_type": "core_memory"})])
    agent = build_agent(WriterConfig(), counter)
    step = agent.execute(Memory(MemoryConfig(), counter), [], Generation("\n".join([one] * 500)), 0)
    assert len(step.results) == MAX_CALLS + 1
    assert "over the limit" in step.results[-1].message


@pytest.mark.parametrize("source", ["synth_cr", "conflict"])
def test_selective_teacher_drops_chatter_and_overwrites_changed_facts(counter, source) -> None:
    """On conflict instances (real SQuAD distractors or synthetic ones) the selective teacher
    uses every tool, keeps no chatter, holds the newest value of every fact whose old entry
    its prompt showed, and ends with a smaller memory than the store-everything rule writer."""
    cfg = BuildConfig(
        source=source, instances=4, max_tokens=512, chunk_tokens=128, facts=6, questions=6
    )
    instances = build(cfg, counter)
    sizes, names = {}, set()
    for selective in (False, True):
        memories = [Memory(MemoryConfig(), counter) for _ in instances]
        agent = make_agent(
            RuleWriterLLM(FORMATS["hermes"], selective=selective), counter, mode="retrieved", k=8
        )
        episodes = agent.memorize_many(memories, [i.chunks for i in instances])
        sizes[selective] = sum(m.total_tokens for m in memories)
        if not selective:
            continue
        for episode, memory, inst in zip(episodes, memories, instances, strict=True):
            assert all(all(s.successes) for s in episode.steps)
            names |= {
                c.name
                for s in episode.steps
                for c in FORMATS["hermes"].parse(s.generation.text).calls
            }
            contents = [e.content for e in memory.entries(Component.SEMANTIC)]
            assert not any(is_chatter(c) for c in contents)
            assert not any(c.startswith("Update:") for c in contents)
            for q in inst.questions:  # single-hop changes: the newest value is stored
                if q.qtype == "single_hop":
                    who_attr = q.question.removeprefix("What is the ").removesuffix(" now?")
                    held = [c for c in contents if c.startswith(f"The {who_attr} is ")]
                    assert f"The {who_attr} is {q.answers[0]}." in held
    assert {"new_memory_insert", "memory_update", "memory_delete"} <= names
    assert sizes[True] < 0.6 * sizes[False]
