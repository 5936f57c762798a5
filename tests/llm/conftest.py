"""A real OpenAI-compatible model server on 127.0.0.1: `transformers serve` with SmolLM2."""

from __future__ import annotations

import pytest

from memalpha.errors import BackendUnavailable
from memalpha.llm.transformers_server import transformers_server as serve


@pytest.fixture(scope="session")
def transformers_server(smol_folder):
    try:
        with serve(smol_folder) as base_url:
            yield base_url, str(smol_folder)
    except BackendUnavailable as exc:
        pytest.fail(str(exc))
