"""The Mem-α reward terms and their combination (MEMALPHA_SPEC §3), as pure functions.

For trajectory i and chunk t:  reward[i,t] = r1_i + w·r2[i,t] + β·r3_i + γ·r4[i,t] + a·r5[i,t]
  r1  QA correctness: mean score of the final memory's answers (trajectory level)
  r2  tool-call success: fraction of the chunk's calls that succeeded (skipped = failed);
      its weight w is 1 as published unless `call_weight` says otherwise
  r3  compression: 1 − memory tokens / input tokens (trajectory level; may be negative)
  r4  content validity: mean judge score of the chunk's calls
  r5  aim (not in the paper; weight a = `aim_weight`, 0 by default): how well the chunk's
      update and delete calls land on the entries stating values it overwrites (`aim_reward`,
      counted by `memalpha.aim`)
A chunk with no calls gets `no_call_r2` / `no_call_r4` (published: 0 for both).

`qa_credit: evidence` (not in the paper) gives each chunk its own r1: the mean score of the
questions whose answer lies in that chunk (`QA.evidence_chunks`). A question without evidence
counts for every chunk; a chunk that no question points at keeps the trajectory's r1.

`stale_credit` (not in the paper) scales the QA score of a question whose final memory still
states a value the input overwrote (`QA.superseded`; fate `both` or `old`): an extractive reader
may pick the new value beside the old one, an LLM reader shown both often answers the old.

`cr_score: fate` (not in the paper) scores such a question by what the memory holds of the
changes it depends on, not by the training reader's answer: the fraction of them overwritten
(new value kept, old one gone). The extractive training reader cannot chain the two hops of a
multi-hop conflict question and scores it 0 from any memory, so without this half of the
conflict questions give GRPO no signal (benchmarks/training_reader.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

AimQuiet = Literal["restrain", "free"]  # RewardConfig.aim_quiet
AimMisses = Literal["charged", "free", "fate"]  # RewardConfig.aim_misses
KeepCharge = Literal["share", "fact"]  # RewardConfig.keep_charge


class RewardConfig(BaseModel):
    """Weights of the reward terms."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    call_weight: float = Field(
        1.0,
        ge=0,
        description="w, weight of r2 (tool-call success); the published code fixes it at 1. "
        "r2 is per chunk and swings 0 to 1, r1 is shared by a trajectory's chunks: at w = 1 "
        "the chunk-level r2 dominates the advantage (SPEC §8.2), below 1 QA does.",
    )

    beta: float = Field(
        0.05,
        description="β, weight of r3 (compression); paper main run 0.05, "
        "ablations 0, 0.2, 0.4 — SPEC §3.3.",
    )
    branch_beta: float = Field(
        0.0,
        ge=0,
        description="β of branch groups (ppo.group_by: branch), which ignore `beta`: the "
        "weight of a branch's r3 there, 1 − (tokens its response added to memory) / (tokens "
        "of its chunk), so that of two responses that keep the same facts the one that stores "
        "fewer tokens ranks higher, and an update (the old entry rewritten) above an insert "
        "beside it. Why: branch groups scored on aim and keep grew the quickstart writer's "
        "memory by 28-47% with no QA gain. Measured at 1, with failed calls free or charged "
        "(call_weight 1, no_call_r2 1) and with GRPO's advantages undivided (ppo.scale_by_std "
        "false): one seed of two collapsed into looping, failing calls after tie-breaks by the "
        "price alone; the unpriced seed did not (benchmarks/RESULTS.md, 'Undivided "
        "advantages').",
    )
    gamma: float = Field(
        0.1,
        description="γ, weight of r4 (content validity); paper main run "
        "0.1, ablation 0 — SPEC §3.4.",
    )
    no_call_r2: float = Field(0.0, description="r2 of a chunk with no tool calls; published 0.")
    no_call_r4: float = Field(0.0, description="r4 of a chunk with no tool calls; published 0.")
    qa_credit: Literal["trajectory", "evidence"] = Field(
        "trajectory",
        description="Which questions a chunk's r1 averages: all of them, shared by every chunk "
        "(trajectory, published), or those whose evidence lies in that chunk (evidence). "
        "Evidence credit stops a chunk being rewarded or blamed for another chunk's writing; "
        "pair it with ppo.group_by: step, so that chunks are compared with the same chunk "
        "of the other rollouts.",
    )
    stale_credit: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Factor on the QA score of a question whose final memory still states a "
        "value the input overwrote (QA.superseded): 1 ignores stale values (published); 0 "
        "counts such an answer wrong, so that only updating or deleting the old value pays.",
    )
    aim_weight: float = Field(
        0.0,
        ge=0,
        description="a, weight of r5 (aim, not in the paper): per chunk, the overlap of its "
        "update/delete calls with the changes it announces whose old value memory states "
        "(memalpha.aim). A per-call signal where the final memory's score is one number per "
        "trajectory. It counts every update of data without marked changes as a miss.",
    )
    keep_weight: float = Field(
        0.0,
        ge=0,
        description="k, weight of r6 (keep, not in the paper): per chunk, the share of the "
        "facts the questions depend on that the chunk brings or memory held as it began which "
        "memory states as it ends (memalpha.aim). It charges deleting or rewriting away what "
        "memory held and storing nothing a chunk brings, which r5 does not score. Branch "
        "groups only (ppo.group_by: branch). With groups at every chunk it stopped the memory "
        "shrinking and raised QA, but the writer stopped updating (benchmarks/RESULTS.md, "
        "'Keeping facts').",
    )
    keep_charge: KeepCharge = Field(
        "share",
        description="How r6 counts the facts a chunk leaves unstated: as a share of the facts "
        "it must account for, kept / due (share), or one whole point a fact, 1 − (due − kept), "
        "so that at keep_weight 1 a response that resolves a wanted change (worth up to 1 in "
        "r5) and loses another fact does no better than one that leaves both alone (fact). "
        "Why: held out, the GRPO writers dropped most of the changed facts they gave up at "
        "branch-group chunks where another change was resolved; under share a lost fact cost "
        "keep_weight / due, about a twelfth of what the resolution paid (benchmarks/RESULTS.md, "
        "'Where the lost facts go').",
    )
    aim_quiet: AimQuiet = Field(
        "restrain",
        description="r5 at a chunk that wants no change: 1 if it updates and deletes nothing, "
        "0 if it does (restrain), or 1 whatever it calls (free), so that only keep (r6) "
        "charges a call there, and only when it removes a fact the questions depend on. Why: "
        "branch groups at every chunk scored on restrain and keep stopped updating at all; "
        "quiet chunks outnumber change chunks. Measured: on free too (benchmarks/RESULTS.md, "
        "'Guided branch groups').",
    )
    aim_misses: AimMisses = Field(
        "charged",
        description="r5 at a chunk that wants a change: the overlap hits / (aimed + wanted − "
        "hits), which charges a call that misses as much as a change left undone (charged), or "
        "the recall hits / wanted (free), so that a miss costs only through keep (r6), when it "
        "removes a fact the questions depend on. Why: branch groups scored on the overlap "
        "learned to call less, not to aim better, when their warm start missed with about two "
        "aimed calls in three (benchmarks/RESULTS.md, 'GRPO from the ids-after warm start'). "
        "Or the share of the wanted changes memory holds overwritten (the new value stated, the "
        "old one not) as the chunk ends, whatever was called (fate): a miss costs only when it "
        "deletes or garbles a wanted change, a hit pays only when the new value stands. Why: "
        "scored on recall, groups of 8 learned to call more for the same hits and lost facts "
        "(benchmarks/RESULTS.md, 'Groups of 8 at change chunks').",
    )
    aim_delete: Literal["named", "replaced"] = Field(
        "named",
        description="when a delete hits a wanted change in r5: 'named', when it names an entry "
        "stating the old value; 'replaced', only when by the chunk's end some entry states the "
        "new value too (memalpha.aim, deletes_need_new). Branch groups scored on 'named' "
        "learned to delete widely and lose the changed facts; 'replaced' alone did not stop "
        "that (benchmarks/RESULTS.md, 'Branch groups in 64-token chunks').",
    )
    cr_score: Literal["reader", "fate"] = Field(
        "reader",
        description="How a question with overwritten values (QA.superseded) is scored: by the "
        "reader's answer (reader, published) or by the fraction of its changed facts the final "
        "memory holds overwritten, new value only (fate), whatever the reader answered.",
    )
    truncation_penalty: float = Field(
        0.0,
        ge=0,
        description="Subtracted from a training sample's reward when its response was cut "
        "short, at max_new_tokens or by the loop stop (not in the paper; published 0). Why: "
        "with r2 unweighted nothing else charges length, and a branch-group run learned to "
        "call more each step until 89% of its responses were cut (benchmarks/RESULTS.md, "
        "'Branch groups'). Local trainer only; the verl trainer refuses it.",
    )

    @property
    def deletes_need_new(self) -> bool:
        """`aim_delete` as `memalpha.aim` takes it."""
        return self.aim_delete == "replaced"


