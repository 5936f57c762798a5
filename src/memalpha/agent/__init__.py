"""The memory agent: joins an LLM (or the rule writer) and a memory through tool calls; the
writer's one config (`WriterConfig`) and builder (`build_agent`)."""

from memalpha.agent.config import (
    WRITER_FILE,
    ToolFormat,
    WriterConfig,
    WriterStyle,
    build_agent,
    check_trained_layout,
    effective_writer,
    policy_writer,
    read_writer_config,
    save_writer_config,
    selective_teacher,
)
from memalpha.agent.memory_agent import (
    ChunkStep,
    Episode,
    MemoryAgent,
    PromptStyle,
    memorize_user_prompt,
)
from memalpha.agent.rule_writer import RuleWriterLLM, rule_calls

__all__ = [
    "WRITER_FILE",
    "ChunkStep",
    "Episode",
    "MemoryAgent",
    "PromptStyle",
    "RuleWriterLLM",
    "ToolFormat",
    "WriterConfig",
    "WriterStyle",
    "build_agent",
    "check_trained_layout",
    "effective_writer",
    "memorize_user_prompt",
    "policy_writer",
    "read_writer_config",
    "rule_calls",
    "save_writer_config",
    "selective_teacher",
]
