"""The memory service: `memalpha serve` (FastAPI) over one SQLite store; `schemas` holds its
request and response models (what `memalpha.client` speaks)."""

from memalpha.server import schemas
from memalpha.server.app import create_app
from memalpha.server.config import ApiKey, LimitsConfig, ServedWriterConfig, ServerConfig
from memalpha.server.errors import ErrorCode
from memalpha.server.service import MemoryService

__all__ = [
    "ApiKey",
    "ErrorCode",
    "LimitsConfig",
    "MemoryService",
    "ServedWriterConfig",
    "ServerConfig",
    "create_app",
    "schemas",
]
