"""Start `transformers serve` for a local model folder on a free loopback port: a real
OpenAI-compatible server for tests, benchmarks and small local deployments (needs the
`fastapi`, `uvicorn` and `openai` packages, as in `.[dev]`)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from memalpha.errors import BackendUnavailable


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
    with socket.socket() as s:
        s.bind((host, 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        ["transformers", "serve", str(folder), "--host", host, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    base = f"http://{host}:{port}"
    try:
        deadline = time.monotonic() + startup_s
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BackendUnavailable(f"transformers serve for {folder} did not start")
            time.sleep(0.5)
        yield f"{base}/v1"
    finally:
        proc.kill()
        proc.wait()