@dataclass(frozen=True, slots=True)
class RewardTerms:
    """Every term of one (trajectory, chunk) sample, kept apart for logging."""

    r1: float
    r2: float
    r3: float
    r4: float
    w_r2: float
    beta_r3: float
    gamma_r4: float
    total: float
    r5: float = 0.0
    aim_r5: float = 0.0
    r6: float = 0.0
    keep_r6: float = 0.0


def stale_adjusted(score: float, stale: bool, credit: float) -> float:
    """A question's QA score after `stale_credit`: scaled when the memory still holds an
    overwritten value the question depends on."""
    return score * credit if stale else score


def fate_score(fates: list[str]) -> float:
    """A conflict question's score under `cr_score: fate`: the fraction of the changes it
    depends on that the memory holds overwritten."""
    return sum(f == "overwritten" for f in fates) / len(fates) if fates else 0.0


def qa_reward(scores: list[float]) -> float:
    """r1: mean QA score; 0 for an instance without questions (nothing was answered)."""
    return sum(scores) / len(scores) if scores else 0.0


def call_success_reward(successes: list[bool], *, no_calls: float = 0.0) -> float:
    """r2 of one chunk: the fraction of its calls that succeeded."""
    return sum(successes) / len(successes) if successes else no_calls


def compression_reward(memory_tokens: int, input_tokens: int) -> float:
    """r3: 1 − |memory| / |input|, both counted with the same tokenizer.

    Raises:
        ValueError: `input_tokens` is not positive (compression is undefined).
    """
    if input_tokens <= 0:
        raise ValueError(f"input_tokens must be positive, got {input_tokens}")
    return 1.0 - memory_tokens / input_tokens


