"""Config loading: YAML files, dotted overrides, errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from memalpha.config import load_config
from memalpha.errors import ConfigError
from memalpha.memory import Component, MemoryConfig
from memalpha.tokens import TokenizerConfig, make_token_counter

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_shipped_default_equals_code_defaults() -> None:
    assert load_config(MemoryConfig, CONFIGS / "memory" / "default.yaml") == MemoryConfig()


def test_overrides_reach_nested_keys() -> None:
    cfg = load_config(MemoryConfig, None, ["view.k=2", "disabled=[episodic]"])
    assert cfg.view.k == 2 and cfg.disabled == {Component.EPISODIC}


@pytest.mark.parametrize(
    ("yaml_text", "fragment"),
    [
        ("view:\n  mode: sideways\n", "view.mode"),
        ("core_max_tokens: 512\nmax_total_tokens: 100\n", "raise max_total_tokens"),
        ("disabled: [core, semantic, episodic]\n", "enable at least one"),
        ("- a list\n", "top level must be a mapping"),
        ("key: [unclosed\n", "invalid YAML"),
        ("typo_key: 1\n", "typo_key"),
    ],
)
def test_bad_configs_name_the_problem(tmp_path, yaml_text, fragment) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=fragment):
        load_config(MemoryConfig, path)


def test_unavailable_tiktoken_encoding_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot be loaded offline"):
        make_token_counter(TokenizerConfig(name="no_such_encoding"))


def test_missing_huggingface_tokenizer_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError):
        make_token_counter(TokenizerConfig(kind="huggingface", name=str(tmp_path)))


def test_default_counter_counts_real_tokens() -> None:
    counter = make_token_counter()
    assert counter.count("hello world") == 2
    assert counter.count_many(["hello world", ""]) == [2, 0]


def test_overrides_index_lists() -> None:
    from memalpha.config import apply_overrides

    data = {"methods": [{"name": "a", "policy": {"model": "x"}}, {"name": "b"}]}
    apply_overrides(data, ["methods.0.policy.model=y", "methods.1.name=c"])
    assert data == {"methods": [{"name": "a", "policy": {"model": "y"}}, {"name": "c"}]}
    with pytest.raises(ConfigError, match="not an index of a 2-item list"):
        apply_overrides(data, ["methods.5.name=z"])
    with pytest.raises(ConfigError, match="not an index"):
        apply_overrides(data, ["methods.first.name=z"])


def _schema(path: Path):
    from memalpha.eval import EvalConfig
    from memalpha.quickstart import QuickstartConfig
    from memalpha.rl.config import SFTConfig, TrainConfig
    from memalpha.server.config import ServerConfig

    kinds = {
        "memory": MemoryConfig,
        "eval": EvalConfig,
        "sft": SFTConfig,
        "serve": ServerConfig,
        "quickstart": QuickstartConfig,
        "train": TrainConfig,
    }
    return kinds[path.parent.name]


@pytest.mark.parametrize(
    "path",
    sorted(p for p in CONFIGS.rglob("*.yaml") if p.parent.name != "verl" and "ablations" != p.stem),
    ids=lambda p: str(p.relative_to(CONFIGS)),
)
def test_every_shipped_config_validates(path: Path) -> None:
    """A config the README or a script names must load: a renamed key breaks it here first."""
    load_config(_schema(path), path)


def test_packaged_quickstart_defaults_validate() -> None:
    from memalpha.quickstart import load_quickstart_config

    cfg = load_quickstart_config(None, ["minutes=5"])
    assert cfg.minutes == 5 and cfg.sft.prompt == cfg.train.prompt


def test_extends_lays_a_file_over_its_base(tmp_path) -> None:
    """Maps merge key by key down the chain, lists are replaced whole, and each `extends` is
    read relative to the file that names it."""
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "root.yaml").write_text(
        "core_max_tokens: 256\nview: {mode: retrieved, k: 8}\ndisabled: [episodic]\n"
    )
    (tmp_path / "base" / "mid.yaml").write_text("extends: root.yaml\nview: {k: 4}\n")
    (tmp_path / "leaf.yaml").write_text("extends: base/mid.yaml\ndisabled: [core]\n")
    cfg = load_config(MemoryConfig, tmp_path / "leaf.yaml", ["view.k=3"])
    assert cfg.core_max_tokens == 256
    assert cfg.view.mode == "retrieved" and cfg.view.k == 3
    assert cfg.disabled == {Component.CORE}


def test_a_plus_key_appends_to_the_extended_list(tmp_path) -> None:
    """`methods+:` adds to the base's methods, in order, down a chain of two; the pools a leaf
    adds merge as mappings do, and the datasets it does not name stay the base's."""
    from memalpha.eval import EvalConfig

    (tmp_path / "root.yaml").write_text(
        "datasets: [{source: synth_cr, split: test, instances: 2}]\n"
        "methods: [{name: rule, kind: rule-writer}, {name: s0, kind: rule-writer}]\n"
    )
    (tmp_path / "mid.yaml").write_text(
        "extends: root.yaml\nmethods+: [{name: s1, kind: rule-writer}]\npools: {seeds: [s0, s1]}\n"
    )
    (tmp_path / "leaf.yaml").write_text(
        "extends: mid.yaml\nmethods+: [{name: s2, kind: rule-writer}]\n"
        "pools: {seeds3: [s0, s1, s2]}\n"
    )
    cfg = load_config(EvalConfig, tmp_path / "leaf.yaml")
    assert [m.name for m in cfg.methods] == ["rule", "s0", "s1", "s2"]
    assert cfg.pools == {"seeds": ["s0", "s1"], "seeds3": ["s0", "s1", "s2"]}
    assert [d.source for d in cfg.datasets] == ["synth_cr"]
    nested = tmp_path / "nested.yaml"
    (tmp_path / "mem.yaml").write_text("view: {k: 4}\ndisabled: [episodic]\n")
    nested.write_text("extends: mem.yaml\ndisabled+: [core]\n")
    assert load_config(MemoryConfig, nested).disabled == {Component.EPISODIC, Component.CORE}


