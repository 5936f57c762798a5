"""verl 0.9's V1 synchronous PPO trainer with memalpha's per-chunk rewards and GRPO groups
(needs `pip install 'memalpha[verl]'`).

Registered as `trainer.v1.trainer_mode=memalpha`. Everything but the advantage step is verl's
`PPOTrainerSync`: replay buffer, old and reference log-probs, FSDP update, checkpoints, weight
sync to the rollout servers. The advantage step reads what the agent loop and the reward
function stored with each sample and computes the local trainer's rewards and advantages
(`memalpha.rl.verl.samples`); it also rewrites each sample's `rm_scores` to its own chunk's
reward, so verl's `critic/score` and `critic/rewards` logs show what was trained on.
"""

from __future__ import annotations

from typing import Any

import torch
import transfer_queue as tq
from tensordict import TensorDict
from verl.trainer.ppo.v1 import PPOTrainerSync, register_trainer
from verl.workers.utils.padding import response_to_nested

from memalpha.errors import ConfigError
from memalpha.rl.advantages import GroupBy
from memalpha.rl.verl.samples import ChunkAdvantages, chunk_advantages
from memalpha.rl.verl.shipped import config_from_json

TRAINER_MODE = "memalpha"


@register_trainer(TRAINER_MODE)
class MemalphaTrainer(PPOTrainerSync):
    """`PPOTrainerSync` whose GRPO advantages are memalpha's (see the module docstring)."""

    def _compute_advantage(self, batch: Any, metrics: dict) -> Any:
        group_by = self._check_algorithm()
        fields = ["response_mask", "extra_fields"]
        data = tq.kv_batch_get(
            keys=batch.keys, partition_id=batch.partition_id, select_fields=fields
        )
        padding = [bool(tag.get("is_padding", False)) for tag in batch.tags]
        chunks = chunk_advantages(batch.keys, padding, _as_list(data["extra_fields"]), group_by)
        output = advantage_fields(chunks, data["response_mask"])
        metrics["memalpha/groups_with_variance"] = chunks.groups_with_variance
        metrics["memalpha/samples"] = chunks.samples
        metrics["memalpha/trajectory_chunks"] = chunks.trajectory_chunks
        return tq.kv_batch_put(keys=batch.keys, partition_id=batch.partition_id, fields=output)

    def _check_algorithm(self) -> Any:
        """memalpha's GRPO replaces verl's: refuse settings it would silently ignore.

        Raises:
            ConfigError: another estimator, a KL penalty in the reward, unnormalised GRPO
                (either side's switch), or a chunk selection (ppo.train_chunks), branch groups
                or a truncation penalty verl does not make.
        """
        algorithm = self.config.algorithm
        if algorithm.adv_estimator != "grpo" or algorithm.use_kl_in_reward:
            raise ConfigError(
                "the memalpha trainer computes GRPO advantages with the KL as a loss: set "
                "algorithm.adv_estimator=grpo and algorithm.use_kl_in_reward=false"
            )
        if not algorithm.get("norm_adv_by_std_in_grpo", True):
            raise ConfigError(
                "memalpha's GRPO divides by the group std (published): "
                "set algorithm.norm_adv_by_std_in_grpo=true"
            )
        config = config_from_json(str(self.config.memalpha.config))
        ppo = config.ppo
        if not ppo.scale_by_std:
            raise ConfigError(
                "ppo.scale_by_std is the local trainer's (memalpha train); the verl trainer "
                "divides by the group std: set ppo.scale_by_std=true"
            )
        if ppo.train_chunks != "all":
            raise ConfigError(
                "ppo.train_chunks is the local trainer's (memalpha train); under verl every "
                "chunk sample is trained on: set ppo.train_chunks=all"
            )
        if config.reward.truncation_penalty:
            raise ConfigError(
                "reward.truncation_penalty is the local trainer's (memalpha train); the verl "
                "trainer does not apply it: set reward.truncation_penalty=0"
            )
        if ppo.group_by is GroupBy.BRANCH:
            raise ConfigError(
                "ppo.group_by=branch samples chunks from shared memory states, which only the "
                "local trainer (memalpha train) does: set ppo.group_by=step or instance"
            )
        return ppo.group_by


def _as_list(values: Any) -> list[Any]:
    """Non-tensor fields come back from TransferQueue as a NonTensorStack or a plain list."""
    return values.tolist() if hasattr(values, "tolist") else list(values)


def advantage_fields(chunks: ChunkAdvantages, response_mask: torch.Tensor) -> TensorDict:
    """Advantages and returns over every response token, and each sample's reward on its last
    one, as nested tensors shaped like `response_mask` (one row per sample)."""
    padded = response_mask.to_padded_tensor(0).float()
    advantages = torch.tensor(chunks.advantages, dtype=torch.float32).unsqueeze(1) * padded
    lengths = response_mask.offsets().diff()
    rewards = torch.zeros_like(padded)
    last = (lengths - 1).clamp(min=0)
    rewards[torch.arange(len(lengths)), last] = torch.tensor(chunks.scores, dtype=torch.float32)
    nested = {
        "advantages": response_to_nested(advantages, response_mask),
        "returns": response_to_nested(advantages.clone(), response_mask),
        "rm_scores": response_to_nested(rewards, response_mask),
    }
    return TensorDict(nested, batch_size=len(lengths))
