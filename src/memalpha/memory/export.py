"""JSON export and import of one memory: a lossless round trip (content, ids, order and the id
counters), validated with pydantic on the way in. The published `agent_state.json` layout
(`{"core": str, "semantic": [{id: content}], "episodic": [...]}`) is accepted on import too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from memalpha.errors import DataError
from memalpha.memory.config import LIST_COMPONENTS, Component, MemoryConfig
from memalpha.memory.content import content_problem
from memalpha.memory.model import ID_PREFIX, MAX_ID, Entry, MemorySnapshot
from memalpha.tokens import TokenCounter

FORMAT = "memalpha.memory/1"


class EntryRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    content: str


class MemoryRecord(BaseModel):
    """The on-disk form of one memory."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["memalpha.memory/1"] = FORMAT
    core: str = ""
    semantic: list[EntryRecord] = []
    episodic: list[EntryRecord] = []
    next_ids: dict[Literal["semantic", "episodic"], int] = {}

    @field_validator("semantic", "episodic")
    @classmethod
    def _unique_ids(cls, entries: list[EntryRecord]) -> list[EntryRecord]:
        ids = [e.id for e in entries]
        if len(set(ids)) != len(ids):
            raise ValueError("entry ids must be unique within a component")
        return entries


def snapshot_to_dict(snapshot: MemorySnapshot) -> dict[str, Any]:
    record = MemoryRecord(
        core=snapshot.core,
        semantic=[EntryRecord(id=e.id, content=e.content) for e in snapshot.semantic],
        episodic=[EntryRecord(id=e.id, content=e.content) for e in snapshot.episodic],
        next_ids=snapshot.next_ids,
    )
    return record.model_dump(mode="json")


def snapshot_from_dict(data: Any, *, source: str = "<memory>") -> MemorySnapshot:
    """Parse an exported memory (or a published agent_state.json) into a snapshot.

    Raises:
        DataError: the data is neither layout, or an id is malformed or repeated.
    """
    if isinstance(data, dict) and "format" not in data and _is_published(data):
        data = _from_published(data)
    try:
        record = MemoryRecord.model_validate(data)
    except ValidationError as exc:
        raise DataError(f"not a memalpha memory export: {exc}", path=source) from None
    lists = {}
    for c in LIST_COMPONENTS:
        entries = getattr(record, c.value)
        for e in entries:
            _check_entry(c, e, source)
        lists[c] = tuple(Entry(e.id, e.content, 0) for e in entries)
    if record.core and (problem := content_problem(record.core)) is not None:
        raise DataError(f"core: {problem}", path=source)
    for kind, n in record.next_ids.items():
        if not 1 <= n <= MAX_ID + 1:
            raise DataError(f"next_ids.{kind} = {n} is outside 1..{MAX_ID + 1}", path=source)
    return MemorySnapshot(
        record.core, lists[LIST_COMPONENTS[0]], lists[LIST_COMPONENTS[1]], dict(record.next_ids)
    )


def _check_entry(component: Component, e: EntryRecord, source: str) -> None:
    """An imported entry: an id as memalpha writes them (ASCII digits, at most MAX_ID) and
    content a tool call could have stored."""
    prefix = ID_PREFIX[component]
    number = e.id[len(prefix) :]
    if not (
        e.id.startswith(prefix)
        and number.isascii()
        and number.isdigit()
        and len(number) <= len(str(MAX_ID))
        and 0 < int(number) <= MAX_ID
    ):
        raise DataError(
            f"{component.value} id '{e.id[:40]}' is not of the form {prefix}<number> "
            f"(ASCII digits, 1 to {MAX_ID})",
            path=source,
        )
    problem = content_problem(e.content)
    if problem is not None:
        raise DataError(f"{component.value} entry {e.id}: {problem}", path=source)


def check_limits(
    snapshot: MemorySnapshot, config: MemoryConfig, counter: TokenCounter, *, source: str
) -> None:
    """Refuse an imported memory that breaks the caps its writer works under (a tool call
    could never have produced it).

    Raises:
        DataError: core over `core_max_tokens`, or an entry, the entry count or the total over
            the optional caps.
    """
    entries = snapshot.semantic + snapshot.episodic
    counts = counter.count_many([snapshot.core] + [e.content for e in entries])
    core, sizes = counts[0], counts[1:]
    checks = [
        ("core", core, config.core_max_tokens),
        ("largest entry", max(sizes, default=0), config.max_entry_tokens),
        ("entries", len(entries), config.max_entries),
        ("total tokens", sum(counts), config.max_total_tokens),
    ]
    for what, value, most in checks:
        if most is not None and value > most:
            raise DataError(f"{what}: {value} is over the memory's cap of {most}", path=source)


def _is_published(data: dict[str, Any]) -> bool:
    lists = [data.get(c.value, []) for c in LIST_COMPONENTS]
    return all(
        isinstance(x, list) and all(isinstance(i, dict) and len(i) == 1 for i in x) for x in lists
    ) and any(lists)


def _from_published(data: dict[str, Any]) -> dict[str, Any]:
    """Re-key published entries (4-hex ids, possibly colliding) as s1.. / e1.. in list order."""
    out: dict[str, Any] = {"core": data.get("core") or ""}
    for c in LIST_COMPONENTS:
        items = [next(iter(i.values())) for i in data.get(c.value, [])]
        out[c.value] = [{"id": f"{ID_PREFIX[c]}{n}", "content": t} for n, t in enumerate(items, 1)]
    return out


def write_json(snapshot: MemorySnapshot, path: Path) -> None:
    """Write atomically: a crash mid-write leaves the previous file, never half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(snapshot_to_dict(snapshot), ensure_ascii=False, indent=1), "utf-8")
    tmp.replace(path)


def read_json(path: Path) -> MemorySnapshot:
    """Raises: DataError: missing, unreadable or invalid file."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise DataError("no such file", path=str(path)) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"not valid JSON ({exc})", path=str(path)) from None
    except RecursionError:
        raise DataError("JSON nested too deep to be a memory export", path=str(path)) from None
    except OSError as exc:
        raise DataError(f"cannot read it ({exc.strerror or exc})", path=str(path)) from None
    return snapshot_from_dict(data, source=str(path))
