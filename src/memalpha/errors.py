"""The one tree of memalpha's exceptions: library code raises these; only the CLI and the server
translate them into messages, exit codes or HTTP statuses."""

from __future__ import annotations


class MemalphaError(Exception):
    """Base of every error memalpha raises on purpose."""


class ConfigError(MemalphaError):
    """A config file or value is missing, malformed or inconsistent."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message if path is None else f"{path}: {message}")
        self.path = path


class DataError(MemalphaError):
    """An input file or record is malformed."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message if path is None else f"{path}: {message}")
        self.path = path


class StoreError(MemalphaError):
    """The durable store cannot be opened, read or written."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message if path is None else f"{path}: {message}")
        self.path = path


class SessionNotFoundError(StoreError):
    """A named memory session does not exist in the store."""

    def __init__(self, session: str, *, path: str | None = None, known: list[str] = ()) -> None:
        hint = f" (known: {', '.join(known)})" if known else " (the store has no sessions)"
        super().__init__(f"unknown session '{session}'{hint}", path=path)
        self.session = session


class SessionExistsError(StoreError):
    """A session was to be created (or imported without replace) under a name in use."""

    def __init__(self, session: str, *, path: str | None = None) -> None:
        super().__init__(f"session '{session}' already exists", path=path)
        self.session = session


class CheckpointError(MemalphaError):
    """A training checkpoint cannot be written (most often: the disk is full). The previous
    checkpoint is left as it was."""


class MemoryOperationError(MemalphaError):
    """A memory operation was refused; the memory is unchanged."""


class UnknownEntryError(MemoryOperationError):
    """An update or delete named an id that the component does not hold."""

    def __init__(self, component: str, entry_id: str, *, known: str = "") -> None:
        hint = f" (known: {known})" if known else f" ({component} memory is empty)"
        super().__init__(f"unknown {component} id '{entry_id}'{hint}")
        self.component = component
        self.entry_id = entry_id


class DuplicateEntryError(MemoryOperationError):
    """An insert repeated the exact content of an existing entry of the same component."""

    def __init__(self, component: str, existing_id: str) -> None:
        super().__init__(f"{component} memory already holds this content as '{existing_id}'")
        self.component = component
        self.existing_id = existing_id


class LimitExceededError(MemoryOperationError):
    """An operation would break a configured size cap."""

    def __init__(self, message: str, *, limit: int, actual: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.actual = actual


class ComponentDisabledError(MemoryOperationError):
    """An operation targeted a memory component disabled for this run (an ablation)."""

    def __init__(self, component: str) -> None:
        super().__init__(f"{component} memory is disabled for this run")
        self.component = component


class InvalidOperationError(MemoryOperationError):
    """An operation the component does not support (e.g. inserting into core)."""


class ToolCallError(MemalphaError):
    """A model-produced tool call could not be understood."""

    def __init__(self, message: str, *, tool: str | None = None) -> None:
        super().__init__(message)
        self.tool = tool


class ToolParseError(ToolCallError):
    """The call's text or JSON arguments could not be parsed."""


class ToolArgumentError(ToolCallError):
    """The call parsed, but its name or arguments do not fit the tool schema."""


class BackendError(MemalphaError):
    """A model backend failed."""


class BackendTimeout(BackendError):
    """A model backend did not answer in time."""


class BackendUnavailable(BackendError):
    """A model backend cannot be reached."""


class ServiceError(MemalphaError):
    """The memory service refused a request (`memalpha.client`): its HTTP status, its stable
    error code (`memalpha.server.errors.ErrorCode` values) and its message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code} ({status}): {message}")
        self.status, self.code, self.message = status, code, message


class ServiceNotFound(ServiceError):
    """404: unknown session or entry."""


class ServiceConflict(ServiceError):
    """409: the session or entry already exists."""


class ServiceUnauthorized(ServiceError):
    """401: missing or wrong API key."""


class ServiceRequestError(ServiceError):
    """400, 413, 422: the request was malformed, too large or refused."""


class ServiceBackendError(ServiceError):
    """502, 503, 504: a model behind the service failed or did not answer in time."""
