"""Builders: deterministic instances from raw public datasets (or the shipped sample) and from
synthetic generators, one registry keyed by source name."""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

from memalpha.data.builders.book import build_book
from memalpha.data.builders.classification import LOADERS, build_classification
from memalpha.data.builders.config import BuildConfig
from memalpha.data.builders.conflict import build_conflict
from memalpha.data.builders.qa import build_hotpotqa, build_squad
from memalpha.data.instance import Instance
from memalpha.data.synthetic import GENERATORS, build_synthetic
from memalpha.errors import ConfigError, DataError
from memalpha.tokens import TokenCounter

RawBuilder = Callable[[BuildConfig, Path, TokenCounter], list[Instance]]
RAW_BUILDERS: dict[str, RawBuilder] = {
    "squad": build_squad,
    "hotpotqa": build_hotpotqa,
    **{name: build_classification for name in LOADERS},
    "book": build_book,
    "conflict": build_conflict,
}
BUILDERS = sorted([*RAW_BUILDERS, *GENERATORS])


def sample_dir() -> Path:
    """The small real-data sample shipped inside the package (same layout as ../shared/data)."""
    return Path(str(files("memalpha.data").joinpath("sample")))


def build(cfg: BuildConfig, counter: TokenCounter) -> list[Instance]:
    """Build the instances `cfg` asks for.

    Raises:
        ConfigError: unknown source.
        DataError: a raw file is missing or malformed, or the split holds no data.
    """
    if cfg.source in GENERATORS:
        try:
            return build_synthetic(cfg, counter)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if cfg.source not in RAW_BUILDERS:
        raise ConfigError(f"unknown source '{cfg.source}' (known: {', '.join(BUILDERS)})")
    data_dir = cfg.data_dir or sample_dir()
    try:
        instances = RAW_BUILDERS[cfg.source](cfg, data_dir, counter)
    except FileNotFoundError as exc:
        raise DataError(
            f"raw file missing for '{cfg.source}': {exc.filename}", path=str(data_dir)
        ) from None
    except (KeyError, ValueError) as exc:
        raise DataError(
            f"malformed raw data for '{cfg.source}': {exc!r}", path=str(data_dir)
        ) from None
    if not instances or not all(i.questions for i in instances):
        raise DataError(
            f"'{cfg.source}' has no usable data in split '{cfg.split}'", path=str(data_dir)
        )
    return instances


__all__ = ["BUILDERS", "BuildConfig", "build", "sample_dir"]
