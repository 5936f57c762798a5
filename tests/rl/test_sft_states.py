"""Whose memory a warm start's transcripts show (`SFTConfig.teacher_states`): under 'policy'
the writer being trained writes every chunk and the selective teacher answers the prompts it
met (DAgger), on real generated conflict instances with the real rule writers. The writer
here is the store-everything rule writer, a stand-in for a policy whose memory differs from the
teacher's: a real SmolLM2 writer would take minutes; the tiny random model writes nothing."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from memalpha.agent import RuleWriterLLM
from memalpha.errors import ConfigError
from memalpha.llm import FORMATS
from memalpha.rl.config import SFTConfig
from memalpha.rl.sft import aim_weights, read_transcripts, run_sft, teacher_transcripts

SPEC = {
    "source": "synth_cr",
    "split": "train",
    "seed": 4,
    "instances": 2,
    "max_tokens": 512,
    "chunk_tokens": 128,
    "questions": 6,
    "facts": 6,
}


def _config(states: str) -> SFTConfig:
    return SFTConfig(
        policy={"model": "unused"},
        format="hermes",
        prompt="compact",
        memory={"view": {"mode": "retrieved", "k": 8}},
        teacher="selective",
        teacher_states=states,
        max_new_tokens=640,
        data={"train": [SPEC]},
    )


def _calls(response: str) -> list[dict]:
    """The response's calls as {"name", "arguments"}, read by the project's Hermes parser."""
    return [
        {"name": c.name, "arguments": c.arguments} for c in FORMATS["hermes"].parse(response).calls
    ]


def test_policy_states_show_the_writers_memory_answered_by_the_teacher(counter):
    own = teacher_transcripts(_config("teacher"), counter)
    store_all = RuleWriterLLM(FORMATS["hermes"])  # keeps every sentence, changes nothing
    events: list[dict] = []
    dagger = teacher_transcripts(_config("policy"), counter, store_all, events.append)
    assert len(dagger) == len(own) > 4  # one transcript per chunk either way
    # progress: one event per chunk written, counting up to the transcripts made
    assert [(e["done"], e["total"]) for e in events] == [
        (n, len(dagger)) for n in range(1, len(dagger) + 1)
    ]
    # the first chunk of an instance meets an empty memory whoever writes
    assert dagger[0] == own[0]
    # later prompts show the writer's memory: chatter the selective teacher drops is in it
    prompts = [json.dumps(m) for m, _ in dagger]
    assert sum(p != json.dumps(m) for p, (m, _) in zip(prompts, own, strict=True)) >= 2
    # and the teacher answers them: where the writer's memory holds a changed fact's old value,
    # it rewrites or deletes an entry that very prompt lists ("[s26] The job of ...")
    aimed = [
        call["arguments"]
        for prompt, (_, response) in zip(prompts, dagger, strict=True)
        for call in _calls(response)
        if call["name"] in ("memory_update", "memory_delete")
        and call["arguments"].get("memory_type") != "core_memory"
        and f"[{call['arguments'].get('memory_id')}]" in prompt  # as the memory view lists it
    ]
    assert aimed
    # none of those responses is the writer's own: store-everything never updates or deletes
    own_responses = store_all.generate([m for m, _ in dagger], _config("teacher").writer.sampling())
    assert not any(
        c["name"] in ("memory_update", "memory_delete")
        and c["arguments"].get("memory_type") != "core_memory"
        for g in own_responses
        for c in _calls(g.text)
    )


def test_policy_states_need_the_policy(counter):
    with pytest.raises(ConfigError, match="teacher_states: policy"):
        teacher_transcripts(_config("policy"), counter)


def test_run_sft_keeps_its_transcripts_and_reuses_them_step_for_step(counter, tiny_model, tmp_path):
    """The transcripts a run writes are kept in its folder, and a run that reads them back
    (`transcripts:`) trains on the very same examples: identical losses at every step. Under
    `teacher_states: policy` they take the better part of an hour to write."""

    def run(out: str, **settings) -> list[float]:
        cfg = _config("teacher").model_copy(
            update={
                "out_dir": tmp_path / out,
                "policy": _config("teacher").policy.model_copy(update={"model": str(tiny_model)}),
                "examples": 6,
                "batch_size": 3,
                "micro_batch_size": 3,
                "epochs": 1,
                **settings,
            }
        )
        run_sft(cfg)
        return [json.loads(line)["loss"] for line in (cfg.out_dir / "metrics.jsonl").open()]

    losses = run("written")
    kept = read_transcripts(tmp_path / "written" / "transcripts.jsonl")
    assert kept == teacher_transcripts(_config("teacher"), counter)
    assert run("reread", transcripts=tmp_path / "written" / "transcripts.jsonl") == losses
    assert not (tmp_path / "reread" / "transcripts.jsonl").exists()  # nothing new written


def test_aim_weights_fall_on_the_tokens_that_name_the_rewritten_entry(counter, smol_folder):
    """On the selective teacher's real transcripts and SmolLM2's real tokenizer: the weighted
    tokens spell exactly the memory_ids of the semantic updates and deletes, in order; core
    updates, inserts and the EOS weigh 1."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smol_folder)
    responses = [r for _, r in teacher_transcripts(_config("teacher"), counter)]
    aimed = [r for r in responses if '"memory_delete"' in r or '"memory_update"' in r]
    assert len(aimed) >= 2
    for response in responses:
        ids = tokenizer(response, add_special_tokens=False)["input_ids"]
        weights = aim_weights(tokenizer, FORMATS["hermes"], response, 20.0)
        assert len(weights) == len(ids) + 1 and weights[-1] == 1.0  # the EOS
        heavy = tokenizer.decode([i for i, w in zip(ids, weights, strict=False) if w == 20.0])
        want = [
            c["arguments"]["memory_id"]
            for c in _calls(response)
            if c["name"] in ("memory_update", "memory_delete")
            and c["arguments"]["memory_type"] != "core_memory"
        ]
        assert heavy == "".join(want)
        assert set(weights) <= {1.0, 20.0}
    assert any(20.0 in aim_weights(tokenizer, FORMATS["hermes"], r, 20.0) for r in aimed)


def test_aimed_repeats_add_the_update_and_delete_transcripts_again(counter, tiny_model):
    """`aimed_repeats: 3` keeps the examples that one pass picks, in the same order, and adds
    two more copies of each whose response updates or deletes (the first chunks' core sets
    among them), on the selective teacher's real transcripts."""
    from memalpha.rl.policy import Policy
    from memalpha.rl.sft import calls_aimed_tool, sft_examples

    transcripts = teacher_transcripts(_config("teacher"), counter)
    aimed = [r for _, r in transcripts if calls_aimed_tool(FORMATS["hermes"], r)]
    assert 0 < len(aimed) < len(transcripts)  # inserts-only chunks exist too
    assert any('"core_memory"' in r for r in aimed) and any('"memory_delete"' in r for r in aimed)
    base = _config("teacher").model_copy(
        update={"policy": _config("teacher").policy.model_copy(update={"model": str(tiny_model)})}
    )
    policy = Policy(base.policy, base.lora)
    once, dropped = sft_examples(base, policy, transcripts)
    thrice, dropped_too = sft_examples(
        base.model_copy(update={"aimed_repeats": 3}), policy, transcripts
    )
    aimed_targets = Counter(tuple(policy.response_ids(r)) for r in aimed)
    policy.close()
    assert dropped == dropped_too == 0
    assert thrice[: len(once)] == once
    extra = Counter(tuple(target) for _, target in thrice[len(once) :])
    assert extra == aimed_targets + aimed_targets  # each aimed response twice more
