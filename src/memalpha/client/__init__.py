"""A typed Python client of the memory service, sync and async, built on the server's own
request and response models."""

from memalpha.client.http import AsyncMemalphaClient, MemalphaClient

__all__ = ["AsyncMemalphaClient", "MemalphaClient"]
