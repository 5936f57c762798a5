"""verl integration, against verl 0.9.1 itself (installed by the README's test command): the
agent loop on verl's `AgentLoopBase`, the reward function on what verl's reward loop passes,
the advantage step of the registered V1 trainer, and the launcher's config composed with
verl's own `ppo_trainer`. The rollout server behind the agent loop is local (SmolLM2 through
`TransformersLLM.generate_ids`) because verl's vLLM/SGLang servers need GPUs; what only a GPU
run can show is listed in docs/verl.md."""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import replace
from importlib.resources import files
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from memalpha.agent import RuleWriterLLM, build_agent
from memalpha.config import load_config
from memalpha.data import Instance
from memalpha.errors import ConfigError, DataError
from memalpha.llm import FORMATS, SamplingParams
from memalpha.memory import Memory
from memalpha.reader import build_judge, build_reader
from memalpha.reward import RewardTerms
from memalpha.rl import GroupBy, TrainConfig, group_advantages, group_keys
from memalpha.rl.verl import (
    SampleKey,
    Writer,
    chunk_advantages,
    compute_score,
    config_from_json,
    config_json,
    from_record,
    to_record,
    write_verl_parquet,
)
from memalpha.rl.verl.agent_loop import chunk_outputs
from memalpha.rl.verl.reward_fn import (
    EPISODE_KEY,
    INSTANCE_KEY,
    TERMS_KEY,
    decode_terms,
    encode_terms,
)
from memalpha.rl.verl.samples import CHUNK_KEY
from memalpha.rollout import Scoring, rollout, to_samples

# A cap on entry length makes some of the rule writer's inserts fail, so chunks of one episode
# score differently (r2) on any data, the package's sample included, and the advantages compared
# below are not all 0; evidence credit sends r1 through verl's reward as the local trainer's.
CONFIG = """
prompt: compact
memory: {max_entry_tokens: 30}
rollout: {max_new_tokens: 512}
reward: {beta: 0.2, gamma: 0.5, qa_credit: evidence}
reader: {kind: extractive, k: 20}
judge: {kind: rule}
"""


@pytest.fixture(scope="module")
def config_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("verl") / "memalpha.yaml"
    path.write_text(CONFIG, "utf-8")
    return path


@pytest.fixture(scope="module")
def instances(real_instances):
    """Real instances of at least 3 chunks. The package's own sample (what a checkout without
    ../shared/data builds from) has a short SQuAD article among them, which is left out."""
    built = real_instances(
        ["squad", "trec_coarse"], instances=3, max_tokens=200, chunk_tokens=64, questions=4
    )
    out = [i for i in built if len(i.chunks) >= 3]
    assert len(out) >= 4 and {i.data_source for i in out} == {"squad", "trec_coarse"}
    return out


def _rule_generate():
    """A rollout server stand-in for the verl-free tests: the rule writer (no LLM), its text's
    UTF-8 bytes as the sampled ids (a byte-level tokenizer), each with log-prob 0."""
    rule = RuleWriterLLM(FORMATS["hermes"])

    async def generate(messages, index):
        (generation,) = rule.generate([messages], SamplingParams(max_new_tokens=512))
        ids = tuple(generation.text.encode())
        generation = replace(generation, token_ids=ids, logprobs=(0.0,) * len(ids))
        return [index] * len(messages), generation

    return generate


def _extra_info(instance: Instance, record: dict) -> dict:
    """What verl hands the reward function: the dataset's extra_info with the last output's
    extra_fields merged in, after a JSON round trip (Ray serialises it)."""
    return {INSTANCE_KEY: instance.model_dump_json(), EPISODE_KEY: json.loads(json.dumps(record))}


def _shipped(path):
    """The config as the launcher ships it, and the writer a worker builds from it."""
    text = config_json(path)
    return text, Writer.from_json(text)


