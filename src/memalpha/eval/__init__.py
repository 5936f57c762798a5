"""Evaluation of memory methods: one command, the same reader and metrics for every method."""

from memalpha.eval.config import EvalConfig, MethodConfig
from memalpha.eval.runner import read_rows, run_eval
from memalpha.eval.summary import compare_runs, summarize

__all__ = ["EvalConfig", "MethodConfig", "compare_runs", "read_rows", "run_eval", "summarize"]
