"""JSON export and import of one memory: a lossless round trip (content, ids, order and the id
counters), validated with pydantic on the way in. The published `agent_state.json` layout
(`{"core": str, "semantic": [{id: content}], "episodic": [...]}`) is accepted on import too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from memalpha.errors import DataError
from memalpha.memory.config import LIST_COMPONENTS
from memalpha.memory.model import ID_PREFIX, Entry, MemorySnapshot

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
            if not (e.id.startswith(ID_PREFIX[c]) and e.id[1:].isdigit() and int(e.id[1:]) > 0):
                raise DataError(
                    f"{c.value} id '{e.id}' is not of the form {ID_PREFIX[c]}<number>", path=source
                )
        lists[c] = tuple(Entry(e.id, e.content, 0) for e in entries)
    return MemorySnapshot(
        record.core, lists[LIST_COMPONENTS[0]], lists[LIST_COMPONENTS[1]], dict(record.next_ids)
    )


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
    return snapshot_from_dict(data, source=str(path))