def _verl_trajectories(text, writer, instances, group_size):
    """Each instance memorized `group_size` times by the verl writer, cut into agent-loop
    outputs and scored as verl's reward loop does: compute_score on the last output, whose
    result verl copies to every output of the trajectory. {(instance, session): outputs}."""
    out = {}
    for i, instance in enumerate(instances):
        for session in range(group_size):
            trajectory, prompts = asyncio.run(writer.run(instance, _rule_generate()))
            outputs = chunk_outputs(trajectory, prompts, [0.0] * len(prompts))
            info = _extra_info(instance, outputs[-1].extra_fields[EPISODE_KEY])
            result = compute_score(instance.data_source, "", "", info, text)
            for output in outputs:
                output.extra_fields["reward_extra_info"] = result
            out[i, session] = outputs
    return out


def test_every_chunk_sample_gets_the_local_trainers_reward_and_advantage(config_path, instances):
    """The same episodes through the local trainer (rollout → to_samples → group_advantages)
    and through verl's shapes (agent-loop outputs → compute_score → chunk_advantages, in a
    shuffled batch with padding samples, as verl's balancing leaves it)."""
    text, writer = _shipped(config_path)
    cfg, group_size = writer.cfg, 3
    reader, _ = build_reader(cfg.reader, writer.counter)
    judge, _ = build_judge(cfg.judge)
    scoring = Scoring(reader, judge, cfg.reward, writer.counter)
    agent = build_agent(cfg.writer, writer.counter)
    rule = RuleWriterLLM(FORMATS["hermes"])
    done = rollout(agent, rule, cfg.writer.sampling(), instances, group_size, cfg.memory, scoring)
    local = to_samples(done.trajectories, done.scores)
    session_of = [j % group_size for j in range(len(done.trajectories))]
    verl = _verl_trajectories(text, writer, instances, group_size)
    assert len(local) == sum(len(o) for o in verl.values())  # every chunk is a sample

    rows = [
        (f"uid{i}_{g}_{k}", False, o.extra_fields)
        for (i, g), outs in verl.items()
        for k, o in enumerate(outs)
    ]
    rows += [(f"pad{n}_{n}_0", True, rows[0][2]) for n in range(2)]
    random.Random(0).shuffle(rows)
    keys, padding, fields = (list(col) for col in zip(*rows, strict=True))
    by_key = {}
    for group_by in GroupBy:
        got = chunk_advantages(keys, padding, fields, group_by)
        scores = [s.terms.total for s in local]
        want = group_advantages(
            scores, group_keys([s.group for s in local], [s.chunk_index for s in local], group_by)
        )
        for s, score, advantage in zip(local, scores, want, strict=True):
            by_key[f"uid{s.group}_{session_of[s.trajectory]}_{s.chunk_index}"] = (score, advantage)
        for key, pad, score, advantage in zip(
            keys, padding, got.scores, got.advantages, strict=True
        ):
            assert (score, advantage) == (
                (0.0, 0.0) if pad else pytest.approx(by_key[key], abs=1e-6)
            )
        assert (got.samples, got.trajectory_chunks) == (len(local), len(local))
    assert any(
        abs(a) > 0.1 for a in chunk_advantages(keys, padding, fields, GroupBy.INSTANCE).advantages
    )


@settings(max_examples=25, deadline=None)
@given(
    totals=st.lists(
        st.lists(st.floats(-2, 3, allow_nan=False), min_size=1, max_size=4), min_size=2, max_size=6
    ),
    group_by=st.sampled_from(list(GroupBy)),
)
def test_chunk_advantages_equal_memalphas_for_any_rewards(totals, group_by):
    """Synthetic batches: trajectory j belongs to instance j % 2; its chunk rewards are drawn."""
    keys, fields, scores, groups, chunk_ids = [], [], [], [], []
    for j, chunks in enumerate(totals):
        terms = [RewardTerms(t, 0, 0, 0, 0, 0, 0, t) for t in chunks]
        info = {"reward_extra_info": {TERMS_KEY: encode_terms(terms)}}
        for k, total in enumerate(chunks):
            keys.append(f"u{j % 2}_{j}_{k}")
            fields.append({**info, CHUNK_KEY: k})
            scores.append(total)
            groups.append(f"u{j % 2}")
            chunk_ids.append(k)
    got = chunk_advantages(keys, [False] * len(keys), fields, group_by)
    want = group_advantages(scores, group_keys(groups, chunk_ids, group_by))
    assert got.scores == scores
    assert got.advantages == pytest.approx(want, abs=1e-6)


