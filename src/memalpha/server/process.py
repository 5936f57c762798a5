"""`memalpha serve` in a child process (tests, the load benchmark, scripts)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from memalpha.http_process import http_process


@contextmanager
def serve_subprocess(
    store: Path, *args: str, env: dict[str, str] | None = None, startup_s: float = 120.0
) -> Iterator[str]:
    """Yield the base URL of `memalpha serve --store STORE ARGS…` on a free loopback port;
    the server is SIGKILLed on exit, as in a crash."""
    with http_process(
        lambda port: [
            sys.executable,
            "-m",
            "memalpha.cli",
            "serve",
            "--store",
            str(store),
            "--port",
            str(port),
            *args,
        ],
        env=env,
        startup_s=startup_s,
        ready=(200, 503),  # 503: up, with a model backend that does not answer (yet)
    ) as url:
        yield url
