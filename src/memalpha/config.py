"""Loading pydantic configs from YAML with dotted `--set key=value` overrides.

Every component owns its config model (`MemoryConfig`, ...); this module only reads files,
applies overrides and turns validation failures into one `ConfigError` that names the key.

A file may start from another: `extends: base.yaml` (a path relative to the file) reads the base
first and lays the file's own keys over it, so a recipe variant states only what it changes. A list
is replaced whole, unless the file names it with a trailing `+` (`methods+: [...]`): then its items
are appended to the base's list, so an evaluation that adds two methods states those two only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from memalpha.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Set `a.b.c=value` pairs in a nested dict; values are parsed as YAML scalars. A number
    indexes a list: `methods.0.policy.model=…`.

    Raises:
        ConfigError: an override is not of the form key=value, or its path does not exist.
    """
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override '{item}' is not of the form key.path=value")
        node: Any = data
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = _index(node, part, item) if isinstance(node, list) else node.setdefault(part, {})
            if not isinstance(node, dict | list):
                raise ConfigError(f"override '{item}': '{part}' is not a section")
        if isinstance(node, list):
            _index(node, leaf, item)
            node[int(leaf)] = yaml.safe_load(raw)
        else:
            node[leaf] = yaml.safe_load(raw)
    return data


def _index(items: list, part: str, item: str) -> Any:
    if not part.isdigit() or int(part) >= len(items):
        raise ConfigError(
            f"override '{item}': '{part}' is not an index of a {len(items)}-item list"
        )
    return items[int(part)]


def load_config(model: type[M], path: str | Path | None = None, overrides: list[str] = ()) -> M:
    """Build `model` from a YAML file (or its defaults when no path) plus overrides.

    Raises:
        ConfigError: unreadable file, bad YAML, a bad `extends`, unknown key or invalid value.
    """
    where = str(path) if path is not None else None
    data = read_config_file(Path(path)) if path is not None else {}
    data = apply_overrides(data, list(overrides))
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid {model.__name__}: {problems}", path=where) from None


EXTENDS = "extends"


def read_config_file(path: Path, extended_by: tuple[Path, ...] = ()) -> dict:
    """The mapping a config file holds, its `extends` chain resolved: the base's keys with the
    file's own laid over them (`merge_over`). `extended_by` holds the files already on the
    chain, so that a loop is an error rather than a recursion without end.

    Raises:
        ConfigError: the file is missing or not YAML, its top level is not a mapping, its
            `extends` is not a path, or the chain loops.
    """
    where = str(path)
    if path.resolve() in extended_by:
        chain = " -> ".join(str(p) for p in (*extended_by, path.resolve()))
        raise ConfigError(f"'{EXTENDS}' loops: {chain}", path=where)
    try:
        loaded = yaml.safe_load(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError("config file not found", path=where) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", path=where) from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError("the top level must be a mapping of keys", path=where)
    data = loaded or {}
    base = data.pop(EXTENDS, None)
    if base is not None and (not isinstance(base, str) or not base.strip()):
        raise ConfigError(
            f"'{EXTENDS}' must be one config file's path, relative to this file", path=where
        )
    below = (
        {} if base is None else read_config_file(path.parent / base, (*extended_by, path.resolve()))
    )
    try:
        return merge_over(below, data)
    except ConfigError as exc:
        raise ConfigError(str(exc), path=where) from None


APPEND = "+"  # `methods+: [...]`: append to the extended config's list instead of replacing it


def merge_over(base: dict, own: dict) -> dict:
    """`own` laid over `base`: a mapping in both merges key by key; anything else, a list
    included, is replaced whole (a list of datasets is restated, not patched), except under a
    key ending in `APPEND`, whose list extends the base's list of that name.

    Raises:
        ConfigError: an appending key whose value is not a list, whose base holds no list of
            that name, or that stands beside the same key without `APPEND`.
    """
    merged = dict(base)
    for key, value in own.items():
        if key.endswith(APPEND):
            merged[key[: -len(APPEND)]] = _appended(key, merged, own, value)
            continue
        below = merged.get(key)
        if isinstance(value, dict):  # merged even over no mapping, so a nested `APPEND` is checked
            merged[key] = merge_over(below if isinstance(below, dict) else {}, value)
        else:
            merged[key] = value
    return merged


def _appended(key: str, base: dict, own: dict, items: Any) -> list:
    """The base's list under `key` less its `APPEND`, with `items` after it."""
    name = key[: -len(APPEND)]
    if name in own:
        raise ConfigError(f"'{key}' and '{name}' both given: append to the list or replace it")
    if not isinstance(items, list):
        raise ConfigError(f"'{key}' appends a list, got {type(items).__name__}")
    if not isinstance(base.get(name), list):
        raise ConfigError(
            f"'{key}' appends to the list '{name}' of the extended config, which holds none"
        )
    return [*base[name], *items]


RUN_CONFIG = "config.yaml"


def check_resumable(run_dir: Path, cfg: BaseModel, volatile: tuple[str, ...]) -> None:
    """Refuse to continue the run in `run_dir` with a config that differs from the one it was
    started with in anything but the `volatile` keys (dotted paths, e.g. 'schedule.steps').
    A run directory without a saved config passes.

    Raises:
        ConfigError: the configs differ, or the saved one is unreadable.
    """
    saved = Path(run_dir) / RUN_CONFIG
    if not saved.is_file():
        return
    try:
        before = type(cfg).model_validate(yaml.safe_load(saved.read_text("utf-8")))
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"unreadable run config: {exc}", path=str(saved)) from None
    if changed := _differences(_without(before, volatile), _without(cfg, volatile)):
        shown = "; ".join(
            f"{key}: {_brief(was)} then, {_brief(now)} now" for key, was, now in changed[:5]
        )
        more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        raise ConfigError(
            f"{run_dir} holds a run with a different config ({shown}{more}); "
            "use another out_dir or --fresh to start over"
        )


def save_run_config(run_dir: Path, cfg: BaseModel, *, only_set: bool = False) -> None:
    """Keep the config a run started with (`check_resumable` compares against it).

    Args:
        only_set: keep only the keys the config sets, so that running the saved file again
            resolves defaults as the run did: an eval method's writer fields left unset come
            from its policy's recorded `writer.json`, and written out they would replace it.
    """
    data = cfg.model_dump(mode="json", exclude_unset=only_set)
    (Path(run_dir) / RUN_CONFIG).write_text(yaml.safe_dump(data, sort_keys=False), "utf-8")


def _differences(before: Any, now: Any, key: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted key, value then, value now) of every leaf where two config dumps differ."""
    if isinstance(before, dict) and isinstance(now, dict):
        return [
            diff
            for k in sorted(before.keys() | now.keys(), key=str)
            for diff in _differences(before.get(k), now.get(k), f"{key}.{k}" if key else str(k))
        ]
    return [] if before == now else [(key or "(config)", before, now)]


def _brief(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _without(cfg: BaseModel, keys: tuple[str, ...]) -> dict:
    data = cfg.model_dump(mode="json")
    for key in keys:
        *parents, leaf = key.split(".")
        node = data
        for part in parents:
            node = node[part]
        node.pop(leaf)
    return data
