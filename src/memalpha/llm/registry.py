"""Model configs, and how a config names a model: a registry name of a model installed from
PyPI (`memalpha.llm.packaged`), an HF folder, a GGUF file, or a served model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from memalpha.errors import ConfigError
from memalpha.llm.openai_http import OpenAIHttpLLM
from memalpha.llm.packaged import PACKAGED, gguf_path
from memalpha.llm.protocol import LLM

# A run's CPU thread count (one per process): greedy bf16 decoding differs with it (see
# `memalpha.llm.precision.pin_threads`), so a run records the count it used and resumes only
# under the same one.
Threads = Annotated[
    int | None,
    Field(
        ge=1,
        description="CPU threads each process computes on (torch intra-op); None: as found "
        "(OMP_NUM_THREADS, else one per core), recorded in the run's config when it starts. "
        "Greedy writing differs with the count, so a run resumes only under the same one.",
    ),
]


class ModelConfig(BaseModel):
    """Which model, through which backend."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["transformers", "openai"] = "transformers"
    model: str = Field(
        "smollm2-135m-instruct",
        description="Registry name, HF folder or GGUF "
        "file path (transformers), or the served model name (openai).",
    )
    base_url: str | None = Field(
        None,
        description="OpenAI-compatible server, e.g. "
        "http://127.0.0.1:8000/v1 (openai backend only).",
    )
    api_key: str | None = None
    timeout_s: float = Field(
        120.0, gt=0, description="openai: per attempt (connect, then each read)."
    )
    deadline_s: float = Field(
        300.0,
        gt=0,
        description="openai: one request in all (connect, first byte, whole response, retries).",
    )
    max_retries: int = Field(3, ge=0)
    concurrency: int = Field(16, ge=1)
    device: str = "cpu"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="Weights' dtype; auto: bfloat16 where the device computes it natively "
        "(CUDA, CPUs with AMX/AVX512-BF16), else float32. A trained policy keeps float32 "
        "master weights and computes under bf16 autocast (ppo.autocast_bf16).",
    )
    batch_size: int = Field(8, ge=1)
    shared_prefix_min: int = Field(
        32,
        ge=0,
        description="transformers: a batch whose prompts begin with at least this many equal "
        "tokens (a system prompt, one memory) computes them once for all rows; 0: never.",
    )
    chat_template_kwargs: dict[str, bool | str | int] = Field(
        default_factory=dict,
        description="Passed to the chat template; Qwen3 as published: "
        "{enable_thinking: false} (SPEC §2.2).",
    )
    cache_dir: Path = Field(
        Path(".cache/memalpha/models"), description="Where GGUF files are cached as HF folders."
    )


def resolve_folder(cfg: ModelConfig) -> Path:
    """The HF folder a transformers config names (registry name, folder, or .gguf file)."""
    from memalpha.llm.local import cached_hf_folder  # torch loads only when a model is used

    if cfg.model in PACKAGED:
        gguf = gguf_path(cfg.model, cfg.cache_dir.expanduser())
        return cached_hf_folder(gguf.parent, gguf.name, cfg.cache_dir.expanduser())
    path = Path(cfg.model)
    if path.suffix == ".gguf":
        return cached_hf_folder(path.parent, path.name, cfg.cache_dir.expanduser())
    if (path / "config.json").is_file():
        return path
    raise ConfigError(
        f"model '{cfg.model}' is neither a registry name ({', '.join(PACKAGED)}), "
        "an HF folder nor a .gguf file"
    )


def make_llm(cfg: ModelConfig) -> LLM:
    """Build the backend a config names.

    Raises:
        ConfigError: unknown model, missing package, or an openai backend without base_url.
    """
    if cfg.backend == "openai":
        if not cfg.base_url:
            raise ConfigError("backend 'openai' needs base_url (e.g. http://127.0.0.1:8000/v1)")
        return OpenAIHttpLLM(
            cfg.base_url,
            cfg.model,
            api_key=cfg.api_key,
            timeout_s=cfg.timeout_s,
            deadline_s=cfg.deadline_s,
            max_retries=cfg.max_retries,
            concurrency=cfg.concurrency,
        )
    from memalpha.llm.local import TransformersLLM  # torch loads only when a model is used

    return TransformersLLM(
        resolve_folder(cfg),
        device=cfg.device,
        dtype=cfg.dtype,
        batch_size=cfg.batch_size,
        chat_template_kwargs=cfg.chat_template_kwargs,
        name=cfg.model,
        shared_prefix_min=cfg.shared_prefix_min,
    )
