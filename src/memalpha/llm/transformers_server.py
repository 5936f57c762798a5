"""Start `transformers serve` for a local model folder on a free loopback port: a real
OpenAI-compatible server for tests, benchmarks and small local deployments (needs the
`fastapi`, `uvicorn` and `openai` packages, as in `.[dev]`)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from memalpha.errors import BackendUnavailable
from memalpha.http_process import http_process


@contextmanager
def transformers_server(
    folder: Path, *, host: str = "127.0.0.1", startup_s: float = 120.0
) -> Iterator[str]:
    """Yield the `/v1` base URL of a server for `folder`; the server stops on exit.

    Raises:
        BackendUnavailable: the CLI is missing or the server did not come up in time.
    """
    if shutil.which("transformers") is None:
        raise BackendUnavailable("the `transformers` CLI is not installed")
    with http_process(
        lambda port: ["transformers", "serve", str(folder), "--host", host, "--port", str(port)],
        host=host,
        startup_s=startup_s,
        env={"HF_HUB_OFFLINE": "1"},
    ) as base:
        yield f"{base}/v1"
