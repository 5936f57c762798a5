"""The three-part memory (core, semantic, episodic), its tools, views and durable storage.

Knows nothing of LLMs: the agent turns model output into `ToolCall`s and runs them here.
"""

from memalpha.memory.config import Component, MemoryConfig, ViewConfig
from memalpha.memory.executor import (
    CallStatus,
    ToolCall,
    ToolExecutor,
    ToolResult,
    clean_entry_id,
)
from memalpha.memory.export import (
    EntryRecord,
    MemoryRecord,
    check_limits,
    read_json,
    snapshot_from_dict,
    snapshot_to_dict,
    write_json,
)
from memalpha.memory.history import HistoryRecord, Source
from memalpha.memory.model import Change, ComponentStats, Entry, Memory, MemorySnapshot
from memalpha.memory.sqlite import SessionInfo, SqliteStore
from memalpha.memory.tools import ToolRegistry, ToolSpec, parse_component, published_specs
from memalpha.memory.views import (
    fit_k,
    render_for_config,
    render_memorize_prompt,
    render_memory_state,
)

__all__ = [
    "CallStatus",
    "Change",
    "Component",
    "ComponentStats",
    "Entry",
    "EntryRecord",
    "HistoryRecord",
    "Memory",
    "MemoryConfig",
    "MemoryRecord",
    "MemorySnapshot",
    "SessionInfo",
    "Source",
    "SqliteStore",
    "ToolCall",
    "ToolExecutor",
    "ToolRegistry",
    "ToolResult",
    "ToolSpec",
    "ViewConfig",
    "check_limits",
    "clean_entry_id",
    "fit_k",
    "parse_component",
    "published_specs",
    "read_json",
    "render_for_config",
    "render_memorize_prompt",
    "render_memory_state",
    "snapshot_from_dict",
    "snapshot_to_dict",
    "write_json",
]
