"""verl V1 samples as memalpha's (trajectory, chunk) samples: their rewards and advantages.

verl 0.9's V1 trainer stores each output of an agent loop under the key
`{uid}_{session}_{index}`: uid is the dataset row (one instance; its `rollout.n` copies share
it), session the rollout, index the output's position, here the chunk. It scores only a
trajectory's last output and copies that reward to the others, and its stock GRPO step gives
every output its trajectory's advantage. The published method wants each chunk sample rewarded
with its own chunk's terms and normalised within the instance's group of chunk samples
(MEMALPHA_SPEC §4.2), which is what the local trainer does; this module computes exactly that
from what verl stored, with the local trainer's own `group_keys` and `group_advantages`.
Padding samples (verl adds them to fill data-parallel ranks; tag `is_padding`) get reward 0
and advantage 0 and join no group.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from memalpha.errors import DataError
from memalpha.reward import RewardTerms
from memalpha.rl.advantages import GroupBy, group_advantages, group_keys, share_with_spread
from memalpha.rl.verl.reward_fn import TERMS_KEY, decode_terms

CHUNK_KEY = "memalpha_chunk"
"""extra_fields key: the chunk an agent-loop output is the sample of."""


@dataclass(frozen=True, slots=True)
class SampleKey:
    uid: str
    session: int
    index: int

    @classmethod
    def parse(cls, key: str) -> SampleKey:
        """Raises: DataError: `key` is not `{uid}_{session}_{index}`."""
        uid, _, rest = key.rpartition("_")
        uid, _, session = uid.rpartition("_")
        if not uid or not session.isdigit() or not rest.isdigit():
            raise DataError(f"verl sample key {key!r} is not '{{uid}}_{{session}}_{{index}}'")
        return cls(uid, int(session), int(rest))


@dataclass(frozen=True, slots=True)
class ChunkAdvantages:
    """Per sample, in the batch's order: its chunk's total reward and its advantage; and, to
    check that every chunk became a sample, the samples and the chunks of their trajectories."""

    scores: list[float]
    advantages: list[float]
    groups_with_variance: float
    samples: int
    trajectory_chunks: int


def chunk_terms(
    keys: Sequence[str], padding: Sequence[bool], extra_fields: Sequence[Mapping[str, Any]]
) -> tuple[list[RewardTerms | None], dict[tuple[str, int], int]]:
    """Each sample's own reward terms (None for padding), and each trajectory's chunk count.

    Raises:
        DataError: a sample was not written by the memalpha agent loop and reward function,
            or its key's index is not the chunk it holds.
    """
    out: list[RewardTerms | None] = []
    chunks: dict[tuple[str, int], int] = {}
    for key, pad, fields in zip(keys, padding, extra_fields, strict=True):
        if pad:
            out.append(None)
            continue
        sample = SampleKey.parse(key)
        info = fields.get("reward_extra_info") or {}
        if TERMS_KEY not in info or fields.get(CHUNK_KEY) != sample.index:
            raise DataError(
                f"verl sample {key!r} carries no memalpha chunk rewards (chunk "
                f"{fields.get(CHUNK_KEY)!r}, reward keys {sorted(info)}): train with the "
                "memalpha_writer agent loop and memalpha's compute_score"
            )
        terms = decode_terms(info[TERMS_KEY])
        if sample.index >= len(terms):
            raise DataError(f"verl sample {key!r}: chunk {sample.index} of {len(terms)} scored")
        out.append(terms[sample.index])
        chunks[sample.uid, sample.session] = len(terms)
    return out, chunks


def chunk_advantages(
    keys: Sequence[str],
    padding: Sequence[bool],
    extra_fields: Sequence[Mapping[str, Any]],
    group_by: GroupBy,
) -> ChunkAdvantages:
    """Rewards and GRPO advantages as `memalpha train` computes them (see the module doc)."""
    terms, chunks = chunk_terms(keys, padding, extra_fields)
    real = [i for i, t in enumerate(terms) if t is not None]
    parsed = [SampleKey.parse(keys[i]) for i in real]
    groups: list[Hashable] = group_keys(
        [p.uid for p in parsed], [p.index for p in parsed], group_by
    )
    real_scores = [terms[i].total for i in real]  # type: ignore[union-attr]
    real_advantages = group_advantages(real_scores, groups)
    scores, advantages = [0.0] * len(keys), [0.0] * len(keys)
    for i, score, advantage in zip(real, real_scores, real_advantages, strict=True):
        scores[i], advantages[i] = score, advantage
    spread = share_with_spread(real_scores, groups)
    return ChunkAdvantages(scores, advantages, spread, len(real), sum(chunks.values()))