def chunk_compression_reward(before_tokens: int, after_tokens: int, chunk_tokens: int) -> float:
    """r3 of one branch response: 1 − (tokens it added to memory) / (tokens of its chunk);
    above 1 when it removed more than it added.

    Raises:
        ValueError: `chunk_tokens` is not positive.
    """
    if chunk_tokens <= 0:
        raise ValueError(f"chunk_tokens must be positive, got {chunk_tokens}")
    return 1.0 - (after_tokens - before_tokens) / chunk_tokens


def validity_reward(judge_scores: list[float], *, no_calls: float = 0.0) -> float:
    """r4 of one chunk: the mean judge score of its calls."""
    return sum(judge_scores) / len(judge_scores) if judge_scores else no_calls


def aim_reward(
    hits: int,
    aimed: int,
    wanted: int,
    quiet: AimQuiet = "restrain",
    misses: AimMisses = "charged",
    resolved: int = 0,
) -> float:
    """r5 of one chunk: hits / (calls that aimed + changes wanted − hits), the overlap of what
    it changed with what it should have, or hits / wanted when `misses` are free, or resolved
    / wanted under `fate` (`resolved`: the wanted changes memory holds overwritten as the
    chunk ends); 1 for a chunk that wanted and aimed at nothing, and for a chunk that wanted
    nothing whatever it aimed at when `quiet` is free.

    Raises:
        ValueError: more hits than aimed calls or wanted changes, more resolved than wanted
            changes, or a negative count.
    """
    if min(hits, aimed, wanted, resolved) < 0 or hits > min(aimed, wanted) or resolved > wanted:
        raise ValueError(
            f"aim counts out of range: {hits} hits, {aimed} aimed, {wanted} wanted, "
            f"{resolved} resolved"
        )
    if not wanted and quiet == "free":
        return 1.0
    if wanted and misses == "free":
        return hits / wanted
    if wanted and misses == "fate":
        return resolved / wanted
    union = aimed + wanted - hits
    return hits / union if union else 1.0


