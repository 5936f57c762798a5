"""Shared fixtures: the real offline token counter, memories and SQLite stores in tmp_path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from memalpha.memory import Memory, MemoryConfig, ToolExecutor, ToolRegistry
from memalpha.tokens import TokenCounter, make_token_counter


@pytest.fixture(scope="session")
def counter() -> TokenCounter:
    return make_token_counter()


@pytest.fixture(scope="session")
def smol_folder(tmp_path_factory) -> Path:
    """The packaged SmolLM2-135M-Instruct as an HF folder, converted from its GGUF once per
    session (~20 s on 2 cores)."""
    from memalpha.llm.registry import ModelConfig, resolve_folder

    return resolve_folder(ModelConfig(cache_dir=tmp_path_factory.mktemp("models")))


@pytest.fixture
def make_memory(counter: TokenCounter) -> Callable[..., Memory]:
    def make(**config: object) -> Memory:
        return Memory(MemoryConfig(**config), counter)

    return make


@pytest.fixture
def memory(make_memory: Callable[..., Memory]) -> Memory:
    return make_memory()


@pytest.fixture
def executor() -> ToolExecutor:
    return ToolExecutor(ToolRegistry())


SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The full public datasets beside the repository (../shared/data); where a checkout has
    none, the real sample shipped in the package (same layout, fewer rows)."""
    from memalpha.data import sample_dir

    return SHARED_DATA if SHARED_DATA.is_dir() else sample_dir()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer random Llama with a word-level tokenizer (tests/tiny.py): a real local model
    that generates in milliseconds."""
    from tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def real_instances(shared_data, counter):
    """Build test-split instances of real sources: real_instances(["squad"], instances=2, …)."""
    from memalpha.data import BuildConfig, build

    def make(sources: list[str], **knobs: object) -> list:
        specs = [
            BuildConfig(source=s, split="test", data_dir=shared_data, **knobs) for s in sources
        ]
        return [inst for spec in specs for inst in build(spec, counter)]

    return make


@pytest.fixture
def restore_threads() -> Iterator[None]:
    """torch's thread count as it was before a test that pins another (`threads: N`)."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
