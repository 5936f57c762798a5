"""The policy loss: PPO clipped surrogate with optional dual clip, a choice of loss aggregation,
and the k3 KL estimator against a frozen reference (MEMALPHA_SPEC §4.3; verl's
`compute_policy_loss`, `agg_loss` and `kl_penalty(..., "low_var_kl")`).

Per token t of a response, with r_t = exp(logp_t − old_logp_t) and advantage A:
    pg_t = max(−A·r_t, −A·clip(r_t, 1 − ε_low, 1 + ε_high))
    dual clip (A < 0 only): pg_t = min(pg_t, −A·c)
    k3_t = exp(ref_t − logp_t) − (ref_t − logp_t) − 1, clamped to [−10, 10]
    loss = agg(pg) (+ β_kl · agg(k3)), where agg over responses b with tokens t is
      token-mean          Σ_bt x·m / Σ_bt m          every token weighs the same (published)
      seq-mean-token-mean mean_b (Σ_t x·m / Σ_t m)   every response weighs the same (GRPO paper)
      seq-mean-token-sum  mean_b Σ_t x·m             every token weighs the same, per response
Token-mean lets a long response outweigh a short one with the opposite advantage; the
sequence means are there to test whether that matters (RESULTS.md, GRPO attempts).
k3 is an unbiased, always non-negative estimator of KL(π‖π_ref):
http://joschu.net/blog/kl-approx.html
"""

from __future__ import annotations

from typing import Literal

import torch

LossAgg = Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum"]


def token_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the unmasked tokens of the whole batch (verl's `token-mean`)."""
    return (values * mask).sum() / mask.sum().clamp(min=1)


def aggregate(values: torch.Tensor, mask: torch.Tensor, mode: LossAgg) -> torch.Tensor:
    """Reduce per-token values (B, T) to the scalar loss the way `mode` weighs tokens."""
    if mode == "token-mean":
        return token_mean(values, mask)
    per_seq = (values * mask).sum(-1)  # (B,)
    if mode == "seq-mean-token-mean":
        per_seq = per_seq / mask.sum(-1).clamp(min=1)
    elif mode != "seq-mean-token-sum":
        raise ValueError(f"unknown loss aggregation {mode!r}")
    return per_seq.mean()


def aggregation_weight(mode: LossAgg, response_lengths: list[int]) -> float:
    """What one micro-batch counts for in its mini-batch's aggregate: its tokens under
    token-mean, its responses under the sequence means. Micro-batch losses scaled by
    weight / (the mini-batch's total weight) add up to the loss of the whole mini-batch."""
    return float(sum(response_lengths) if mode == "token-mean" else len(response_lengths))


def clipped_surrogate(
    logprobs: torch.Tensor,  # (B, T) under the current policy
    old_logprobs: torch.Tensor,  # (B, T) under the policy that sampled
    advantages: torch.Tensor,  # (B,) one per sample, or (B, T)
    mask: torch.Tensor,  # (B, T) 1 for response tokens
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    dual_clip: float | None = 3.0,
    agg: LossAgg = "token-mean",
) -> tuple[torch.Tensor, dict[str, float]]:
    """The PPO clipped policy-gradient loss and its statistics (clip fraction and ratio, both
    per token whatever the aggregation)."""
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
    return aggregate(pg, mask, agg), stats


def k3_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(π‖π_ref), clamped to [−10, 10] as verl does."""
    log_ratio = ref_logprobs - logprobs  # (B, T)
    return (torch.exp(log_ratio) - log_ratio - 1).clamp(-10, 10)
