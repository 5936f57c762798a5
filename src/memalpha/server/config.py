"""What `memalpha serve` reads: where memories live, who may call, how big a request may be,
which writer and reader run behind the endpoints."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from memalpha.agent import WriterConfig, effective_writer
from memalpha.errors import ConfigError
from memalpha.llm import ModelConfig
from memalpha.reader import JudgeConfig, ReaderConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LimitsConfig(_Strict):
    """Per-request caps; a request over any of them is refused whole (nothing is written)."""

    max_body_bytes: int = Field(2_000_000, ge=1024)
    max_chunks: int = Field(16, ge=1, description="Chunks per memorize request.")
    max_chunk_chars: int = Field(20_000, ge=1)
    max_content_chars: int = Field(4_000, ge=1, description="One entry's content.")
    max_questions: int = Field(64, ge=1, description="Questions per ask / batch-QA request.")
    max_question_chars: int = Field(2_000, ge=1)
    max_session_chars: int = Field(128, ge=1, description="Length of a session name.")


class ServedWriterConfig(WriterConfig):
    """The policy that turns chunks into memory calls: how it writes (`WriterConfig`: format,
    prompt, budget, and the memory every session holds), which model, and how it batches."""

    kind: Literal["rule", "llm"] = Field("rule", description="rule: no LLM; llm: `model`.")
    model: ModelConfig | None = None
    temperature: float = Field(0.0, ge=0)
    batch_window_ms: float = Field(
        10.0, ge=0, description="How long a generation waits for others to share its batch."
    )
    max_batch: int = Field(16, ge=1, description="Generations per batched backend call.")

    @model_validator(mode="after")
    def _model_for_llm(self) -> ServedWriterConfig:
        if self.kind == "llm" and self.model is None:
            raise ValueError("writer.kind 'llm' needs writer.model")
        return self

    @property
    def effective(self) -> WriterConfig:
        """How the served writer writes: for a trained policy folder, what it recorded at
        training, with the writer fields this config sets on top."""
        return effective_writer(
            self, self.model.model if self.kind == "llm" and self.model else None
        )


class ApiKey(_Strict):
    """A key and the session namespace it may use; no namespace: an admin key (all sessions)."""

    key: str = Field(min_length=1)
    namespace: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="The key sees and names only its namespace's sessions (stored as "
        "'NAMESPACE:name'); other tenants' sessions do not exist for it.",
    )


class ServerConfig(_Strict):
    """Where memories live, who may call, request limits, the writer, reader and judge."""

    host: str = "127.0.0.1"
    port: int = Field(8750, ge=0, le=65535)
    store: Path = Path("memalpha.db")
    api_keys: list[str | ApiKey] = Field(
        default_factory=list,
        description="Accepted keys (Authorization: Bearer KEY): a plain string is an admin "
        "key, {key, namespace} a tenant's; also $MEMALPHA_API_KEYS (admin keys, "
        "comma-separated). None allowed only on a loopback host.",
    )
    backend_timeout_s: float = Field(120.0, gt=0, description="Per memorize/ask model call.")
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    writer: ServedWriterConfig = Field(default_factory=ServedWriterConfig)
    reader: ReaderConfig = Field(default_factory=ReaderConfig)
    judge: JudgeConfig = Field(default_factory=JudgeConfig)

    @field_validator("api_keys")
    @classmethod
    def _no_blank_keys(cls, keys: list[str | ApiKey]) -> list[str | ApiKey]:
        if any(not (k if isinstance(k, str) else k.key).strip() for k in keys):
            raise ValueError("an API key is empty: an empty key would accept requests with none")
        return keys

    def keys(self, env: str = "") -> list[ApiKey]:
        """Every accepted key: the config's and the admin keys of `env` (comma-separated)."""
        given = [ApiKey(key=k) if isinstance(k, str) else k for k in self.api_keys]
        return given + [ApiKey(key=k.strip()) for k in env.split(",") if k.strip()]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(cfg: ServerConfig, keys: list[ApiKey]) -> None:
    """Refuse to serve memories without keys anywhere but on the loopback interface.

    Raises:
        ConfigError.
    """
    if not keys and not is_loopback(cfg.host):
        raise ConfigError(
            f"refusing to serve on {cfg.host} without API keys: set api_keys in the config "
            "or $MEMALPHA_API_KEYS, or bind to 127.0.0.1"
        )
