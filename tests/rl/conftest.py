"""Fixtures of the tiny-model GRPO tests (the model and task are described in tests/tiny.py;
the `tiny_model` fixture lives in tests/conftest.py)."""

from __future__ import annotations

import pytest

from memalpha.data import write_instances
from tiny import code_word_instance


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-data") / "train.jsonl"
    write_instances([code_word_instance()], path)
    return path
