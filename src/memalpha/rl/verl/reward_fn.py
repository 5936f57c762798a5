"""The rewards of one verl trajectory, with memalpha's reader, judge and reward code.

verl 0.9's reward loop calls `compute_score(data_source, solution_str, ground_truth,
extra_info, **reward_kwargs)` once per trajectory, on its last output, with the dataset row's
`extra_info` merged with that output's `extra_fields`. Ours finds the instance there (written
by `write_verl_parquet`) and the episode record (written by the agent loop), rebuilds the final
memory, lets the configured reader answer the instance's questions from it and computes every
chunk's r1 + w·r2 + β·r3 + γ·r4: the very terms `memalpha train` computes. verl copies the
result to every output of the trajectory; `memalpha.rl.verl.samples` then gives each chunk
sample its own chunk's total. `solution_str` and `ground_truth` are not needed: the memory is
the answer.

Wired by the launcher's config (`memalpha/rl/verl/config/memalpha_ppo.yaml`):
    reward.custom_reward_function.path=pkg://memalpha.rl.verl.reward_fn
    reward.custom_reward_function.name=compute_score
    reward.custom_reward_function.reward_kwargs.memalpha_config=${memalpha.config}
"""

from __future__ import annotations

import json
from dataclasses import asdict
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from memalpha.data import Instance
from memalpha.errors import DataError
from memalpha.reader import build_judge, build_reader
from memalpha.reward import RewardTerms
from memalpha.rl.config import TrainConfig
from memalpha.rl.verl.episode import EpisodeRecord, from_record
from memalpha.rl.verl.shipped import config_from_json
from memalpha.rollout import Scoring, score_episodes
from memalpha.tokens import make_token_counter

EPISODE_KEY = "memalpha_episode"
INSTANCE_KEY = "instance"
TERMS_KEY = "memalpha_terms"
"""reward_extra_info key of every chunk's reward terms, as JSON (a string: verl's validation
metrics skip strings, and chunk counts differ between trajectories)."""
LOGGED = (
    "r1_chunk",
    "r2_calls",
    "r3_compression",
    "r4_validity",
    "r5_aim",
    "w_r2",
    "beta_r3",
    "gamma_r4",
    "aim_r5",
)
_FIELDS = {
    "r1_chunk": "r1",
    "r2_calls": "r2",
    "r3_compression": "r3",
    "r4_validity": "r4",
    "r5_aim": "r5",
}


@lru_cache(maxsize=4)
def _scorer(config_text: str) -> tuple[TrainConfig, Scoring]:
    """Config and scoring parts of one memalpha config, built once per reward worker."""
    cfg = config_from_json(config_text)
    counter = make_token_counter(cfg.memory.tokenizer)
    reader, _ = build_reader(cfg.reader, counter)
    judge, _ = build_judge(cfg.judge)
    return cfg, Scoring(reader, judge, cfg.reward, counter)


def encode_terms(terms: list[RewardTerms]) -> str:
    return json.dumps([asdict(t) for t in terms])


def decode_terms(text: str) -> list[RewardTerms]:
    """Raises: DataError: `text` is not what `encode_terms` writes."""
    try:
        return [RewardTerms(**item) for item in json.loads(text)]
    except (TypeError, ValueError) as exc:
        raise DataError(f"malformed {TERMS_KEY}: {exc}") from None


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: dict[str, Any] | None = None,
    memalpha_config: str = "",
    **_: Any,
) -> dict[str, float | str]:
    """{"score": the last chunk's total reward (the output verl scores), "r1_qa" (the
    trajectory's QA score), the chunk means of "r1_chunk", "r2_calls", "r3_compression",
    "r4_validity", "r5_aim", "w_r2", "beta_r3", "gamma_r4", "aim_r5" (named as in the local
    trainer's logs), and
    TERMS_KEY: every chunk's terms}.

    Raises:
        ConfigError: `memalpha_config` (the launcher's JSON) is missing or invalid.
        DataError: the sample carries no instance or no episode record, or a malformed one.
    """
    cfg, scoring = _scorer(memalpha_config)
    instance, record = _episode(data_source, extra_info or {})
    (score,) = score_episodes([from_record(record, instance, cfg, scoring.counter)], scoring)
    terms = score.terms
    logged = {
        key: sum(getattr(t, _FIELDS.get(key, key)) for t in terms) / len(terms) for key in LOGGED
    }
    return {"score": terms[-1].total, "r1_qa": score.qa, **logged, TERMS_KEY: encode_terms(terms)}


def _episode(data_source: str, info: dict[str, Any]) -> tuple[Instance, EpisodeRecord]:
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
    if len(record.chunks) != len(instance.chunks):
        raise DataError(
            f"episode record of {instance.id} does not match its instance "
            f"({len(record.chunks)} chunks recorded, {len(instance.chunks)} in the instance)"
        )
    return instance, record
