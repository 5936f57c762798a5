"""One GRPO policy update over a rollout batch, and one supervised step, with mini-batches
(optimizer updates) split into micro-batches (gradient accumulation).

The loss is aggregated over a whole mini-batch (`ppo.loss_agg`): each micro-batch's aggregate
is weighted by its share of the mini-batch's response tokens (token-mean) or responses
(sequence means), so accumulation gives the same gradient as one big batch.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator
from typing import Any

import torch

from memalpha.llm import by_length, length_batches
from memalpha.rl.config import PPOConfig
from memalpha.rl.loss import aggregate, aggregation_weight, clipped_surrogate, k3_kl, token_mean
from memalpha.rl.policy import Policy, Trunk, response_logprobs
from memalpha.rollout import Sample, with_old_logprobs


def chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def micro_batches(items: list, size: int, length: Callable[[Any], int]) -> Iterator[list]:
    """`items` in micro-batches of at most `size`, rows of similar `length` together
    (`length_batches`): a padded forward and backward costs the batch's longest row. What a
    mini-batch's micro-batches add up to does not depend on how its rows are grouped."""
    for rows in length_batches([length(x) for x in items], size):
        yield [items[i] for i in rows]


def _sample_tokens(sample: Sample) -> int:
    return len(sample.prompt_ids) + len(sample.response_ids)


def _ref_context(policy: Policy, ref: torch.nn.Module | None):
    """The reference forward: the frozen copy, or the LoRA model with adapters disabled."""
    if ref is not None:
        return ref, contextlib.nullcontext()
    return policy.model, policy.model.disable_adapter()


def _padded(values: list[list[float]], width: int, device: str) -> torch.Tensor:
    out = torch.zeros((len(values), width), dtype=torch.float32)
    for b, v in enumerate(values):
        out[b, : len(v)] = torch.tensor(v, dtype=torch.float32)
    return out.to(device)


@torch.no_grad()
def recompute_old_logprobs(
    policy: Policy, samples: list[Sample], micro: int, temperature: float
) -> list[Sample]:
    """The samples with behaviour log-probs from a forward pass of the current (pre-update)
    weights, in the same precision as the update's own forward passes (`Policy.autocast`)."""
    policy.model.eval()

    def rescored(rows: list[int]) -> list[Sample]:
        part = [samples[i] for i in rows]
        with policy.autocast():
            lp = response_logprobs(policy.model, _batch(policy, part), temperature)
        return [
            with_old_logprobs(s, tuple(lp[b, : len(s.response_ids)].tolist()))
            for b, s in enumerate(part)
        ]

    return by_length([_sample_tokens(s) for s in samples], micro, rescored)


def on_policy(cfg: PPOConfig, n_samples: int) -> bool:
    """Whether every sample's gradient is taken at the weights that sampled it: one epoch and
    one optimizer step over the batch. Then the behaviour log-probs are the update's own
    forward, detached (the ratio is exactly 1, as verl's dp_actor does it), and no pass
    recomputes them nor reads the sampler's."""
    return cfg.epochs == 1 and mini_batch_size(cfg, n_samples) >= n_samples