@pytest.mark.parametrize(
    ("files", "fragment"),
    [
        ({"a.yaml": "disabled+: [core]\n"}, "a.yaml.*'disabled\\+' appends to the list"),
        (
            {"a.yaml": "extends: b.yaml\ndisabled+: core\n", "b.yaml": "disabled: []\n"},
            "a.yaml.*appends a list, got str",
        ),
        (
            {"a.yaml": "extends: b.yaml\ndisabled+: [core]\ndisabled: []\n", "b.yaml": ""},
            "both given",
        ),
        (
            {"a.yaml": "extends: b.yaml\nview: {k+: [1]}\n", "b.yaml": "view: {k: 4}\n"},
            "'k\\+' appends to the list 'k'.*holds none",
        ),
    ],
)
def test_a_bad_plus_key_names_the_file(tmp_path, files, fragment) -> None:
    """An append with nothing to append to, or that is not a list, or beside a replacement of
    the same list, is refused by name instead of reaching the model as an unknown key."""
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_config(MemoryConfig, tmp_path / "a.yaml")


@pytest.mark.parametrize(
    ("files", "fragment"),
    [
        ({"a.yaml": "extends: a.yaml\n"}, "'extends' loops"),
        ({"a.yaml": "extends: b.yaml\n", "b.yaml": "extends: a.yaml\n"}, "'extends' loops"),
        ({"a.yaml": "extends: gone.yaml\n"}, "gone.yaml.*not found|not found.*gone.yaml"),
        ({"a.yaml": "extends: [b.yaml]\n"}, "must be one config file's path"),
        ({"a.yaml": "extends: b.yaml\n", "b.yaml": "- x\n"}, "b.yaml.*mapping|mapping.*b.yaml"),
    ],
)
def test_bad_extends_names_the_file(tmp_path, files, fragment) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_config(MemoryConfig, tmp_path / "a.yaml")


@pytest.mark.parametrize(
    ("variant", "base", "stated"),
    [
        (
            "train/cpu-smollm2-select-branch-c64",
            "train/cpu-smollm2-select-branch",
            {"out_dir", "data", "reward"},
        ),
        ("sft/cpu-smollm2-select-c64", "sft/cpu-smollm2-select", {"out_dir", "data", "examples"}),
    ],
)
def test_shipped_variants_differ_from_their_base_only_where_they_say(variant, base, stated) -> None:
    """A 64-token variant changes its base's chunks (and what it names), nothing else."""
    kind = _schema(CONFIGS / f"{variant}.yaml")
    own = load_config(kind, CONFIGS / f"{variant}.yaml").model_dump(mode="json")
    under = load_config(kind, CONFIGS / f"{base}.yaml").model_dump(mode="json")
    assert {k for k in own if own[k] != under[k]} == stated
    assert {d["chunk_tokens"] for d in own["data"]["train"]} == {64}
    assert {d["chunk_tokens"] for d in under["data"]["train"]} == {128}


def test_a_refused_resume_names_what_changed(tmp_path):
    """Which keys differ, with the value then and now, so a user sees what to put back."""
    from memalpha.config import check_resumable, save_run_config
    from memalpha.errors import ConfigError
    from memalpha.eval import EvalConfig

    first = EvalConfig(methods=[{"name": "rule", "kind": "rule-writer"}], files=["x.jsonl"])
    save_run_config(tmp_path, first.model_copy(update={"threads": 1}))
    changed = first.model_copy(update={"threads": 2, "reader_max_new_tokens": 9})
    with pytest.raises(ConfigError) as refused:
        check_resumable(tmp_path, changed, ())
    assert "reader_max_new_tokens: 64 then, 9 now; threads: 1 then, 2 now" in str(refused.value)
    check_resumable(tmp_path, changed, ("threads", "reader_max_new_tokens"))  # volatile: passes
