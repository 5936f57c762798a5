"""The writer's memory view: byte-exact with the published memorize prompt (SPEC §1.4)."""

from __future__ import annotations

import pytest

from memalpha.errors import LimitExceededError
from memalpha.memory import Component, ViewConfig, fit_k, render_for_config, render_memorize_prompt

PUBLISHED_HEAD = (
    "You are a personal assistant with a sophisticated memory system. Your primary task is to "
    "carefully analyze, understand, and memorize the information provided by the user.\n\n"
    "MEMORIZING MODE INSTRUCTIONS:\n"
    "- Read and understand all information shared by the user\n"
    "- Identify key facts, concepts, and relationships\n"
    "- Store important information using the appropriate memory type:\n"
    "* core_memory: Information stored so far (stored as a compact paragraph)\n"
    "* semantic_memory: General knowledge, factual or conceptual information\n"
    "* episodic_memory: Specific personal experiences or events with timestamp (mandatory), "
    "place, or context\n"
    "- Use these cues to decide memory type based on content\n\n"
    "CURRENT MEMORY STATE:\n"
)
PUBLISHED_TAIL = (
    "\n\nFocus on understanding and memorizing. Use memory tools actively to store new "
    "information.\nSince this is the memorization process, if you think all the information has "
    "been memorized, you can respond with 'Done'. This information will not be seen by the user."
    "\nMeanwhile, you will be queried only once, so make sure to call all the memory insertion "
    "functions in one turn."
)


def test_recent_view_is_byte_exact_with_published_prompt(memory) -> None:
    memory.update(Component.CORE, "Ada is a biologist.")
    for i in range(7):
        memory.insert(Component.SEMANTIC, f"fact {i}")
    state = (
        "<core_memory>\nAda is a biologist.\n</core_memory>\n\n"
        "<semantic_memory> (Only show the most recent 5 out of 7 memories)\n"
        "[s3] fact 2\n[s4] fact 3\n[s5] fact 4\n[s6] fact 5\n[s7] fact 6\n</semantic_memory>\n\n"
        "<episodic_memory> (Only show the most recent 0 out of 0 memories)\nEmpty.\n"
        "</episodic_memory>"
    )
    assert render_memorize_prompt(memory, k=5) == PUBLISHED_HEAD + state + PUBLISHED_TAIL


def test_disabled_component_leaves_the_view(make_memory) -> None:
    memory = make_memory(disabled=["episodic"])
    text = render_memorize_prompt(memory)
    assert "episodic" not in text
    assert "* semantic_memory" in text and "<semantic_memory>" in text


def test_retrieved_view_shows_entries_relevant_to_the_chunk(memory) -> None:
    for fact in [
        "Lisbon is in Portugal.",
        "Whales eat krill.",
        "Tea comes from leaves.",
        "Portugal borders Spain.",
        "Krill are small crustaceans.",
    ]:
        memory.insert(Component.SEMANTIC, fact)
    text = render_memorize_prompt(
        memory, mode="retrieved", k=2, chunk="What do whales and krill do?"
    )
    assert "(Only show the 2 out of 5 memories most relevant to the new chunk)" in text
    assert "[s2] Whales eat krill.\n[s5] Krill are small crustaceans." in text
    assert "Lisbon" not in text


def shown(memory, mode: str, k: int, chunk: str) -> list[str]:
    """The semantic lines the writer's prompt shows."""
    text = render_memorize_prompt(memory, mode=mode, k=k, chunk=chunk)
    return text.split("<semantic_memory>")[1].split("</semantic_memory>")[0].splitlines()[1:]


