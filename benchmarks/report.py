"""Shared by the benchmark scripts: write results JSON with the config and the machine."""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def save(out: Path, results: dict[str, Any], args: argparse.Namespace) -> None:
    """Write `results` plus the resolved arguments and the machine to `out`."""
    payload = {**results, "config": vars(args), "machine": machine()}
    out.parent.mkdir(parents=True, exist_ok=True)
    # paths, also inside lists (a repeatable --reuse), are written as their text
    out.write_text(json.dumps(payload, indent=1, default=_as_text))
    print(f"wrote {out}")


def _as_text(value: Any) -> str:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
