"""Fixtures of the tiny-model GRPO tests (the model and task are described in tiny.py)."""

from __future__ import annotations

import pytest
from tiny import build_tiny_model, code_word_instance

from memalpha.data import write_instances


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-data") / "train.jsonl"
    write_instances([code_word_instance()], path)
    return path