def test_sentence_view_shows_the_entry_each_sentence_states(memory) -> None:
    # three attributes of three people, one of a fourth: against the whole chunk BM25 ranks the
    # entries sharing its rarer words (home city, Porto) above two of those its sentences state
    memory.insert(Component.SEMANTIC, "The pet of Sami Zeller is rabbit.")
    for person in ["Uma Varga", "Kira Costa", "Nils Eriksen"]:
        for attribute, value in [("job", "florist"), ("pet", "rabbit"), ("home city", "Porto")]:
            memory.insert(Component.SEMANTIC, f"The {attribute} of {person} is {value}.")
    chunk = (
        "The job of Uma Varga is florist. The pet of Kira Costa is rabbit. A van stopped "
        "outside. The home city of Nils Eriksen is Porto. The pet of Sami Zeller is iguana."
    )
    by_sentence = shown(memory, "sentences", 4, chunk)
    assert by_sentence == [  # memory order
        "[s1] The pet of Sami Zeller is rabbit.",
        "[s2] The job of Uma Varga is florist.",
        "[s6] The pet of Kira Costa is rabbit.",
        "[s10] The home city of Nils Eriksen is Porto.",
    ]
    by_chunk = shown(memory, "retrieved", 4, chunk)
    assert len(by_chunk) == 4 and not {by_sentence[1], by_sentence[2]} & set(by_chunk)
    header = "(Only show the 4 out of 10 memories most relevant to the new chunk)"
    assert header in render_memorize_prompt(memory, mode="sentences", k=4, chunk=chunk)


def test_sentence_view_takes_each_sentences_best_entry_before_any_second(memory) -> None:
    facts = ["Whales eat krill.", "Whales sing songs.", "Whales migrate.", "Tea comes from leaves."]
    for fact in facts:
        memory.insert(Component.SEMANTIC, fact)
    chunk = "Whales eat krill, sing songs and migrate; whales sing songs. The tea was cold."
    assert shown(memory, "retrieved", 2, chunk) == [f"[s1] {facts[0]}", f"[s2] {facts[1]}"]
    # the whale sentence's best entry, then the tea sentence's (weaker than the whales' second)
    assert shown(memory, "sentences", 2, chunk) == [f"[s2] {facts[1]}", f"[s4] {facts[3]}"]


def test_fit_k_halves_k_like_the_published_trainer(memory, counter) -> None:
    for i in range(6):
        memory.insert(Component.SEMANTIC, f"a fairly long fact number {i} " * 10)
    used = []

    def render(k: int) -> str:
        used.append(k)
        return render_memorize_prompt(memory, k=k)

    budget = counter.count(render_memorize_prompt(memory, k=1))
    _, k = fit_k(render, counter.count, budget, 5)
    assert used == [5, 2, 1] and k == 1


def test_fit_k_fails_clearly_when_even_k0_is_over_budget(memory, counter) -> None:
    with pytest.raises(LimitExceededError, match="no entries shown"):
        fit_k(lambda k: render_memorize_prompt(memory, k=k), counter.count, 10, 5)


def test_render_for_config_uses_the_view_config(memory, counter) -> None:
    for i in range(4):
        memory.insert(Component.EPISODIC, f"event {i}")
    text = render_for_config(memory, ViewConfig(k=2), counter.count)
    assert "(Only show the most recent 2 out of 4 memories)\n[e3] event 2\n[e4] event 3" in text


def test_ids_after_put_each_id_behind_its_content_and_change_nothing_else(memory, counter) -> None:
    for fact in ["Whales eat krill.", "Tea comes from leaves.", "Krill are small crustaceans."]:
        memory.insert(Component.SEMANTIC, fact)
    memory.insert(Component.EPISODIC, "At noon, the user swam.")
    chunk = "What do whales and krill do? Who swam at noon?"
    before = render_for_config(memory, ViewConfig(mode="retrieved", k=2), counter.count, chunk)
    after = render_for_config(
        memory, ViewConfig(mode="retrieved", k=2, ids="after"), counter.count, chunk
    )
    assert "[s1] Whales eat krill.\n[s3] Krill are small crustaceans." in before
    assert "Whales eat krill. [s1]\nKrill are small crustaceans. [s3]" in after
    assert "At noon, the user swam. [e1]" in after
    swapped = before.replace("[s1] Whales eat krill.", "Whales eat krill. [s1]")
    swapped = swapped.replace(
        "[s3] Krill are small crustaceans.", "Krill are small crustaceans. [s3]"
    )
    assert after == swapped.replace("[e1] At noon, the user swam.", "At noon, the user swam. [e1]")
