"""Request and response bodies of the HTTP API, apart: requests forbid unknown keys (a typo is
an error), responses are what the OpenAPI page shows and what clients parse."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from memalpha.memory import Change, MemoryRecord, ToolResult
from memalpha.reader import Answer

ComponentName = Literal["core", "semantic", "episodic"]


def _valid_unicode(text: str) -> str:
    """JSON escapes can carry lone surrogates (`\\ud800`), which no store or response can
    encode: refused where they enter."""
    for i, ch in enumerate(text):
        if "\ud800" <= ch <= "\udfff":
            raise ValueError(f"lone surrogate U+{ord(ch):04X} at character {i}: not valid Unicode")
    return text


Text = Annotated[str, AfterValidator(_valid_unicode)]


def _encodable(value: Any) -> Any:
    """Model output echoed back to a client, with any unencodable character replaced."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_encodable(k): _encodable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encodable(v) for v in value]
    return value


# ------------------------------------------------------------------ requests


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateSession(_Body):
    name: Text = Field(min_length=1)


class MemorizeRequest(_Body):
    chunks: list[Text] = Field(min_length=1, description="Chunks, memorized in order.")


class AskRequest(_Body):
    questions: list[Text] = Field(min_length=1)
    data_source: Text = Field("", description="Selects the published query prompt, if any.")


class ContentBody(_Body):
    content: Text = Field(min_length=1)


class SearchRequest(_Body):
    query: Text = Field(min_length=1, description="Text to match (BM25 over the entries).")
    k: int = Field(10, ge=1, le=100, description="How many entries to return, best first.")
    memory_types: list[Literal["semantic", "episodic"]] = Field(
        default_factory=lambda: ["semantic", "episodic"], min_length=1
    )


class ImportRequest(_Body):
    memory: dict[str, Any] = Field(description="An exported memory (GET …/export).")
    replace: bool = False


class QAItem(_Body):
    memory: dict[str, Any]
    question: Text
    data_source: Text = ""


class BatchQARequest(_Body):
    items: list[QAItem] = Field(min_length=1)


class JudgedWrite(_Body):
    memory_type: Text
    content: Text


class JudgeRequest(_Body):
    writes: list[JudgedWrite] = Field(min_length=1)


# ------------------------------------------------------------------ responses


class Health(BaseModel):
    status: Literal["ok", "degraded"] = Field(
        description="degraded (HTTP 503): a model backend does not answer."
    )
    writer: str = Field(description="The writer model's name ('rule' for the rule writer).")
    reader: str = Field(description="The reader kind.")
    backends: dict[str, str | None] = Field(
        default_factory=dict, description="Per model role: null when it answers, else why not."
    )


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
            name=_encodable(r.call.name),
            arguments=_encodable(r.call.arguments),
            status=r.status.value,
            entry_id=r.entry_id,
            message=_encodable(r.message),
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


class Hit(BaseModel):
    component: Literal["semantic", "episodic"]
    id: str
    content: str
    score: float = Field(description="BM25 score against the query (higher is better).")


class SearchResults(BaseModel):
    results: list[Hit] = Field(description="Best first; no LLM is involved.")


class HistoryEntry(BaseModel):
    """One operation applied to a session."""

    model_config = ConfigDict(from_attributes=True)

    seq: int = Field(description="Order of application within the store.")
    at: float = Field(description="Unix time it was applied.")
    source: Literal["writer", "crud", "import"] = Field(
        description="writer: a tool call of the memory writer; crud: a direct edit; import."
    )
    op: Literal["insert", "update", "delete"]
    component: ComponentName
    entry_id: str
    before: str | None
    after: str | None


class History(BaseModel):
    session: str
    operations: list[HistoryEntry]
