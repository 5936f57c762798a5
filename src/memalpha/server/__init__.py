"""The memory service: `memalpha serve` (FastAPI) over one SQLite store."""

from memalpha.server.app import create_app
from memalpha.server.config import LimitsConfig, ServerConfig, WriterConfig
from memalpha.server.service import MemoryService

__all__ = ["LimitsConfig", "MemoryService", "ServerConfig", "WriterConfig", "create_app"]
