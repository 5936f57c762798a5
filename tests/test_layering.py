"""The arrows of DESIGN.md §3 point one way: a lower package never imports a higher one, and
a package is used from outside only through the names its `__init__` lists in `__all__`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "memalpha"
PACKAGES = sorted(p.name for p in SRC.iterdir() if (p / "__init__.py").is_file())
# package -> memalpha packages it must never import
FORBIDDEN = {
    "rl": {"eval", "server", "cli"},
    "eval": {"rl", "server", "cli"},
    "server": {"rl", "eval", "cli"},
    "reader": {"agent", "rl", "eval", "server", "cli"},
    "agent": {"reader", "rl", "eval", "server", "cli"},
    "llm": {"memory", "agent", "reader", "rl", "eval", "server", "cli", "data"},
    "retrieval": {"memory", "llm", "agent", "reader", "rl", "eval", "server", "cli"},
    "memory": {"llm", "agent", "reader", "rl", "eval", "server", "cli", "data"},
    "data": {
        "memory",
        "retrieval",
        "llm",
        "agent",
        "reader",
        "rl",
        "eval",
        "server",
        "cli",
    },
    "cli": {"rl"},
    "client": {"rl", "eval", "cli", "mcp", "agent", "llm", "rollout"},
    "mcp": {"rl", "eval", "cli"},
}
# The training commands (`memalpha sft/train/plot`, `memalpha data verl`) are the CLI of rl/:
# they reach it through `memalpha.rl`'s public names, inside the command (so no other command
# loads torch). No other CLI module may import rl/.
TRAINING_COMMANDS = {"cli/train.py", "cli/data.py"}


def imports(path: Path) -> list[tuple[str, list[str], bool]]:
    """(module, imported names, at module level) of every memalpha import in a file."""
    tree = ast.parse(path.read_text("utf-8"))
    top = {id(n) for n in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("memalpha."):
            found.append((node.module, [a.name for a in node.names], id(node) in top))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("memalpha."):
                    found.append((a.name, [], id(node) in top))
    return found


def public_names(package: str) -> set[str]:
    """A package's `__all__`, read from its `__init__` without importing it."""
    tree = ast.parse((SRC / package / "__init__.py").read_text("utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return set(ast.literal_eval(node.value))
    return set()


def imported_packages(path: Path) -> set[str]:
    return {module.split(".")[1] for module, _, _ in imports(path)}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_downward(package) -> None:
    for path in (SRC / package).rglob("*.py"):
        rel = str(path.relative_to(SRC))
        bad = imported_packages(path) & FORBIDDEN[package]
        if rel in TRAINING_COMMANDS:
            bad -= {"rl"}
        assert not bad, f"{rel} imports {sorted(bad)}"


def test_training_commands_reach_rl_lazily_through_its_public_names() -> None:
    for rel in sorted(TRAINING_COMMANDS):
        for module, _, at_top in imports(SRC / rel):
            if module.split(".")[1] == "rl":
                assert module == "memalpha.rl" and not at_top, f"{rel} imports {module}"


def test_packages_are_used_only_through_their_public_names() -> None:
    """From outside a package, only `from memalpha.<package> import <a name in __all__>`."""
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        own = rel.parts[0] if len(rel.parts) > 1 else None
        for module, names, _ in imports(path):
            parts = module.split(".")
            if parts[1] not in PACKAGES or parts[1] == own:
                continue
            assert len(parts) == 2, f"{rel} reaches past {parts[1]}/__init__: {module}"
            hidden = set(names) - public_names(parts[1])
            assert not hidden, f"{rel} imports {sorted(hidden)} not in memalpha.{parts[1]}.__all__"


@pytest.mark.parametrize("module", ["memalpha.server.app", "memalpha.client"])
def test_importing_the_server_or_its_client_does_not_load_torch(module) -> None:
    """The service with a rule or served writer, and its client, need no torch (2.7 s)."""
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


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


def test_no_function_is_longer_than_a_screen() -> None:
    """STYLE §1: functions fit on a screen; 60 lines is the hard limit."""
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                assert lines <= 60, f"{path.relative_to(SRC)}:{node.lineno} {node.name}: {lines}"
