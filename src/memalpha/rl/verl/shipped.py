"""The memalpha config as it travels to verl's Ray workers.

A remote worker may run on another node, in another working directory, with another
environment: a relative path or an environment variable named on the driver means nothing
there. So the launcher reads and validates the memalpha train config once, on the driver, and
puts it, as JSON, into verl's own config (`memalpha.config`), which Ray hands to every worker;
the agent loop, the reward function and the trainer read it from there.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import ValidationError

from memalpha.config import load_config
from memalpha.errors import ConfigError
from memalpha.rl.config import TrainConfig

INTERPOLATION = "${"
"""OmegaConf resolves `${...}` in every string of verl's config, ours included."""


def config_json(path: str | Path, overrides: list[str] = ()) -> str:
    """The train config at `path` (with `--set`-style overrides), validated, as JSON.

    Raises:
        ConfigError: the config is invalid, or holds `${`, which verl's OmegaConf would try to
            resolve as an interpolation.
    """
    text = load_config(TrainConfig, Path(path), overrides).model_dump_json()
    if INTERPOLATION in text:
        raise ConfigError(
            f"the config holds '{INTERPOLATION}', which OmegaConf would resolve inside verl's "
            "config: remove it from prompts and paths",
            path=str(path),
        )
    return text


@lru_cache(maxsize=4)
def config_from_json(text: str) -> TrainConfig:
    """The config a worker was handed (cached: every agent loop and reward call asks).

    Raises:
        ConfigError: `text` is not a valid memalpha train config.
    """
    if not text:
        raise ConfigError(
            "no memalpha config in verl's config: launch with `python -m memalpha.rl.verl "
            "memalpha.config_path=...` (docs/verl.md)"
        )
    try:
        return TrainConfig.model_validate_json(text)
    except ValidationError as exc:
        raise ConfigError(f"invalid memalpha config handed to a verl worker: {exc}") from None
