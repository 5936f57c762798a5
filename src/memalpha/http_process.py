"""Start an HTTP server in a child process on a free loopback port and wait until it answers:
the one way memalpha launches `transformers serve` and `memalpha serve` for tests, benchmarks
and small deployments."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx

from memalpha.errors import BackendUnavailable


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextmanager
def http_process(
    argv: Callable[[int], list[str]],
    *,
    host: str = "127.0.0.1",
    health: str = "/health",
    startup_s: float = 120.0,
    env: dict[str, str] | None = None,
    ready: tuple[int, ...] = (200,),
) -> Iterator[str]:
    """Run `argv(port)`; yield `http://host:port` once `health` answers with a status in
    `ready`; SIGKILL on exit (no graceful shutdown: what a crash looks like to the server).

    Raises:
        BackendUnavailable: the process exited or did not answer within `startup_s`.
    """
    port = free_port(host)
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            argv(port), stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, **(env or {})}
        )
        base = f"http://{host}:{port}"
        try:
            deadline = time.monotonic() + startup_s
            while True:
                try:
                    if httpx.get(f"{base}{health}", timeout=1).status_code in ready:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    tail = log.read().decode(errors="replace")[-2000:]
                    raise BackendUnavailable(f"{argv(port)[0]} did not start: {tail}")
                time.sleep(0.2)
            yield base
        finally:
            proc.kill()
            proc.wait()
