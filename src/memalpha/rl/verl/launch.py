"""`python -m memalpha.rl.verl`: verl 0.9's V1 PPO trainer with the memalpha agent loop,
reward and trainer (needs `pip install 'memalpha[verl]'`).

Arguments are Hydra overrides of `config/memalpha_ppo.yaml`, which is verl's own
`ppo_trainer` config with memalpha wired in; `memalpha.config_path=` names the memalpha train
config. On the driver the launcher reads and validates that config and ships it inside verl's
config (`memalpha.rl.verl.shipped`), and makes every path it was given absolute, so that no Ray
worker depends on the driver's working directory or environment. Then it runs verl's
`run_ppo` with a task runner that registers the memalpha trainer inside its Ray actor.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import hydra
import ray
from omegaconf import DictConfig, open_dict
from verl.trainer.main_ppo import TaskRunnerV1, run_ppo
from verl.trainer.ppo.utils import need_critic, need_reference_policy
from verl.utils.config import validate_config
from verl.utils.device import auto_set_device

from memalpha.rl.verl.shipped import config_json

PATH_KEYS = (
    "actor_rollout_ref.model.path",
    "data.train_files",
    "data.val_files",
    "trainer.default_local_dir",
)
"""Paths the driver resolves (when relative) before Ray ships the config."""


def prepare(config: DictConfig) -> DictConfig:
    """Fill what the launcher owns: the shipped memalpha config, the agent-loop registry's
    absolute path, and absolute forms of the paths in PATH_KEYS. Returns `config`.

    Raises:
        ConfigError: the memalpha config is invalid (`shipped.config_json`).
    """
    with open_dict(config):
        config.memalpha.config = config_json(Path(config.memalpha.config_path).resolve())
        registry = files("memalpha.rl.verl").joinpath("agent_loops.yaml")
        config.actor_rollout_ref.rollout.agent.agent_loop_config_path = str(registry)
        for key in PATH_KEYS:
            _absolute(config, key)
    return config


def _absolute(config: DictConfig, key: str) -> None:
    *parents, leaf = key.split(".")
    node: Any = config
    for part in parents:
        node = node[part]
    value = node.get(leaf)
    if isinstance(value, str):
        node[leaf] = _resolved(value)
    elif value is not None:
        node[leaf] = [_resolved(v) for v in value]


def _resolved(path: str) -> str:
    """An absolute local path; URLs (hdfs://, pkg://) and empty values unchanged."""
    return path if not path or "://" in path else str(Path(path).expanduser().resolve())


@ray.remote
class MemalphaTaskRunner(TaskRunnerV1.__ray_actor_class__):  # type: ignore[name-defined,misc]
    """verl's V1 task runner, with the memalpha trainer registered in its own process."""

    def run(self, config: DictConfig) -> None:
        import memalpha.rl.verl.trainer  # noqa: F401  (registers trainer_mode=memalpha)

        super().run(config)


@hydra.main(config_path="config", config_name="memalpha_ppo", version_base=None)
def main(config: DictConfig) -> None:
    """As verl's `main_ppo.main`, with `prepare` first and the memalpha task runner."""
    prepare(config)
    auto_set_device(config)
    validate_config(
        config=config,
        use_reference_policy=need_reference_policy(config),
        use_critic=need_critic(config),
    )
    run_ppo(config, task_runner_class=MemalphaTaskRunner)
