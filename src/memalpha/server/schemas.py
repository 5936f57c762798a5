"""Request and response bodies of the HTTP API, apart: requests forbid unknown keys (a typo is
an error), responses are what the OpenAPI page shows and what clients parse."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from memalpha.memory import Change, MemoryRecord, ToolResult
from memalpha.reader import Answer

ComponentName = Literal["core", "semantic", "episodic"]


# ------------------------------------------------------------------ requests


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateSession(_Body):
    name: str = Field(min_length=1)


class MemorizeRequest(_Body):
    chunks: list[str] = Field(min_length=1, description="Chunks, memorized in order.")


class AskRequest(_Body):
    questions: list[str] = Field(min_length=1)
    data_source: str = Field("", description="Selects the published query prompt, if any.")


class ContentBody(_Body):
    content: str = Field(min_length=1)


class ImportRequest(_Body):
    memory: dict[str, Any] = Field(description="An exported memory (GET …/export).")
    replace: bool = False


class QAItem(_Body):
    memory: dict[str, Any]
    question: str
    data_source: str = ""


class BatchQARequest(_Body):
    items: list[QAItem] = Field(min_length=1)


class JudgedWrite(_Body):
    memory_type: str
    content: str


class JudgeRequest(_Body):
    writes: list[JudgedWrite] = Field(min_length=1)


# ------------------------------------------------------------------ responses


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    writer: str = Field(description="The writer model's name ('rule' for the rule writer).")
    reader: str = Field(description="The reader kind.")


class SessionName(BaseModel):
    name: str


class SessionInfo(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    semantic: int = Field(description="Semantic entries.")
    episodic: int = Field(description="Episodic entries.")
    core_chars: int = Field(description="Length of the core paragraph.")
    updated_at: float = Field(description="Unix time of the last change.")


class SessionList(BaseModel):
    sessions: list[SessionInfo]


class Deleted(BaseModel):
    deleted: str


class Imported(BaseModel):
    imported: str


class CallOut(BaseModel):
    """One memory call as executed."""

    name: str
    arguments: dict[str, Any] | str
    status: Literal["ok", "skipped", "error"]
    entry_id: str | None
    message: str

    @classmethod
    def of(cls, r: ToolResult) -> CallOut:
        return cls(
            name=r.call.name,
            arguments=r.call.arguments,
            status=r.status.value,
            entry_id=r.entry_id,
            message=r.message,
        )


class ChangeOut(BaseModel):
    """One change committed to the memory."""

    op: Literal["insert", "update", "delete"]
    component: ComponentName
    id: str
    content: str

    @classmethod
    def of(cls, c: Change) -> ChangeOut:
        return cls(op=c.op, component=c.component.value, id=c.entry.id, content=c.entry.content)


def changes(results: list[ToolResult]) -> list[ChangeOut]:
    """The changes a list of calls committed, in order."""
    return [ChangeOut.of(r.change) for r in results if r.change is not None]


class ChunkOut(BaseModel):
    calls: list[CallOut]
    diff: list[ChangeOut]


class MemorizeResponse(BaseModel):
    chunks: list[ChunkOut] = Field(description="Per chunk: its calls and what they changed.")


class CallResponse(BaseModel):
    call: CallOut
    diff: list[ChangeOut]


class Evidence(BaseModel):
    id: str
    content: str


class AnswerOut(BaseModel):
    answer: str
    evidence: list[Evidence] = Field(description="The retrieved entries the answer drew on.")

    @classmethod
    def of(cls, a: Answer) -> AnswerOut:
        return cls(
            answer=a.text, evidence=[Evidence(id=e.id, content=e.content) for e in a.evidence]
        )


class Answers(BaseModel):
    answers: list[AnswerOut]


class Scores(BaseModel):
    scores: list[float]


class MemoryView(MemoryRecord):
    """A session's memory as exported, plus its size in tokens."""

    tokens: int
