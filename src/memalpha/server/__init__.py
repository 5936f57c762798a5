"""The memory service: `memalpha serve` (FastAPI) over one SQLite store."""

from memalpha.server.app import create_app
from memalpha.server.config import LimitsConfig, ServedWriterConfig, ServerConfig
from memalpha.server.service import MemoryService

__all__ = ["LimitsConfig", "MemoryService", "ServerConfig", "ServedWriterConfig", "create_app"]
