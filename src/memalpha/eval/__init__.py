"""Evaluation of memory methods: one command, the same reader and metrics for every method."""

from memalpha.eval.config import EvalConfig, MethodConfig
from memalpha.eval.runner import read_calls, read_memories, read_rows, run_eval
from memalpha.eval.stats import bootstrap_interval, paired_difference
from memalpha.eval.summary import (
    by_instance,
    compare_runs,
    comparison_markdown,
    merge_runs,
    save_summary,
    summarize,
    write_summary,
)

__all__ = [
    "EvalConfig",
    "MethodConfig",
    "bootstrap_interval",
    "by_instance",
    "compare_runs",
    "comparison_markdown",
    "merge_runs",
    "paired_difference",
    "read_calls",
    "read_memories",
    "read_rows",
    "run_eval",
    "save_summary",
    "summarize",
    "write_summary",
]
