"""A real OpenAI-compatible model server on 127.0.0.1: `transformers serve` with SmolLM2."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import httpx
import pytest

from memalpha.llm.registry import ModelConfig, resolve_folder


@pytest.fixture(scope="session")
def smol_folder(tmp_path_factory):
    return resolve_folder(ModelConfig(cache_dir=tmp_path_factory.mktemp("models")))


@pytest.fixture(scope="session")
def transformers_server(smol_folder):
    if shutil.which("transformers") is None:
        pytest.skip("the `transformers` CLI is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        ["transformers", "serve", str(smol_folder), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail("transformers serve did not come up in 60 s")
        yield f"{base}/v1", str(smol_folder)
    finally:
        proc.kill()
        proc.wait()
