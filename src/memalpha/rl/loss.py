"""The policy loss: PPO clipped surrogate with optional dual clip, token-mean aggregation, and
the k3 KL estimator against a frozen reference (MEMALPHA_SPEC §4.3; verl's `compute_policy_loss`
and `kl_penalty(..., "low_var_kl")`).

Per token t of a response, with r_t = exp(logp_t − old_logp_t) and advantage A:
    pg_t = max(−A·r_t, −A·clip(r_t, 1 − ε_low, 1 + ε_high))
    dual clip (A < 0 only): pg_t = min(pg_t, −A·c)
    loss = Σ_t pg_t·mask_t / Σ_t mask_t   (+ β_kl · the same mean of k3_t)
    k3_t = exp(ref_t − logp_t) − (ref_t − logp_t) − 1, clamped to [−10, 10]
k3 is an unbiased, always non-negative estimator of KL(π‖π_ref):
http://joschu.net/blog/kl-approx.html
"""

from __future__ import annotations

import torch


def token_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the unmasked tokens of the whole batch (verl's `token-mean`)."""
    return (values * mask).sum() / mask.sum().clamp(min=1)


def clipped_surrogate(
    logprobs: torch.Tensor,  # (B, T) under the current policy
    old_logprobs: torch.Tensor,  # (B, T) under the policy that sampled
    advantages: torch.Tensor,  # (B,) one per sample, or (B, T)
    mask: torch.Tensor,  # (B, T) 1 for response tokens
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    dual_clip: float | None = 3.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The PPO clipped policy-gradient loss and its statistics (clip fraction, ratio)."""
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(-1).expand_as(logprobs)  # (B, T)
    ratio = torch.exp(logprobs - old_logprobs)  # (B, T)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1 - clip_low, 1 + clip_high)
    pg = torch.maximum(unclipped, clipped)  # (B, T)
    if dual_clip is not None:
        pg = torch.where(advantages < 0, torch.minimum(pg, -advantages * dual_clip), pg)
    stats = {
        "clip_fraction": float(token_mean((clipped > unclipped).float(), mask)),
        "ratio_mean": float(token_mean(ratio.detach(), mask)),
    }
    return token_mean(pg, mask), stats


def k3_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(π‖π_ref), clamped to [−10, 10] as verl does."""
    log_ratio = ref_logprobs - logprobs  # (B, T)
    return (torch.exp(log_ratio) - log_ratio - 1).clamp(-10, 10)
