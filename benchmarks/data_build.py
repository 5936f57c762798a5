"""Build speed: synthetic generators at 1×–64× a 6.25K-token training length (64× = 400K
tokens) and every real builder from ../shared/data.

    python benchmarks/data_build.py
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from memalpha.data import BuildConfig, build
from memalpha.data.builders import RAW_BUILDERS
from memalpha.data.synthetic import GENERATORS
from memalpha.tokens import make_token_counter
from report import save

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-tokens", type=int, default=6_250)
    parser.add_argument("--factors", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("results") / "data_build.json"
    )
    args = parser.parse_args()
    counter = make_token_counter()
    rows = []
    for source in GENERATORS:
        for factor in args.factors:
            cfg = BuildConfig(
                source=source,
                max_tokens=args.base_tokens * factor,
                chunk_tokens=2048,
                instances=1,
                facts=40,
                questions=40,
            )
            t = time.perf_counter()
            (inst,) = build(cfg, counter)
            rows.append(
                {
                    "source": source,
                    "factor": factor,
                    "target_tokens": cfg.max_tokens,
                    "content_tokens": inst.metadata["content_tokens"],
                    "chunks": len(inst.chunks),
                    "seconds": time.perf_counter() - t,
                }
            )
    for source in RAW_BUILDERS:
        cfg = BuildConfig(
            source=source,
            max_tokens=30_000,
            chunk_tokens=2048,
            instances=4,
            questions=100,
            data_dir=args.data,
        )
        t = time.perf_counter()
        built = build(cfg, counter)
        rows.append(
            {
                "source": source,
                "factor": None,
                "target_tokens": cfg.max_tokens,
                "content_tokens": None,
                "chunks": sum(len(i.chunks) for i in built),
                "instances": len(built),
                "seconds": time.perf_counter() - t,
            }
        )
    table = Table(title="instance build time (one instance; real builders: 4 × ≤30K tokens)")
    for col in ("source", "×", "target tokens", "content tokens", "chunks", "seconds"):
        table.add_column(col, justify="left" if col == "source" else "right")
    for r in rows:
        table.add_row(
            r["source"],
            str(r["factor"] or "-"),
            f"{r['target_tokens']:,}",
            f"{r['content_tokens']:,}" if r["content_tokens"] else "-",
            str(r["chunks"]),
            f"{r['seconds']:.2f}",
        )
    Console(width=120).print(table)
    save(args.out, {"rows": rows}, args)


if __name__ == "__main__":
    main()
