"""GRPO for the memory writer: advantages, the policy loss, the local trainer with checkpoints
and exact resume, the supervised warm start, and plots."""

from memalpha.rl.advantages import GroupBy, group_advantages, group_keys
from memalpha.rl.config import SFTConfig, TrainConfig
from memalpha.rl.loss import aggregate, clipped_surrogate, k3_kl, token_mean

__all__ = [
    "GroupBy",
    "SFTConfig",
    "TrainConfig",
    "aggregate",
    "clipped_surrogate",
    "group_advantages",
    "group_keys",
    "k3_kl",
    "token_mean",
]
