"""The arrows of DESIGN.md §3 point one way: a lower package never imports a higher one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "memalpha"
# package -> memalpha packages it must never import
FORBIDDEN = {
    "rl": {"eval", "server", "cli"},
    "server": {"eval", "cli"},
    "retrieval": {"memory", "llm", "agent", "reader", "rollout", "rl", "eval", "server", "cli"},
    "memory": {"llm", "agent", "reader", "rollout", "rl", "eval", "server", "cli", "data"},
    "data": {
        "memory",
        "retrieval",
        "llm",
        "agent",
        "reader",
        "rollout",
        "rl",
        "eval",
        "server",
        "cli",
    },
}


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("memalpha."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("memalpha.")}
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_downward(package) -> None:
    for path in (SRC / package).rglob("*.py"):
        bad = imported_packages(path) & FORBIDDEN[package]
        assert not bad, f"{path.relative_to(SRC)} imports {sorted(bad)}"


def test_library_code_does_not_print() -> None:
    for path in SRC.rglob("*.py"):
        if path.name == "cli.py":
            continue
        calls = [
            n
            for n in ast.walk(ast.parse(path.read_text("utf-8")))
            if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "print"
        ]
        assert not calls, f"{path.relative_to(SRC)} calls print()"
