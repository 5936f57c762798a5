"""GRPO for the memory writer: advantages, the policy loss, the local trainer with checkpoints
and exact resume, the supervised warm start, plots, and the verl integration's dataset writer.
Training only: nothing outside rl/ but the training commands and the quickstart imports it."""

from memalpha.rl.advantages import GroupBy, group_advantages, group_keys
from memalpha.rl.checkpoint import list_checkpoints, read_state
from memalpha.rl.config import DataConfig, SFTConfig, TrainConfig
from memalpha.rl.loss import aggregate, clipped_surrogate, k3_kl, token_mean
from memalpha.rl.parts import load_instances
from memalpha.rl.plot import plot_run
from memalpha.rl.sft import run_sft
from memalpha.rl.trainer import Trainer, read_metrics
from memalpha.rl.verl import write_verl_parquet

__all__ = [
    "DataConfig",
    "GroupBy",
    "SFTConfig",
    "TrainConfig",
    "Trainer",
    "aggregate",
    "clipped_surrogate",
    "group_advantages",
    "group_keys",
    "k3_kl",
    "list_checkpoints",
    "load_instances",
    "plot_run",
    "read_metrics",
    "read_state",
    "run_sft",
    "token_mean",
    "write_verl_parquet",
]