def mini_batch_size(cfg: PPOConfig, n_samples: int) -> int:
    """Samples per optimizer step: the configured size, or the batch split into
    `mini_batches`."""
    return cfg.mini_batch_size or -(-n_samples // cfg.mini_batches)


def _batch(policy: Policy, samples: list[Sample]) -> dict[str, torch.Tensor]:
    return policy.batch(
        [list(s.prompt_ids) for s in samples], [list(s.response_ids) for s in samples]
    )


def _micro_step(
    policy: Policy,
    ref: torch.nn.Module | None,
    part: list[tuple[Sample, float]],
    cfg: PPOConfig,
    temperature: float,
    share: float,
    own_old: bool,
) -> tuple[dict[str, float], int]:
    """Forward and backward of one micro-batch, its loss scaled by its `share` of the
    mini-batch aggregate; its statistics and its number of response tokens. `own_old`: the
    behaviour log-probs are this forward's, detached (`on_policy`)."""
    batch = _batch(policy, [s for s, _ in part])
    mask = batch["response_mask"]  # (B, R)
    with policy.autocast(), Trunk.of(policy) as trunk:
        lp = response_logprobs(policy.model, batch, temperature)  # (B, R)
    if own_old:
        old = lp.detach()
    else:
        old = _padded([list(s.old_logprobs or ()) for s, _ in part], mask.shape[1], policy.device)
    adv = torch.tensor([a for _, a in part], device=policy.device)  # (B,)
    pg, stats = clipped_surrogate(
        lp,
        old,
        adv,
        mask,
        clip_low=cfg.clip_low,
        clip_high=cfg.clip_high,
        dual_clip=cfg.dual_clip,
        agg=cfg.loss_agg,
    )
    loss = pg
    if cfg.kl_coef > 0:
        model, ctx = _ref_context(policy, ref)
        with torch.no_grad(), ctx, policy.autocast():
            if trunk is not None and ref is not None:  # the frozen layers' output is shared
                ref_lp = trunk.upper_logprobs(ref, batch, temperature)
            else:
                ref_lp = response_logprobs(model, batch, temperature)
        kl = aggregate(k3_kl(lp, ref_lp), mask, cfg.loss_agg)
        loss = loss + cfg.kl_coef * kl
        stats["kl"] = float(kl.detach())
    (loss * share).backward()
    stats["pg_loss"] = float(pg.detach())
    stats["entropy_proxy"] = float(-token_mean(lp.detach(), mask))
    return stats, int(mask.sum())


def grpo_update(
    policy: Policy,
    ref: torch.nn.Module | None,
    optimizer: torch.optim.Optimizer,
    samples: list[Sample],
    advantages: list[float],
    cfg: PPOConfig,
    grad_clip: float,
    temperature: float,
    rng: random.Random,
) -> dict[str, float]:
    """PPO-clip epochs over the samples; returns token-weighted means of the loss statistics.

    Samples with an empty response or zero advantage carry no gradient in the surrogate but
    are kept (they still count in token-mean, as in verl) unless the response is empty.
    """
    pairs = [(s, a) for s, a in zip(samples, advantages, strict=True) if s.response_ids]
    if not pairs:
        return {}
    totals: dict[str, float] = {}
    tokens_seen = 0
    own_old = on_policy(cfg, len(pairs))
    policy.model.train()
    for _ in range(cfg.epochs):
        order = pairs[:]
        rng.shuffle(order)
        for mini in chunks(order, mini_batch_size(cfg, len(order))):
            lengths = [len(s.response_ids) for s, _ in mini]
            mini_weight = aggregation_weight(cfg.loss_agg, lengths)
            optimizer.zero_grad(set_to_none=True)
            for part in micro_batches(mini, cfg.micro_batch_size, lambda x: _sample_tokens(x[0])):
                weight = aggregation_weight(cfg.loss_agg, [len(s.response_ids) for s, _ in part])
                stats, n = _micro_step(
                    policy, ref, part, cfg, temperature, weight / mini_weight, own_old
                )
                for k, v in stats.items():
                    totals[k] = totals.get(k, 0.0) + v * n
                tokens_seen += n
            norm = torch.nn.utils.clip_grad_norm_(
                [p for p in policy.model.parameters() if p.requires_grad], grad_clip
            )
            totals["grad_norm"] = totals.get("grad_norm", 0.0) + float(norm) * sum(lengths)
            optimizer.step()
    # gradients are dead once applied; freed here rather than at the next update, so the
    # next rollout's KV cache does not sit beside a model-sized copy of them (16 GB for a
    # 4B policy: the difference between fitting one 141 GB GPU or not, docs/engines.md)
    optimizer.zero_grad(set_to_none=True)
    policy.model.eval()
    return {k: v / max(1, tokens_seen) for k, v in totals.items()}


SFTExample = tuple[list[int], list[int]] | tuple[list[int], list[int], list[float]]
"""(prompt ids, target ids[, one loss weight per target token]) for `sft_step`."""


def _target_weights(part: list[SFTExample], mask: torch.Tensor) -> torch.Tensor:
    """The response mask with each weighted example's weights in place of its ones."""
    if all(len(x) == 2 for x in part):
        return mask
    weights = mask.clone()
    for row, x in enumerate(part):
        if len(x) == 3:
            weights[row, : len(x[2])] = torch.tensor(x[2], dtype=weights.dtype)
    return weights


def sft_step(
    policy: Policy,
    optimizer: torch.optim.Optimizer,
    examples: list[SFTExample],
    micro_batch_size: int,
    grad_clip: float,
) -> dict[str, float]:
    """One optimizer step of token-mean cross-entropy on (prompt ids, target ids) pairs, each
    target token counted by its weight where an example carries weights (1 otherwise): the
    weighted mean over the step's tokens. Also logs `upweighted_nll`, the plain mean NLL of
    the tokens weighted above 1, where the step has any."""
    policy.model.train()
    optimizer.zero_grad(set_to_none=True)
    total = sum(sum(x[2]) if len(x) == 3 else len(x[1]) for x in examples)
    loss_sum, heavy_nll, heavy_n = 0.0, 0.0, 0.0
    for part in micro_batches(examples, micro_batch_size, lambda x: len(x[0]) + len(x[1])):
        batch = policy.batch([x[0] for x in part], [x[1] for x in part])
        weights = _target_weights(part, batch["response_mask"])
        logprobs = response_logprobs(policy.model, batch)
        nll = -token_mean(logprobs, weights)
        n = float(weights.sum())
        (nll * (n / total)).backward()
        loss_sum += float(nll.detach()) * n
        heavy = (weights > 1).float()
        heavy_nll -= float((logprobs.detach() * heavy).sum())
        heavy_n += float(heavy.sum())
    norm = torch.nn.utils.clip_grad_norm_(
        [p for p in policy.model.parameters() if p.requires_grad], grad_clip
    )
    optimizer.step()
    policy.model.eval()
    stats = {"loss": loss_sum / max(1, total), "grad_norm": float(norm)}
    if heavy_n:
        stats["upweighted_nll"] = heavy_nll / heavy_n
    return stats
