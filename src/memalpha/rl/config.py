"""Configs of the local trainer and the supervised warm start. Defaults are the published
hyper-parameters (MEMALPHA_SPEC §4.3) wherever one exists; `configs/train/*.yaml` override them."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from memalpha.agent import WriterConfig, WriterStyle
from memalpha.data import BuildConfig
from memalpha.llm import ModelConfig, Threads
from memalpha.reader import JudgeConfig, ReaderConfig
from memalpha.reward import RewardConfig
from memalpha.rl.advantages import GroupBy
from memalpha.rl.branches import BranchChunks
from memalpha.rl.loss import LossAgg
from memalpha.rollout import RolloutConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    """Instances to train and validate on: built from raw data and/or read from files."""

    train: list[BuildConfig] = Field(default_factory=list)
    val: list[BuildConfig] = Field(default_factory=list)
    train_files: list[Path] = Field(default_factory=list, description=".jsonl/.parquet files.")
    val_files: list[Path] = Field(default_factory=list)


class OptimConfig(_Strict):
    """AdamW with linear warm-up then a constant rate (published `warmup_style: constant`)."""

    lr: float = Field(1e-6, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_ratio: float = Field(0.05, ge=0, le=1, description="Share of steps spent warming up.")
    grad_clip: float = Field(1.0, gt=0)


class PPOConfig(_Strict):
    """The policy update (SPEC §4.3)."""

    group_by: GroupBy = Field(
        GroupBy.INSTANCE,
        description="GRPO groups (memalpha.rl.advantages): instance (published), step (one "
        "chunk index of an instance's rollouts) or branch (G responses to one chunk from one "
        "shared memory state, at the chunks that want a change; memalpha.rl.branches; local "
        "trainer only).",
    )
    branch_chunks: BranchChunks = Field(
        "changes",
        description="Where branch groups form: at the chunks that want a change, or at every "
        "chunk, where a chunk that wants nothing scores a response 1 if it updates and deletes "
        "nothing and 0 if it does (r5), the restraint groups at changes alone never teach "
        "(they taught deleting widely in 64-token chunks; benchmarks/RESULTS.md); or at the "
        "chunks that want a change and at the quiet chunks whose greedy response leaves a due "
        "fact unstated (drops), where a third of the changed facts GRPO writers gave up were "
        "dropped uncharged (benchmarks/RESULTS.md, 'Where the lost facts go'). Not measured.",
    )
    branch_guide: Literal["none", "teacher"] = Field(
        "none",
        description="teacher: at a chunk that wants a change, the last response of the branch "
        "group is the selective rule writer's answer to the same prompt (memalpha.rl.branches."
        "Guide), scored and trained like the sampled ones: off-policy guidance, not in the "
        "paper. Why: the writer rarely samples an update that hits, and without one in the "
        "group nothing teaches updating. Measured: the writer kept updating but aimed worse "
        "than its warm start and lost QA (benchmarks/RESULTS.md, 'Guided branch groups').",
    )
    scale_by_std: bool = Field(
        True,
        description="Divide each group's advantages by its score spread (GRPO, published); "
        "false leaves score − group mean (Dr. GRPO; memalpha.rl.advantages), so groups weigh "
        "in a step by their score gaps, not one spread each. It does not make a small gap a "
        "small step: AdamW sets a step's length by the learning rate whatever the advantages' "
        "scale. Measured on the priced quickstart recipe: seed 1 moved its weights as far "
        "(0.115 against 0.122 after 4 steps, cosine 0.78) and collapsed too, a step earlier "
        "in training, less deeply held out (benchmarks/RESULTS.md, 'Undivided advantages'). "
        "Local trainer only.",
    )
    clip_low: float = Field(0.2, ge=0)
    clip_high: float = Field(0.2, ge=0)
    dual_clip: float | None = Field(3.0, gt=1, description="None disables the dual clip.")
    loss_agg: LossAgg = Field(
        "token-mean",
        description="How token losses make the loss (memalpha.rl.loss): token-mean over the "
        "mini-batch, seq-mean-token-mean (what the published run computed: a token mean per "
        "micro-batch of one sample, averaged) or seq-mean-token-sum.",
    )
    kl_coef: float = Field(
        0.001, ge=0, description="k3 KL to the frozen start policy; 0 loads no reference model."
    )
    mini_batches: int = Field(1, ge=1, description="Optimizer updates per rollout batch.")
    mini_batch_size: int | None = Field(
        None,
        ge=1,
        description="Samples per optimizer update instead of a fixed count (published: 32, "
        "i.e. ~80 updates per step).",
    )
    micro_batch_size: int = Field(1, ge=1, description="Samples per forward/backward pass.")
    epochs: int = Field(1, ge=1, description="Passes over each rollout batch; published 1.")
    recompute_old_logprobs: bool = Field(
        False,
        description="Off-policy updates (several epochs or mini-batches) only: recompute the "
        "behaviour log-probs with a forward pass instead of using the sampler's (forced when "
        "top_p < 1, the engine is vLLM or the backend gives none). An on-policy update (one "
        "epoch, one mini-batch) takes them from its own forward, detached.",
    )
    autocast_bf16: bool | Literal["auto"] = Field(
        "auto",
        description="bf16 autocast for everything the policy computes (rollouts, old, new and "
        "reference log-probs: one precision); auto: where the device has native bf16 (CUDA, "
        "CPUs with AMX/AVX512-BF16). Master weights stay in policy.dtype.",
    )
    gradient_checkpointing: bool = False
    train_chunks: Literal["all", "changes"] = Field(
        "all",
        description="Which chunk samples the update trains on: all (published) or changes, "
        "only the chunks that announce a change some question depends on (memalpha.aim; "
        "not in the paper). Advantages are computed before the others are dropped, so with "
        "group_by: step the kept groups are unchanged. Why: a reward on aim (reward.aim_weight) "
        "also pays chunks that change nothing for calling less, which is what it taught "
        "(benchmarks/RESULTS.md). Local trainer only; the verl trainer refuses it.",
    )


class LoraConfig(_Strict):
    """Optional LoRA adapters via peft (small machines); merged into exported policies."""

    enabled: bool = False
    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )


class ScheduleConfig(_Strict):
    """When to validate and checkpoint."""

    steps: int = Field(40, ge=1, description="Training steps (rollout batch + update each).")
    val_every: int = Field(10, ge=1)
    val_before_train: bool = True
    save_every: int = Field(10, ge=1, description="Checkpoint period; validation steps save too.")
    keep_last: int = Field(2, ge=1, description="Checkpoints kept besides the best one.")


class _WriterRun(WriterStyle):
    """What the warm start and the trainer share: the policy, how it writes (format, prompt
    and memory, from `WriterStyle`), on what data."""

    seed: int = 0
    threads: Threads = None
    policy: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    lora: LoraConfig = Field(default_factory=LoraConfig)
    train_layers: int | None = Field(
        None,
        ge=1,
        description="Train only the top N transformer layers (and the final norm); backward "
        "then stops there: ~1.8x cheaper GRPO updates on CPUs with N = a third of the layers. "
        "In the warm start a third cost QA, two thirds did not (benchmarks/RESULTS.md). "
        "Excludes lora.enabled.",
    )

    def writer_with_budget(self, max_new_tokens: int) -> WriterConfig:
        return WriterConfig(
            format=self.format,
            prompt=self.prompt,
            memory=self.memory,
            loop_stop=self.loop_stop,
            max_new_tokens=max_new_tokens,
        )


class TrainConfig(_WriterRun):
    """Everything one `memalpha train` run needs."""

    out_dir: Path = Path("runs/train")
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    val_max_new_tokens: int | None = Field(
        None, description="Writer budget at validation (greedy); None: the rollout budget."
    )
    reward: RewardConfig = Field(default_factory=RewardConfig)
    reader: ReaderConfig = Field(default_factory=ReaderConfig)
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    ppo: PPOConfig = Field(default_factory=PPOConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)

    @property
    def writer(self) -> WriterConfig:
        """The writer as rollouts drive it (budget: `rollout.max_new_tokens`)."""
        return self.writer_with_budget(self.rollout.max_new_tokens)

    @property
    def val_writer(self) -> WriterConfig:
        """The writer as validation drives it (budget: `val_max_new_tokens`, else the
        rollout's)."""
        return self.writer_with_budget(self.val_max_new_tokens or self.rollout.max_new_tokens)

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.policy.backend != "transformers":
            raise ValueError(
                "the local trainer updates weights in-process: policy.backend must be "
                "'transformers' (served rollouts train through the verl integration)"
            )
        if self.ppo.group_by is GroupBy.BRANCH:
            if self.reward.aim_weight <= 0:
                raise ValueError(
                    "ppo.group_by=branch scores each branch by its chunk's aim (r5): set "
                    "reward.aim_weight > 0"
                )
            if self.rollout.group_size < 2:
                raise ValueError("ppo.group_by=branch needs rollout.group_size >= 2")
            if self.ppo.branch_guide != "none" and self.rollout.group_size < 3:
                raise ValueError(
                    "ppo.branch_guide replaces one sampled branch: it needs "
                    "rollout.group_size >= 3, so that a group still holds a sampled one"
                )
        elif self.ppo.branch_guide != "none":
            raise ValueError("ppo.branch_guide guides branch groups: set ppo.group_by=branch")
        elif self.reward.keep_weight > 0:
            raise ValueError(
                "reward.keep_weight scores branch groups only: set ppo.group_by=branch, or "
                "keep_weight 0"
            )
        elif self.reward.branch_beta > 0:
            raise ValueError(
                "reward.branch_beta prices memory in branch groups only (whole trajectories "
                "use reward.beta): set ppo.group_by=branch, or branch_beta 0"
            )
        return self


class SFTConfig(_WriterRun):
    """The supervised warm start on teacher transcripts."""

    out_dir: Path = Path("runs/sft")
    transcripts: Path | None = Field(
        None,
        description="Recorded episodes (JSONL of {messages, response}) "
        "instead of the rule-based teacher.",
    )
    examples: int = Field(96, ge=1, description="Training examples (chunk transcripts) to use.")
    teacher: Literal["rule", "selective"] = Field(
        "rule",
        description="The rule-based teacher: 'rule' stores every sentence (the baseline "
        "writer); 'selective' drops chatter and updates or deletes changed facts, so the warm "
        "start uses every tool (memalpha.agent.rule_writer).",
    )
    teacher_id_last: bool = Field(
        False,
        description="The selective teacher writes what a change says before the id of the "
        "entry it replaces: an update's new_content before its memory_id, a changed employer's "
        "insert before the delete. The id then follows the subject's name rather than "
        "preceding it (memalpha.agent.rule_writer.selective_calls).",
    )
    teacher_states: Literal["teacher", "policy"] = Field(
        "teacher",
        description="Whose memory the transcripts' prompts show. 'teacher': the teacher writes "
        "every chunk and answers its own prompts. 'policy': `policy.model` writes every chunk "
        "(greedily) and the teacher answers each prompt that policy met (DAgger, Ross et al. "
        "2011), so the examples are the memory states the policy itself reaches; for a "
        "second-stage warm start from a first one.",
    )
    aim_weight: float = Field(
        1.0,
        ge=1.0,
        description="Loss weight of the target tokens that name the entry a semantic or "
        "episodic memory_update or memory_delete rewrites (its memory_id), against 1 for every "
        "other token. They are under 1% of a selective teacher's tokens, so at 1 the mean loss "
        "barely sees them: a warm start that copies facts well can still aim at the wrong entry.",
    )
    aimed_repeats: int = Field(
        1,
        ge=1,
        description="Times each transcript whose response calls memory_update or memory_delete "
        "(the first chunk's core-memory set included) appears in an epoch, against once for "
        "the rest. In the quickstart's 79 transcripts those calls are the core sets of the 16 "
        "first chunks and the changes of 19 others; one epoch at 1 set core memory in 2 of 12 "
        "held-out memories, at 3 in 12 of 12 (benchmarks/RESULTS.md).",
    )
    teacher_max_sentences: int | None = Field(
        40,
        ge=1,
        description="The rule teacher's per-chunk cap on stored sentences, so that its "
        "transcripts fit max_new_tokens; None: every sentence, as the rule-writer baseline.",
    )
    epochs: int = Field(1, ge=1)
    autocast_bf16: bool | Literal["auto"] = Field(
        False,
        description="bf16 autocast for the forward and backward passes (master weights stay in "
        "policy.dtype); auto: where the device has native bf16. Off by default: the shipped "
        "warm starts were trained in fp32.",
    )
    batch_size: int = Field(4, ge=1, description="Examples per optimizer step.")
    micro_batch_size: int = Field(1, ge=1)
    max_new_tokens: int = Field(
        1024, ge=1, description="Writer budget: longer teacher responses are dropped, not cut."
    )
    optim: OptimConfig = Field(
        default_factory=lambda: OptimConfig(lr=1e-4, warmup_ratio=0.1, weight_decay=0.0)
    )

    @property
    def writer(self) -> WriterConfig:
        return self.writer_with_budget(self.max_new_tokens)