def test_verl_rewards_of_every_chunk_are_the_local_trainers_terms(config_path, instances):
    text, writer = _shipped(config_path)
    cfg = writer.cfg
    reader, _ = build_reader(cfg.reader, writer.counter)
    judge, _ = build_judge(cfg.judge)
    scoring = Scoring(reader, judge, cfg.reward, writer.counter)
    local_agent = build_agent(cfg.writer, writer.counter)
    rule = RuleWriterLLM(FORMATS["hermes"])
    answered = []
    for instance in instances:
        trajectory, prompts = asyncio.run(writer.run(instance, _rule_generate()))
        assert len(prompts) == len(trajectory.episode.steps) == len(instance.chunks)
        done = rollout(local_agent, rule, cfg.writer.sampling(), [instance], 1, cfg.memory, scoring)
        (local,), (local_score,) = done.trajectories, done.scores
        assert trajectory.memory.snapshot() == local.memory.snapshot()
        info = _extra_info(instance, to_record(trajectory).model_dump(mode="json"))
        got = compute_score(instance.data_source, "", "", info, text)
        assert decode_terms(got[TERMS_KEY]) == list(local_score.terms)
        assert got["score"] == local_score.terms[-1].total
        assert got["r1_qa"] == local_score.qa
        n = len(local_score.terms)
        assert got["r2_calls"] == pytest.approx(sum(t.r2 for t in local_score.terms) / n)
        assert got["gamma_r4"] == pytest.approx(sum(t.gamma_r4 for t in local_score.terms) / n)
        answered.append(local_score.qa)
        rebuilt = from_record(to_record(trajectory), instance, cfg, writer.counter)
        assert rebuilt.memory.snapshot() == trajectory.memory.snapshot()
    # the rule writer's memories answer some questions (not every instance's: the package's
    # sample, what a checkout without ../shared builds from, has a TREC one that answers none)
    assert max(answered) > 0


def test_reward_function_rejects_samples_it_cannot_score(config_path, instances):
    instance = instances[0]
    text, writer = _shipped(config_path)
    trajectory, _ = asyncio.run(writer.run(instance, _rule_generate()))
    info = _extra_info(instance, to_record(trajectory).model_dump(mode="json"))
    with pytest.raises(ConfigError, match="no memalpha config"):
        compute_score("squad", "", "", info)
    with pytest.raises(DataError, match="memalpha_episode"):
        compute_score("squad", "", "", {INSTANCE_KEY: info[INSTANCE_KEY]}, text)
    other = _extra_info(instances[1], to_record(trajectory).model_dump(mode="json"))
    other[EPISODE_KEY]["chunks"] = other[EPISODE_KEY]["chunks"][:1]
    with pytest.raises(DataError, match="does not match"):
        compute_score("squad", "", "", other, text)
    info[EPISODE_KEY]["chunks"][0]["calls"] = "not a list"
    with pytest.raises(DataError, match="malformed"):
        compute_score("squad", "", "", info, text)


def test_samples_refuse_what_the_memalpha_loop_did_not_write():
    with pytest.raises(DataError, match="is not"):
        SampleKey.parse("nounderscores")
    fields = {"reward_extra_info": {"score": 1.0}, CHUNK_KEY: 0}
    with pytest.raises(DataError, match="carries no memalpha chunk rewards"):
        chunk_advantages(["u_0_0"], [False], [fields], GroupBy.INSTANCE)
    terms = encode_terms([RewardTerms(1, 0, 0, 0, 0, 0, 0, 1)])
    wrong_chunk = {"reward_extra_info": {TERMS_KEY: terms}, CHUNK_KEY: 1}
    with pytest.raises(DataError, match="carries no memalpha chunk rewards"):
        chunk_advantages(["u_0_0"], [False], [wrong_chunk], GroupBy.INSTANCE)


