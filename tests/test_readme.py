"""The README as a newcomer runs it: its Python examples run as written (in a temporary
directory), every `memalpha …` line parses against the real CLI (command, options, values),
the two set-up commands are the ones CI runs, and the cheap command lines run for real."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from memalpha.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text("utf-8")
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)
SHELL = "\n".join(re.findall(r"```(?:bash|sh)\n(.*?)```", README, re.S))


def _memalpha_lines() -> list[str]:
    """Every `memalpha …` invocation in the README's shell blocks, without comments, optional
    `[...]` parts or a trailing `&`, including those chained after `&&`."""
    lines = []
    for raw in SHELL.splitlines():
        for part in raw.split("&&"):
            part = re.sub(r"\s+#\s.*$", "", part).strip()
            if part.startswith("memalpha "):
                lines.append(_without_optional(part).rstrip(" &"))
    return lines


def _without_optional(line: str) -> str:
    """Drop ` [--option value]` groups (brackets may nest inside them: 'disabled=[episodic]')."""
    out, depth = [], 0
    for i, ch in enumerate(line):
        if depth == 0 and ch == "[" and line[i - 1] == " " and line[i + 1] == "-":
            depth = 1
        elif depth:
            depth += {"[": 1, "]": -1}.get(ch, 0)
        else:
            out.append(ch)
    return "".join(out)


LINES = _memalpha_lines()


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(BLOCKS[index], f"README.md block {index}", "exec"), {})
    assert capsys.readouterr().out.strip()


@pytest.mark.parametrize("line", LINES)
def test_readme_command_line_parses(line: str) -> None:
    """Click parses the line exactly as the shell would hand it over: an unknown command,
    option or badly typed value fails here."""
    args = shlex.split(line)[1:]
    cmd = typer.main.get_command(app)
    path = ["memalpha"]
    while hasattr(cmd, "commands"):  # a group: the next word names the subcommand
        name, *args = args
        assert name in cmd.commands, f"`{' '.join(path)}` has no command {name!r}"
        cmd, path = cmd.commands[name], path + [name]
    cmd.make_context(" ".join(path), args)  # raises on an unknown option or a bad value
    assert cmd.callback is not None


def test_readme_lists_the_quickstart_and_the_test_command() -> None:
    setup, tests = re.findall(r"^python3\.11 -m venv .*$", README, re.M)[:2]
    assert setup.endswith("&& memalpha quickstart")
    ci = (ROOT / ".ci" / "run").read_text("utf-8")
    assert tests in ci, ".ci/run must run exactly the README's test command"
    assert "pip install torch==2.13.0 &&" in setup and "pip install torch==2.13.0 &&" in tests


def test_cheap_readme_command_lines_run(tmp_path, monkeypatch) -> None:
    """The CLI reference lines that need no model run in order, as a user would paste them."""
    monkeypatch.chdir(tmp_path)
    wanted = ("demo", "memory", "tools", "data build", "data stats", "data show")
    runner = CliRunner()
    ran = []
    for line in LINES:
        args = shlex.split(line)[1:]
        if " ".join(args).startswith(wanted) and "--data-dir" not in args:
            result = runner.invoke(app, args)
            assert result.exit_code == 0, f"{line}\n{result.output}"
            ran.append(args[0])
    assert {"demo", "memory", "tools", "data"} <= set(ran)