CUT_SHORT = ("length", "loop")  # Generation.finish_reason of a response that did not end itself


def sample_reward(total: float, finish_reason: str, reward: RewardConfig) -> float:
    """What GRPO compares a sample on: its terms' total, less `truncation_penalty` when the
    response was cut short."""
    return total - reward.truncation_penalty * (finish_reason in CUT_SHORT)


def combine(
    r1: float,
    r2: float,
    r3: float,
    r4: float,
    *,
    beta: float,
    gamma: float,
    call_weight: float = 1.0,
    r5: float = 0.0,
    aim_weight: float = 0.0,
    r6: float = 0.0,
    keep_weight: float = 0.0,
) -> RewardTerms:
    """r1 + w·r2 + β·r3 + γ·r4 + a·r5 + k·r6, with every term kept."""
    w2, b3, g4, a5, k6 = (
        call_weight * r2,
        beta * r3,
        gamma * r4,
        aim_weight * r5,
        keep_weight * r6,
    )
    return RewardTerms(r1, r2, r3, r4, w2, b3, g4, r1 + w2 + b3 + g4 + a5 + k6, r5, a5, r6, k6)


def chunk_qa_rewards(scores: list[float], evidence: list[list[int]], n_chunks: int) -> list[float]:
    """r1 of each chunk under evidence credit (see the module doc). Evidence indices outside
    0..n_chunks−1 are ignored; a question left with none counts for every chunk.

    Raises:
        ValueError: `scores` and `evidence` differ in length.
    """
    if len(scores) != len(evidence):
        raise ValueError(f"{len(scores)} QA scores but {len(evidence)} evidence lists")
    per_chunk: list[list[float]] = [[] for _ in range(n_chunks)]
    for score, chunks in zip(scores, evidence, strict=True):
        inside = {c for c in chunks if 0 <= c < n_chunks} or range(n_chunks)
        for c in inside:
            per_chunk[c].append(score)
    whole = qa_reward(scores)
    return [qa_reward(s) if s else whole for s in per_chunk]


def trajectory_rewards(
    qa_scores: list[float],
    chunk_successes: list[list[bool]],
    chunk_judge_scores: list[list[float]],
    memory_tokens: int,
    input_tokens: int,
    config: RewardConfig,
    evidence: list[list[int]] | None = None,
    chunk_aims: list[float] | None = None,
) -> list[RewardTerms]:
    """One `RewardTerms` per chunk of a trajectory (one training sample each, SPEC §3.5).
    `evidence` (each question's evidence chunks) is needed for `qa_credit: evidence`;
    `chunk_aims` (each chunk's r5) for logging aim and for `aim_weight` > 0.

    Raises:
        ValueError: the per-chunk lists differ in length, `input_tokens` ≤ 0, evidence
            credit is asked for without one evidence list per question, or aim is weighted
            without each chunk's r5.
    """
    n = len(chunk_successes)
    if n != len(chunk_judge_scores):
        raise ValueError(
            f"{n} chunks of call results but {len(chunk_judge_scores)} of judge scores"
        )
    if chunk_aims is None and config.aim_weight:
        raise ValueError("aim_weight > 0 needs each chunk's aim (r5)")
    aims = chunk_aims if chunk_aims is not None else [0.0] * n
    if len(aims) != n:
        raise ValueError(f"{n} chunks of call results but {len(aims)} aim scores")
    if config.qa_credit == "evidence":
        if evidence is None:
            raise ValueError("qa_credit 'evidence' needs the questions' evidence chunks")
        r1s = chunk_qa_rewards(qa_scores, evidence, n)
    else:
        r1s = [qa_reward(qa_scores)] * n
    r3 = compression_reward(memory_tokens, input_tokens)
    return [
        combine(
            r1,
            call_success_reward(ok, no_calls=config.no_call_r2),
            r3,
            validity_reward(judged, no_calls=config.no_call_r4),
            beta=config.beta,
            gamma=config.gamma,
            call_weight=config.call_weight,
            r5=r5,
            aim_weight=config.aim_weight,
        )
        for r1, ok, judged, r5 in zip(r1s, chunk_successes, chunk_judge_scores, aims, strict=True)
    ]
