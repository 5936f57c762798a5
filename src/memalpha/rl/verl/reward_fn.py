"""The reward of one verl sample, with memalpha's reader, judge and reward code.

verl 0.9's reward loop calls `compute_score(data_source, solution_str, ground_truth,
extra_info, **reward_kwargs)` once per sample, with the dataset row's `extra_info` merged with
the agent loop's `extra_fields`. Ours finds the instance there (written by `write_verl_parquet`)
and the episode record (written by the agent loop), rebuilds the final memory, lets the
configured reader answer the instance's questions from it and returns the trained chunk's
r1 + r2 + β·r3 + γ·r4 — the very terms `memalpha train` computes — with each term alongside
for verl's logs. `solution_str` and `ground_truth` are not needed: the memory is the answer.

Wire it with:
    reward.custom_reward_function.path=pkg://memalpha.rl.verl.reward_fn
    reward.custom_reward_function.name=compute_score
    +reward.custom_reward_function.reward_kwargs.memalpha_config=configs/train/paper-qwen3-4b.yaml
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from memalpha.config import load_config
from memalpha.data import Instance
from memalpha.errors import ConfigError, DataError
from memalpha.reader import build_judge, build_reader
from memalpha.rl.config import TrainConfig
from memalpha.rl.verl.episode import EpisodeRecord, from_record
from memalpha.rollout import Scoring, score_episodes
from memalpha.tokens import make_token_counter

EPISODE_KEY = "memalpha_episode"
INSTANCE_KEY = "instance"
CONFIG_ENV = "MEMALPHA_CONFIG"


@lru_cache(maxsize=4)
def _scorer(config_path: str) -> tuple[TrainConfig, Scoring]:
    """Config and scoring parts of one memalpha config, built once per reward worker."""
    cfg = load_config(TrainConfig, Path(config_path))
    counter = make_token_counter(cfg.memory.tokenizer)
    reader, _ = build_reader(cfg.reader, counter)
    judge, _ = build_judge(cfg.judge)
    return cfg, Scoring(reader, judge, cfg.reward, counter)


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: dict[str, Any] | None = None,
    memalpha_config: str | None = None,
    **_: Any,
) -> dict[str, float]:
    """{"score": total reward of the trained chunk, "r1_qa" (the trajectory's QA score),
    "r1_chunk" (the r1 this chunk is credited with), "r2_calls", "r3_compression",
    "r4_validity", and the weighted "w_r2", "beta_r3", "gamma_r4"} — named as in the local
    trainer's logs.

    Raises:
        ConfigError: no memalpha config was named (reward_kwargs or $MEMALPHA_CONFIG).
        DataError: the sample carries no instance or no episode record, or a malformed one.
    """
    path = memalpha_config or os.environ.get(CONFIG_ENV)
    if not path:
        raise ConfigError(
            "compute_score needs the memalpha config: set reward_kwargs.memalpha_config "
            f"or ${CONFIG_ENV}"
        )
    cfg, scoring = _scorer(str(path))
    info = extra_info or {}
    for key in (INSTANCE_KEY, EPISODE_KEY):
        if key not in info:
            raise DataError(
                f"sample of {data_source!r} has no extra_info[{key!r}]: build the dataset with "
                "`memalpha data verl` and roll out with the memalpha_writer agent loop"
            )
    try:
        instance = Instance.model_validate_json(info[INSTANCE_KEY])
        record = EpisodeRecord.model_validate(info[EPISODE_KEY])
    except ValidationError as exc:
        raise DataError(f"sample of {data_source!r}: malformed memalpha fields: {exc}") from None
    if record.train_chunk >= len(record.chunks) or len(record.chunks) != len(instance.chunks):
        raise DataError(
            f"episode record of {instance.id} does not match its instance "
            f"({len(record.chunks)} chunks recorded, {len(instance.chunks)} in the instance, "
            f"training chunk {record.train_chunk})"
        )
    (score,) = score_episodes([from_record(record, instance, cfg, scoring.counter)], scoring)
    terms = score.terms[record.train_chunk]
    return {
        "score": terms.total,
        "r1_qa": score.qa,
        "r1_chunk": terms.r1,
        "r2_calls": terms.r2,
        "r3_compression": terms.r3,
        "r4_validity": terms.r4,
        "w_r2": terms.w_r2,
        "beta_r3": terms.beta_r3,
        "gamma_r4": terms.gamma_r4,
    }
