"""Runs parsed tool calls against a memory. The model's mistakes become `ToolResult`s with a
reason (they feed r2); only our own failures, such as a store that cannot write, raise."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from memalpha.errors import DuplicateEntryError, MemoryOperationError, ToolCallError
from memalpha.memory.config import Component
from memalpha.memory.model import Change, Memory
from memalpha.memory.tools import MEMORY_TYPE, ToolRegistry


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call as parsed from model output; `arguments` may still be a raw JSON string."""

    name: str
    arguments: dict[str, Any] | str


class CallStatus(StrEnum):
    OK = "ok"
    SKIPPED = "skipped"  # exact duplicate insert: nothing stored, counts as a failed call (r2)
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What one call did: status, the entry it touched, and a reason when it failed."""

    call: ToolCall
    status: CallStatus
    component: Component | None = None
    entry_id: str | None = None
    message: str = ""
    error: type[Exception] | None = None  # the refusing exception's type (UnknownEntryError…)
    change: Change | None = None  # what the call committed (None unless it succeeded)

    @property
    def ok(self) -> bool:
        """True only for calls that changed the memory as asked (the r2 success test)."""
        return self.status is CallStatus.OK


class ToolExecutor:
    """Executes calls on memories, checking them against the registry's schemas."""

    def __init__(self, registry: ToolRegistry) -> None:
        self.registry = registry

    def execute(self, memory: Memory, call: ToolCall) -> ToolResult:
        """Run one call. Never raises on bad model output.

        Raises:
            StoreError: the memory's journal could not persist the change (memory unchanged).
        """
        try:
            args = self.registry.arguments(call.name, call.arguments)
            component: Component = args[MEMORY_TYPE]
            entry_id = clean_entry_id(args.get("memory_id"))
            if call.name == "new_memory_insert":
                change = Change("insert", component, memory.insert(component, args["content"]))
                message = "inserted"
            elif call.name == "memory_update":
                entry = memory.update(component, args["new_content"], entry_id)
                change = Change("update", component, entry)
                message = (
                    "updated" if entry.content == args["new_content"] else "updated (truncated)"
                )
            else:
                change = Change("delete", component, memory.delete(component, entry_id))
                message = "deleted"
        except DuplicateEntryError as exc:
            return ToolResult(
                call,
                CallStatus.SKIPPED,
                Component(exc.component),
                exc.existing_id,
                str(exc),
                type(exc),
            )
        except (ToolCallError, MemoryOperationError) as exc:
            return ToolResult(call, CallStatus.ERROR, message=str(exc), error=type(exc))
        return ToolResult(call, CallStatus.OK, component, change.entry.id, message, change=change)

    def execute_all(self, memory: Memory, calls: list[ToolCall]) -> list[ToolResult]:
        """Run calls in the order they were generated, each seeing the previous ones' effects."""
        return [self.execute(memory, call) for call in calls]


def clean_entry_id(value: str | None) -> str | None:
    """Accept an id as the view prints it ('[s12]') or with stray spaces."""
    return value.strip().strip("[]").strip() if isinstance(value, str) else value