def test_the_config_ships_as_validated_json(config_path, tmp_path):
    text = config_json(config_path)
    assert config_from_json(text) == load_config(TrainConfig, config_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text(CONFIG.replace("prompt: compact", "prompt: compact\nout_dir: runs/${x}"))
    with pytest.raises(ConfigError, match="OmegaConf"):
        config_json(bad)
    with pytest.raises(ConfigError, match="invalid memalpha config"):
        config_from_json('{"reward": {"beta": "much"}}')


def test_writer_refuses_the_local_only_greedy_anchor(tmp_path):
    path = tmp_path / "anchored.yaml"
    path.write_text(CONFIG.replace("{max_new_tokens: 512}", "{greedy_anchor: true}"), "utf-8")
    with pytest.raises(ConfigError, match="greedy_anchor is a local-trainer option"):
        Writer.from_json(config_json(path))


def test_writer_refuses_the_local_only_id_offset(tmp_path):
    path = tmp_path / "offset.yaml"
    path.write_text(CONFIG.replace("{max_new_tokens: 512}", "{max_id_offset: 300}"), "utf-8")
    with pytest.raises(ConfigError, match="max_id_offset is a local-trainer option"):
        Writer.from_json(config_json(path))


def test_verl_parquet_rows_carry_whole_instances(tmp_path, instances):
    path = tmp_path / "verl" / "train.parquet"
    assert write_verl_parquet(instances, path) == len(instances)
    rows = pq.read_table(path).to_pylist()
    assert [Instance.model_validate_json(r["extra_info"]["instance"]) for r in rows] == instances
    assert {r["agent_name"] for r in rows} == {"memalpha_writer"}
    assert all(r["prompt"][0]["role"] == "user" for r in rows)


# --- against verl itself ---------------------------------------------------------------


@pytest.fixture(scope="module")
def smol(smol_folder):
    from memalpha.llm.local import TransformersLLM

    return TransformersLLM(smol_folder)


class LocalRolloutServer:
    """verl's `LLMServerClient.generate` contract (token ids in, `TokenOutput` out) served by a
    local transformers model, standing in for the vLLM/SGLang servers that need GPUs. Keeps
    every request and every answer."""

    def __init__(self, llm):
        self.llm, self.requests, self.answers = llm, [], []

    async def generate(self, request_id, *, prompt_ids, sampling_params, **_):
        from verl.workers.rollout.replica import TokenOutput

        self.requests.append((list(prompt_ids), dict(sampling_params)))
        sampling = SamplingParams(
            temperature=sampling_params.get("temperature", 1.0),
            max_new_tokens=sampling_params["max_tokens"],
            logprobs=bool(sampling_params.get("logprobs")),
            seed=0,
        )
        (gen,) = self.llm.generate_ids([list(prompt_ids)], sampling)
        self.answers.append(gen)
        return TokenOutput(token_ids=list(gen.token_ids), log_probs=gen.logprobs)


def _loop(config_text, smol, tmp_path, instance, prompt_length=4096):
    """verl's dataset row for `instance` and our loop, instantiated from the packaged registry
    entry as verl's agent-loop worker does, with the config the launcher ships."""
    import hydra
    from omegaconf import OmegaConf
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap, ToolListWrap
    from verl.utils.dataset.rl_dataset import RLHFDataset

    data = tmp_path / "train.parquet"
    write_verl_parquet([instance], data)
    data_config = OmegaConf.create(
        {"max_prompt_length": 4096, "return_raw_chat": True, "cache_dir": str(tmp_path)}
    )
    row = RLHFDataset(data_files=[str(data)], tokenizer=smol.tokenizer, config=data_config)[0]
    config = OmegaConf.create(
        {
            "actor_rollout_ref": {
                "rollout": {"prompt_length": prompt_length, "response_length": 48}
            },
            "data": {"apply_chat_template_kwargs": {}},
            "memalpha": {"config": config_text},
        }
    )
    registry = files("memalpha.rl.verl").joinpath("agent_loops.yaml")
    (entry,) = OmegaConf.load(str(registry))
    assert entry.name == row["agent_name"] == "memalpha_writer"
    server = LocalRolloutServer(smol)
    loop = hydra.utils.instantiate(
        config=entry,
        trainer_config=DictConfigWrap(config=config),
        server_manager=server,
        tokenizer=smol.tokenizer,
        processor=None,
        hf_model_type="llama",
        dataset_cls=RLHFDataset,
        data_config=DictConfigWrap(config.data),
        tools=ToolListWrap([]),
    )
    kwargs = {k: v for k, v in row.items() if k not in ("dummy_tensor", "agent_name")}
    return row, loop, server, kwargs


def test_agent_loop_returns_one_exact_sample_per_chunk(config_path, instances, smol, tmp_path):
    """verl's dataset reads our parquet, verl's registry instantiates our loop, the loop
    memorizes every chunk through the rollout-server interface and returns K outputs for K
    chunks, each that chunk's exact prompt, sampled ids and log-probs; the reward function
    scores the last as verl's reward loop would."""
    text = config_json(config_path)
    instance = instances[0]
    row, loop, server, kwargs = _loop(text, smol, tmp_path, instance)
    # verl runs agent loops on the worker's event loop, the one the loop object captured
    outs = loop.loop.run_until_complete(loop.run({"temperature": 0.0, "logprobs": True}, **kwargs))

    k = len(instance.chunks)
    assert len(outs) == len(server.requests) == k
    assert all(params["max_tokens"] == 48 for _, params in server.requests)
    writer = loop.writer
    empty = Memory(writer.cfg.memory, writer.counter)
    text0 = smol.render(writer.agent.messages(empty, instance.chunks[0]))
    assert server.requests[0][0] == smol.tokenizer(text0, add_special_tokens=False)["input_ids"]
    for index, (out, (prompt, _), answer) in enumerate(
        zip(outs, server.requests, server.answers, strict=True)
    ):
        assert out.prompt_ids == prompt
        assert out.response_ids == list(answer.token_ids)
        assert out.response_logprobs == list(answer.logprobs)
        assert out.response_mask == [1] * len(out.response_ids)
        assert out.extra_fields[CHUNK_KEY] == index
        assert (EPISODE_KEY in out.extra_fields) == (index == k - 1)
    # later chunks see the memory the earlier ones wrote: the prompts differ
    assert len({tuple(p) for p, _ in server.requests}) == k
    score = compute_score(
        row["data_source"], "", "", {**row["extra_info"], **outs[-1].extra_fields}, text
    )
    terms = decode_terms(score[TERMS_KEY])
    assert len(terms) == k
    assert score["score"] == terms[-1].total


def test_a_prompt_over_the_rollout_prompt_length_is_an_error_with_the_numbers(
    config_path, instances, smol, tmp_path
):
    row, loop, server, kwargs = _loop(config_json(config_path), smol, tmp_path, instances[0], 64)
    with pytest.raises(DataError, match=r"chunk 0: the writer's prompt is \d+ tokens .* 64"):
        loop.loop.run_until_complete(loop.run({"temperature": 0.0}, **kwargs))
    assert server.requests == []  # refused before anything was generated


class LoopingServer(LocalRolloutServer):
    """FAKE rollout server that answers every chunk with the same scripted looping tool call
    (verl's servers decode to the budget; getting a real model to loop on demand is not
    reliable). Its ids are SmolLM2's tokens of that text, each with log-prob -0.5."""

    SENTENCE = "IOC stands for the International Olympic Committee; Label: N. "

    async def generate(self, request_id, *, prompt_ids, sampling_params, **_):
        from verl.workers.rollout.replica import TokenOutput

        head = '<tool_call>\n{"name": "new_memory_insert", "arguments": {"memory_type": '
        text = head + '"semantic", "content": "' + self.SENTENCE * 12
        ids = self.llm.tokenizer(text, add_special_tokens=False)["input_ids"]
        ids = ids[: sampling_params["max_tokens"]]
        self.requests.append((list(prompt_ids), dict(sampling_params)))
        self.answers.append(ids)
        return TokenOutput(token_ids=ids, log_probs=[-0.5] * len(ids))


def test_agent_loop_trains_on_a_looping_answer_cut_to_its_first_copy(
    config_path, instances, smol, tmp_path
):
    text = config_json(config_path)
    looping = json.dumps({**json.loads(text), "loop_stop": {"min_span": 8}})
    _, loop, _, kwargs = _loop(looping, smol, tmp_path, instances[0])
    loop.server_manager = server = LoopingServer(smol)
    loop.response_length = 512
    outs = loop.loop.run_until_complete(loop.run({"temperature": 0.0}, **kwargs))
    assert len(outs) == len(instances[0].chunks)
    for out, answer in zip(outs, server.answers, strict=True):
        assert len(out.response_ids) < len(answer) // 4  # 12 copies decoded, one kept
        assert out.response_ids == answer[: len(out.response_ids)]
        assert out.response_logprobs == [-0.5] * len(out.response_ids)
        kept = smol.tokenizer.decode(out.response_ids)
        assert kept.count("International Olympic Committee") == 1


class InMemoryTransferQueue:
    """FAKE of TransferQueue's kv_batch_get/kv_batch_put: TransferQueue's Ray-backed store did
    not come up on this 2-core machine (tq.init() hung for 5 minutes), so it cannot run in the
    suite. Same layout as TransferQueue returns: per-sample tensors as jagged nested tensors,
    the rest as a NonTensorStack (built with verl's own `list_of_dict_to_tensordict`)."""

    def __init__(self, keys, fields):
        from verl.utils.tensordict_utils import list_of_dict_to_tensordict

        self.keys, self.fields, self.put = list(keys), fields, None
        self.rest = list_of_dict_to_tensordict(
            [{"extra_fields": f["extra_fields"]} for f in fields]
        )

    def kv_batch_get(self, keys, partition_id, select_fields):
        assert keys == self.keys
        out = {}
        for name in select_fields:
            if name == "extra_fields":
                out[name] = self.rest["extra_fields"]
            else:
                rows = [f[name] for f in self.fields]
                out[name] = torch.nested.as_nested_tensor(rows, layout=torch.jagged)
        return out

    def kv_batch_put(self, keys, partition_id, fields):
        assert keys == self.keys
        self.put = fields
        return "written"


def test_the_registered_trainer_gives_each_sample_its_chunks_reward_and_advantage(
    config_path, instances, monkeypatch
):
    """The advantage step of the trainer registered as trainer_mode=memalpha, on samples
    stored as verl's TQ agent-loop worker stores them (AgentLoopOutput.as_dict + the copied
    reward extra info), with a padding sample."""
    from types import SimpleNamespace

    from omegaconf import OmegaConf
    from verl.trainer.ppo.v1 import get_trainer_cls

    import memalpha.rl.verl.trainer as trainer_module

    text, writer = _shipped(config_path)
    verl = _verl_trajectories(text, writer, instances[:2], 2)
    keys, fields, tags = [], [], []
    for (i, g), outs in verl.items():
        for k, out in enumerate(outs):
            keys.append(f"uid{i}_{g}_{k}")
            fields.append(out.as_dict())
            tags.append({})
    keys.append("padx_0_0")
    fields.append({**fields[0], "response_mask": fields[0]["response_mask"] * 0})
    tags.append({"is_padding": True})
    queue = InMemoryTransferQueue(keys, fields)
    monkeypatch.setattr(trainer_module.tq, "kv_batch_get", queue.kv_batch_get)
    monkeypatch.setattr(trainer_module.tq, "kv_batch_put", queue.kv_batch_put)

    cls = get_trainer_cls("memalpha")
    assert cls is trainer_module.MemalphaTrainer
    trainer = cls.__new__(cls)  # the advantage step needs only the config
    trainer.config = OmegaConf.create(
        {
            "algorithm": {"adv_estimator": "grpo", "use_kl_in_reward": False},
            "memalpha": {"config": text},
        }
    )
    metrics = {}
    batch = SimpleNamespace(keys=keys, tags=tags, partition_id="train")
    assert trainer._compute_advantage(batch, metrics) == "written"

    want = chunk_advantages(
        keys, [bool(t) for t in tags], [f["extra_fields"] for f in fields], writer.cfg.ppo.group_by
    )
    put = queue.put
    for n, field in enumerate(fields):
        length = len(field["responses"])
        advantages, rewards = put["advantages"][n], put["rm_scores"][n]
        assert advantages.shape == (length,)
        assert torch.allclose(
            advantages, torch.full((length,), want.advantages[n]) * field["response_mask"]
        )
        assert rewards[-1].item() == pytest.approx(want.scores[n])
        assert rewards[:-1].abs().sum() == 0
    assert metrics["memalpha/samples"] == metrics["memalpha/trajectory_chunks"] == len(keys) - 1
    trainer.config.algorithm.use_kl_in_reward = True
    with pytest.raises(ConfigError, match="use_kl_in_reward=false"):
        trainer._compute_advantage(batch, {})


@pytest.mark.parametrize(
    ("local_only", "message"),
    [
        ({"ppo": {"group_by": "branch"}, "reward": {"aim_weight": 1.0}}, "group_by=branch"),
        ({"reward": {"truncation_penalty": 0.5}}, "truncation_penalty"),
        ({"ppo": {"scale_by_std": False}}, "scale_by_std"),
    ],
)
def test_the_registered_trainer_refuses_what_only_the_local_trainer_does(local_only, message):
    """Branch groups sample chunks from shared memory states, which verl's agent loop does not,
    and the truncation penalty is applied where the local trainer compares samples: the
    trainer says so instead of training without them."""
    from omegaconf import OmegaConf
    from verl.trainer.ppo.v1 import get_trainer_cls

    import memalpha.rl.verl.trainer  # noqa: F401  (registers trainer_mode=memalpha)

    config = TrainConfig(policy={"model": "any"}, **local_only)
    cls = get_trainer_cls("memalpha")
    trainer = cls.__new__(cls)  # the check needs only the config
    trainer.config = OmegaConf.create(
        {
            "algorithm": {"adv_estimator": "grpo", "use_kl_in_reward": False},
            "memalpha": {"config": config.model_dump_json()},
        }
    )
    with pytest.raises(ConfigError, match=message):
        trainer._check_algorithm()


def _compose(repo_root, extra=(), name="paper-qwen3-4b"):
    from hydra import compose, initialize_config_module

    lines = (repo_root / f"configs/verl/{name}.overrides").read_text("utf-8").splitlines()
    overrides = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    with initialize_config_module(config_module="memalpha.rl.verl.config", version_base=None):
        return compose(config_name="memalpha_ppo", overrides=[*overrides, *extra])


def test_published_overrides_compose_with_verls_own_config_into_the_v1_memalpha_trainer(
    repo_root, tmp_path, monkeypatch
):
    from verl.trainer.ppo.v1 import get_trainer_cls

    from memalpha.rl.verl.launch import prepare

    monkeypatch.chdir(tmp_path)
    (tmp_path / "memalpha.yaml").write_text(CONFIG, "utf-8")
    cfg = _compose(
        repo_root,
        [
            # what scripts/verl_train.sh adds
            "memalpha.config_path=memalpha.yaml",
            "actor_rollout_ref.model.path=/models/Qwen3-4B",
            "data.train_files=data/verl/train.parquet",
            "data.val_files=data/verl/val.parquet",
            "trainer.default_local_dir=runs/verl",
            "trainer.nnodes=4",
            "trainer.n_gpus_per_node=8",
        ],
    )
    assert cfg.trainer.use_v1 is True  # verl's main_ppo then runs TaskRunnerV1's path
    assert cfg.trainer.v1.trainer_mode == "memalpha"
    import memalpha.rl.verl.trainer  # noqa: F401  (what the memalpha task runner imports)

    assert get_trainer_cls(cfg.trainer.v1.trainer_mode).__name__ == "MemalphaTrainer"
    rollout, actor = cfg.actor_rollout_ref.rollout, cfg.actor_rollout_ref.actor
    assert (rollout.n, rollout.prompt_length, rollout.response_length) == (8, 6144, 2048)
    # 32 chunk samples per optimizer update: verl's V1 mini-batch is ppo_mini_batch_size × n
    assert actor.ppo_mini_batch_size * rollout.n == 32
    assert actor.loss_agg_mode == "seq-mean-token-mean"
    assert (cfg.algorithm.adv_estimator, actor.kl_loss_type) == ("grpo", "low_var_kl")
    assert rollout.agent.default_agent_loop == "memalpha_writer"
    assert cfg.reward.custom_reward_function.path == "pkg://memalpha.rl.verl.reward_fn"

    prepare(cfg)
    # the memalpha config travels inside verl's config; paths are absolute
    assert config_from_json(cfg.memalpha.config) == load_config(
        TrainConfig, tmp_path / "memalpha.yaml"
    )
    assert cfg.reward.custom_reward_function.reward_kwargs.memalpha_config == cfg.memalpha.config
    assert cfg.data.train_files == str(tmp_path / "data/verl/train.parquet")
    assert cfg.trainer.default_local_dir == str(tmp_path / "runs/verl")
    assert cfg.actor_rollout_ref.model.path == "/models/Qwen3-4B"
    registry = cfg.actor_rollout_ref.rollout.agent.agent_loop_config_path
    assert registry.endswith("agent_loops.yaml") and Path(registry).is_absolute()
    script = (repo_root / "scripts/verl_train.sh").read_text("utf-8")
    assert "python -m memalpha.rl.verl" in script and "memalpha.config_path=" in script


def test_the_launcher_composes_its_config_as_a_user_runs_it(repo_root, tmp_path):
    """`python -m memalpha.rl.verl ... --cfg job` prints the composed config and stops before
    Ray (Hydra's own flag): the entry point, its config module and the overrides all load."""
    import subprocess
    import sys

    (tmp_path / "memalpha.yaml").write_text(CONFIG, "utf-8")
    lines = (repo_root / "configs/verl/paper-qwen3-4b.overrides").read_text("utf-8").splitlines()
    overrides = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "memalpha.rl.verl",
            "memalpha.config_path=memalpha.yaml",
            *overrides,
            "--cfg",
            "job",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "trainer_mode: memalpha" in done.stdout
    assert "default_agent_loop: memalpha_writer" in done.stdout


def test_the_smoke_run_composes_and_checks_what_it_trains_on(repo_root):
    """scripts/verl_smoke.sh (GPU only): its overrides select the memalpha V1 trainer, and its
    check counts the same rollouts per instance that its overrides ask for."""
    cfg = _compose(repo_root, ["memalpha.config_path=configs/verl/smoke.yaml"], name="smoke")
    assert (cfg.trainer.use_v1, cfg.trainer.v1.trainer_mode) == (True, "memalpha")
    assert cfg.trainer.total_training_steps == 2 and "file" in cfg.trainer.logger
    script = (repo_root / "scripts/verl_smoke.sh").read_text("utf-8")
    assert f"n = {cfg.actor_rollout_ref.rollout.n}  #" in script
    assert "python -m memalpha.rl.verl" in script and "timeout 600" in script
    smoke = load_config(TrainConfig, repo_root / "configs/verl/smoke.yaml")
    assert smoke.reader.kind == "extractive"  # no reader server on the smoke machine
