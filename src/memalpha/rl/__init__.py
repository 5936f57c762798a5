"""GRPO for the memory writer: advantages and the policy loss (the trainer comes with issue 4)."""

from memalpha.rl.advantages import GroupBy, group_advantages, group_keys
from memalpha.rl.loss import clipped_surrogate, k3_kl, token_mean

__all__ = ["GroupBy", "clipped_surrogate", "group_advantages", "group_keys", "k3_kl", "token_mean"]
