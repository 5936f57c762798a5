"""verl integration: the verl-free parts (episode records, the reward function, the dataset)
always; the agent loop against verl's real `AgentLoopBase` when verl is installed (it is, in
`.[dev]` CI). The rollout server behind the agent loop is local — SmolLM2 through
`TransformersLLM.generate_ids` — because verl's vLLM/SGLang servers need GPUs."""

from __future__ import annotations

import asyncio
import json

import pyarrow.parquet as pq
import pytest

from memalpha.agent import RuleWriterLLM, build_agent
from memalpha.data import Instance
from memalpha.errors import ConfigError, DataError
from memalpha.llm import FORMATS, SamplingParams
from memalpha.memory import Memory
from memalpha.reader import build_judge, build_reader
from memalpha.rl.verl import (
    EpisodeRecord,
    Writer,
    compute_score,
    from_record,
    pick_chunk,
    to_record,
    write_verl_parquet,
)
from memalpha.rl.verl.reward_fn import EPISODE_KEY, INSTANCE_KEY
from memalpha.rollout import Scoring, rollout

CONFIG = """
prompt: compact
rollout: {max_new_tokens: 512}
reward: {beta: 0.2, gamma: 0.5}
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
    out = real_instances(
        ["squad", "trec_coarse"], instances=3, max_tokens=200, chunk_tokens=64, questions=4
    )
    assert all(len(i.chunks) >= 3 for i in out)
    return out


def _rule_generate():
    """A rollout server stand-in for the verl-free tests: the rule writer (no LLM)."""
    rule = RuleWriterLLM(FORMATS["hermes"])

    async def generate(messages):
        (generation,) = rule.generate([messages], SamplingParams(max_new_tokens=512))
        return [0] * len(messages), generation

    return generate


def _extra_info(instance: Instance, record: EpisodeRecord) -> dict:
    """What verl hands the reward function: the dataset's extra_info with the agent loop's
    extra_fields merged in, after a JSON round trip (Ray serialises it)."""
    return {
        INSTANCE_KEY: instance.model_dump_json(),
        EPISODE_KEY: json.loads(json.dumps(record.model_dump(mode="json"))),
    }


def test_the_verl_reward_of_a_chunk_is_the_local_trainers_reward(config_path, instances):
    writer = Writer.from_path(config_path)
    cfg = writer.cfg
    reader, _ = build_reader(cfg.reader, writer.counter)
    judge, _ = build_judge(cfg.judge)
    scoring = Scoring(reader, judge, cfg.reward, writer.counter)
    local_agent = build_agent(cfg.writer, writer.counter)
    rule = RuleWriterLLM(FORMATS["hermes"])
    for instance in instances:
        trajectory, prompts = asyncio.run(writer.run(instance, _rule_generate()))
        assert len(prompts) == len(trajectory.episode.steps) == len(instance.chunks)
        done = rollout(local_agent, rule, cfg.writer.sampling(), [instance], 1, cfg.memory, scoring)
        (local,), (local_score,) = done.trajectories, done.scores
        assert trajectory.memory.snapshot() == local.memory.snapshot()
        for k in range(len(instance.chunks)):
            got = compute_score(
                instance.data_source,
                "",
                "",
                _extra_info(instance, to_record(trajectory, k)),
                memalpha_config=str(config_path),
            )
            want = local_score.terms[k]
            assert got == pytest.approx(
                {
                    "score": want.total,
                    "r1_qa": local_score.qa,
                    "r1_chunk": want.r1,
                    "r2_calls": want.r2,
                    "r3_compression": want.r3,
                    "r4_validity": want.r4,
                    "w_r2": want.w_r2,
                    "beta_r3": want.beta_r3,
                    "gamma_r4": want.gamma_r4,
                }
            )
        assert local_score.qa > 0  # the rule writer's memories answer some questions
        rebuilt = from_record(to_record(trajectory, 0), instance, cfg, writer.counter)
        assert rebuilt.memory.snapshot() == trajectory.memory.snapshot()


def test_pick_chunk_is_a_deterministic_uniform_draw_per_trajectory(config_path, instances):
    writer = Writer.from_path(config_path)
    trajectories = [asyncio.run(writer.run(i, _rule_generate()))[0] for i in instances]
    picks = [pick_chunk(t) for t in trajectories]
    assert picks == [pick_chunk(t) for t in trajectories]
    assert all(0 <= k < len(t.episode.steps) for k, t in zip(picks, trajectories, strict=True))
    assert len(set(picks)) > 1  # six trajectories of ≥3 chunks do not all draw one index
    assert [pick_chunk(t, "last") for t in trajectories] == [
        len(t.episode.steps) - 1 for t in trajectories
    ]


def test_reward_function_rejects_samples_it_cannot_score(config_path, instances):
    instance = instances[0]
    writer = Writer.from_path(config_path)
    trajectory, _ = asyncio.run(writer.run(instance, _rule_generate()))
    info = _extra_info(instance, to_record(trajectory, 0))
    with pytest.raises(ConfigError, match="memalpha_config"):
        compute_score("squad", "", "", info)
    with pytest.raises(DataError, match="memalpha_episode"):
        compute_score("squad", "", "", {INSTANCE_KEY: info[INSTANCE_KEY]}, str(config_path))
    other = _extra_info(instances[1], to_record(trajectory, 0))
    other[EPISODE_KEY]["chunks"] = other[EPISODE_KEY]["chunks"][:1]
    with pytest.raises(DataError, match="does not match"):
        compute_score("squad", "", "", other, str(config_path))
    info[EPISODE_KEY]["chunks"][0]["calls"] = "not a list"
    with pytest.raises(DataError, match="malformed"):
        compute_score("squad", "", "", info, str(config_path))


def test_writer_refuses_the_local_only_greedy_anchor(tmp_path):
    path = tmp_path / "anchored.yaml"
    path.write_text(CONFIG.replace("{max_new_tokens: 512}", "{greedy_anchor: true}"), "utf-8")
    with pytest.raises(ConfigError, match="greedy_anchor is a local-trainer option"):
        Writer.from_path(path)


def test_verl_parquet_rows_carry_whole_instances(tmp_path, instances):
    path = tmp_path / "verl" / "train.parquet"
    assert write_verl_parquet(instances, path) == len(instances)
    rows = pq.read_table(path).to_pylist()
    assert [Instance.model_validate_json(r["extra_info"]["instance"]) for r in rows] == instances
    assert {r["agent_name"] for r in rows} == {"memalpha_writer"}
    assert all(r["prompt"][0]["role"] == "user" for r in rows)


# --- against verl itself ---------------------------------------------------------------


@pytest.fixture(scope="module")
def smol(tmp_path_factory):
    from memalpha.llm.local import TransformersLLM
    from memalpha.llm.registry import ModelConfig, resolve_folder

    folder = resolve_folder(ModelConfig(cache_dir=tmp_path_factory.mktemp("models")))
    return TransformersLLM(folder)


class LocalRolloutServer:
    """verl's `LLMServerClient.generate` contract (token ids in, `TokenOutput` out) served by a
    local transformers model, standing in for the vLLM/SGLang servers that need GPUs."""

    def __init__(self, llm):
        self.llm, self.requests = llm, []

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
        return TokenOutput(token_ids=list(gen.token_ids), log_probs=gen.logprobs)


def test_agent_loop_runs_in_verl_and_returns_one_exact_chunk_sample(
    config_path, instances, smol, repo_root, tmp_path, monkeypatch
):
    """verl's dataset reads our parquet, verl's registry instantiates our loop from
    configs/verl/agent_loops.yaml as its worker does, the loop memorizes every chunk through
    the rollout-server interface, and the reward function scores the row it returns."""
    pytest.importorskip("verl.experimental.agent_loop.agent_loop")
    import hydra
    from omegaconf import OmegaConf
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap, ToolListWrap
    from verl.utils.dataset.rl_dataset import RLHFDataset

    monkeypatch.setenv("MEMALPHA_CONFIG", str(config_path))
    data = tmp_path / "train.parquet"
    write_verl_parquet(instances[:1], data)
    data_config = OmegaConf.create(
        {"max_prompt_length": 4096, "return_raw_chat": True, "cache_dir": str(tmp_path)}
    )
    row = RLHFDataset(data_files=[str(data)], tokenizer=smol.tokenizer, config=data_config)[0]
    config = OmegaConf.create(
        {
            "actor_rollout_ref": {"rollout": {"prompt_length": 4096, "response_length": 48}},
            "data": {"apply_chat_template_kwargs": {}},
        }
    )
    (entry,) = OmegaConf.load(repo_root / "configs/verl/agent_loops.yaml")
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
    # verl runs agent loops on the worker's event loop, the one the loop object captured
    out = loop.loop.run_until_complete(loop.run({"temperature": 0.0, "logprobs": True}, **kwargs))

    instance = instances[0]
    # every chunk went to the server once, with the writer's own prompt, tokenised as the
    # local trainer tokenises it
    assert len(server.requests) == len(instance.chunks)
    assert all(params["max_tokens"] == 48 for _, params in server.requests)
    writer = loop.writer
    empty = Memory(writer.cfg.memory, writer.counter)
    text = smol.render(writer.agent.messages(empty, instance.chunks[0]))
    assert server.requests[0][0] == smol.tokenizer(text, add_special_tokens=False)["input_ids"]
    # the training row is chunk k's exact prompt and sampled ids, all of them trained on
    record = EpisodeRecord.model_validate(out.extra_fields[EPISODE_KEY])
    k = record.train_chunk
    assert len(record.chunks) == len(instance.chunks)
    assert out.prompt_ids == server.requests[k][0]
    assert out.response_mask == [1] * len(out.response_ids)
    assert 0 < len(out.response_ids) <= 48
    assert len(out.response_logprobs) == len(out.response_ids)
    # and verl's reward loop (extra_info merged with the loop's extra_fields) can score it
    score = compute_score(row["data_source"], "", "", {**row["extra_info"], **out.extra_fields})
    assert set(score) == {
        "score",
        "r1_qa",
        "r1_chunk",
        "r2_calls",
        "r3_compression",
        "r4_validity",
        "w_r2",
        "beta_r3",
        "gamma_r4",
    }
    assert score["score"] == pytest.approx(
        score["r1_chunk"]
        + score["r2_calls"]
        + 0.2 * score["r3_compression"]
        + 0.5 * score["r4_validity"]
    )


def test_launch_overrides_compose_with_verls_own_config(repo_root):
    """The published run shape, as Hydra overrides, is valid against verl's trainer config."""
    verl = pytest.importorskip("verl")
    from pathlib import Path

    from hydra import compose, initialize_config_dir

    lines = (repo_root / "configs/verl/paper-qwen3-4b.overrides").read_text("utf-8").splitlines()
    overrides = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    config_dir = Path(verl.__file__).parent / "trainer" / "config"
    with initialize_config_dir(config_dir=str(config_dir), version_base=None):
        cfg = compose(
            config_name="ppo_trainer",
            overrides=[
                *overrides,
                # what scripts/verl_train.sh adds
                "actor_rollout_ref.model.path=/models/Qwen3-4B",
                "data.train_files=data/verl/train.parquet",
                "data.val_files=data/verl/val.parquet",
                "+reward.custom_reward_function.reward_kwargs.memalpha_config=paper.yaml",
                "trainer.default_local_dir=runs/verl",
                "trainer.nnodes=4",
                "trainer.n_gpus_per_node=8",
                "trainer.experiment_name=verl",
            ],
        )
    rollout = cfg.actor_rollout_ref.rollout
    assert (rollout.n, rollout.prompt_length, rollout.response_length) == (8, 6144, 2048)
    assert rollout.agent.default_agent_loop == "memalpha_writer"
    assert cfg.algorithm.adv_estimator == "grpo"
    assert cfg.actor_rollout_ref.actor.kl_loss_type == "low_var_kl"
    assert cfg.reward.custom_reward_function.path == "pkg://memalpha.rl.verl.reward_fn"
    script = (repo_root / "scripts/verl_train.sh").read_text("utf-8")
    assert "configs/verl/paper-qwen3-4b.overrides" in script
    for key in ("data.train_files", "trainer.default_local_dir", "trainer.experiment_name"):
        assert key in script
