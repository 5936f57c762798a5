"""The memory agent: joins an LLM (or the rule writer) and a memory through tool calls."""

from memalpha.agent.memory_agent import (
    ChunkStep,
    Episode,
    MemoryAgent,
    PromptStyle,
    memorize_user_prompt,
)
from memalpha.agent.rule_writer import RuleWriterLLM, rule_calls

__all__ = [
    "ChunkStep",
    "Episode",
    "MemoryAgent",
    "PromptStyle",
    "RuleWriterLLM",
    "memorize_user_prompt",
    "rule_calls",
]
