"""The CLI as a user runs it: real store files, the installed `memalpha` entry point."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memalpha.cli import app

runner = CliRunner()
README = Path(__file__).resolve().parents[1] / "README.md"


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_tools_schema_prints_the_three_published_tools() -> None:
    result = invoke("tools", "schema")
    assert result.exit_code == 0
    specs = json.loads(result.stdout)
    assert [s["function"]["name"] for s in specs] == [
        "new_memory_insert",
        "memory_update",
        "memory_delete",
    ]


def test_tools_schema_respects_disabled_components() -> None:
    result = invoke("tools", "schema", "--functions", "--set", "disabled=[core, episodic]")
    enums = {
        s["name"]: s["parameters"]["properties"]["memory_type"]["enum"]
        for s in json.loads(result.stdout)
    }
    assert set(enums["memory_update"]) == {"semantic_memory"}


def test_demo_then_stats_show_export_import(tmp_path) -> None:
    db = str(tmp_path / "mem.db")
    assert invoke("demo", "--store", db).exit_code == 0
    assert invoke("demo", "--store", db, "--session", "other").exit_code == 0
    stats = invoke("memory", "stats", "--store", db)
    assert stats.exit_code == 0 and "demo" in stats.stdout and "other" in stats.stdout
    show = invoke("memory", "show", "--store", db, "--session", "demo")
    assert "[s1] Ada's research vessel, the Gaivota, sleeps six people." in show.stdout
    out = tmp_path / "demo.json"
    assert (
        invoke("memory", "export", "--store", db, "--session", "demo", "--out", str(out)).exit_code
        == 0
    )
    assert (
        invoke(
            "memory", "import", "--store", db, "--session", "copy", "--input", str(out)
        ).exit_code
        == 0
    )
    a = invoke("memory", "export", "--store", db, "--session", "demo").stdout
    b = invoke("memory", "export", "--store", db, "--session", "copy").stdout
    assert json.loads(a) == json.loads(b)


def test_import_refuses_to_overwrite_without_replace(tmp_path) -> None:
    db = str(tmp_path / "mem.db")
    invoke("demo", "--store", db)
    out = tmp_path / "demo.json"
    invoke("memory", "export", "--store", db, "--session", "demo", "--out", str(out))
    result = invoke("memory", "import", "--store", db, "--session", "demo", "--input", str(out))
    assert result.exit_code == 1 and "already exists" in result.stderr
    ok = invoke(
        "memory", "import", "--store", db, "--session", "demo", "--input", str(out), "--replace"
    )
    assert ok.exit_code == 0


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["memory", "stats", "--store", "missing.db"], 2, "no store at"),
        (
            ["memory", "show", "--store", "{db}", "--session", "nobody"],
            1,
            "unknown session 'nobody'",
        ),
        (["tools", "schema", "--set", "core_max_tokens=-3"], 2, "core_max_tokens"),
        (["tools", "schema", "--set", "no_such_key=1"], 2, "no_such_key"),
        (["tools", "schema", "--set", "novalue"], 2, "key.path=value"),
        (["tools", "schema", "--config", "absent.yaml"], 2, "config file not found"),
    ],
)
def test_errors_are_one_line_without_traceback(tmp_path, args, code, fragment) -> None:
    db = tmp_path / "mem.db"
    invoke("demo", "--store", str(db))
    result = invoke(*[a.replace("{db}", str(db)) for a in args])
    assert result.exit_code == code, result.output
    assert fragment in result.stderr and "Traceback" not in result.output


def test_corrupt_store_is_reported_not_crashed(tmp_path) -> None:
    db = tmp_path / "bad.db"
    db.write_bytes(b"garbage" * 500)
    result = invoke("memory", "stats", "--store", str(db))
    assert result.exit_code == 1 and "cannot open as a memalpha store" in result.stderr


def all_commands(group=app, prefix=()) -> list[tuple[str, ...]]:
    import typer.main

    click_group = typer.main.get_command(group)
    out = []

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, path + (name,))
        else:
            out.append(path)

    walk(click_group, prefix)
    return out


@pytest.mark.parametrize("command", all_commands(), ids=" ".join)
def test_every_command_has_help_with_an_example_and_is_in_the_readme(command) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0 and "Example:" in result.stdout
    assert re.search(
        r"memalpha " + r"\s+".join(map(re.escape, command)) + r"\b", README.read_text()
    ), f"`memalpha {' '.join(command)}` missing from README"


def test_installed_entry_point_runs() -> None:
    result = subprocess.run(["memalpha", "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("memalpha ")


def test_data_build_stats_show(tmp_path) -> None:
    paths = []
    for source in ("squad", "trec_coarse", "book", "conflict"):
        paths.append(str(tmp_path / f"{source}.jsonl"))
        result = invoke(
            "data",
            "build",
            "--source",
            source,
            "--instances",
            "1",
            "--max-tokens",
            "2000",
            "--out",
            paths[-1],
        )
        assert result.exit_code == 0, result.output
    stats = invoke("data", "stats", *paths)
    assert stats.exit_code == 0
    for competency in (
        "accurate_retrieval",
        "test_time_learning",
        "long_range_understanding",
        "conflict_resolution",
    ):
        assert competency[:8] in stats.stdout
    show = invoke("data", "show", paths[0], "--index", "0")
    assert show.exit_code == 0 and "chunk 0" in show.stdout and "gold:" in show.stdout
    bad = invoke("data", "show", paths[0], "--index", "9")
    assert bad.exit_code == 2 and "out of range" in bad.stderr


def test_data_build_rejects_bad_split(tmp_path) -> None:
    result = invoke(
        "data", "build", "--source", "squad", "--split", "dev", "--out", str(tmp_path / "x.jsonl")
    )
    assert result.exit_code == 2 and "split" in result.stderr


def _big_store(path) -> None:
    from memalpha.memory import MemorySnapshot, SqliteStore
    from memalpha.memory.model import Entry

    entries = tuple(Entry(f"s{i}", f"entry number {i} " * 20, 0) for i in range(1, 1500))
    with SqliteStore(path) as db:
        db.write("big", MemorySnapshot("core", entries, ()))


def test_corrupt_pages_are_a_one_line_error(tmp_path) -> None:
    """The header reads fine, the pages behind it do not (a DatabaseError from `read`)."""
    db = tmp_path / "pages.db"
    _big_store(db)
    data = bytearray(db.read_bytes())
    data[8192 : len(data) - 4096] = b"\xff" * (len(data) - 12288)
    db.write_bytes(bytes(data))
    for command in (["memory", "stats"], ["memory", "show", "--session", "big"]):
        result = invoke(*command, "--store", str(db))
        assert result.exit_code == 1, result.output
        assert "corrupt" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize("content", [b"", b"foreign"])
def test_an_empty_or_foreign_file_is_refused_and_left_as_it_was(tmp_path, content) -> None:
    import sqlite3

    db = tmp_path / "other.db"
    if content:
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE invoices (id INTEGER)")
    else:
        db.write_bytes(b"")
    before = db.read_bytes()
    for command in (["memory", "stats"], ["memory", "export", "--session", "x", "--out", "o.json"]):
        result = invoke(*command, "--store", str(db))
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert "memalpha store" in result.stderr
    if content:  # writing commands refuse a foreign file too
        demo = invoke("demo", "--store", str(db))
        assert demo.exit_code == 1 and "invoices" in demo.stderr
    assert db.read_bytes() == before


def test_a_full_disk_is_a_one_line_error(tmp_path) -> None:
    """A file-size limit makes the import's writes fail half-way: one line, exit 1."""
    import resource
    import sys

    memory = {
        "semantic": [{"id": f"s{i}", "content": "word " * 50 + str(i)} for i in range(1, 3000)]
    }
    src = tmp_path / "big.json"
    src.write_text(json.dumps(memory))

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    cmd = [sys.executable, "-m", "memalpha.cli", "memory", "import", "--store"]
    cmd += [str(tmp_path / "m.db"), "--session", "x", "--input", str(src)]
    done = subprocess.run(cmd, preexec_fn=limit, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "cannot write" in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "text, fragment",
    [
        ('{"semantic": [{"id": "s²", "content": "a"}]}', "not of the form"),
        ("[" * 100_000, "nested too deep"),
        ('{"semantic": [{"id": "s1", "content": "\\ud800"}]}', "surrogate"),
        ('{"semantic": [{"id": "s1", "content": "\\u200b"}]}', "invisible"),
    ],
)
def test_bad_import_files_are_one_line_errors(tmp_path, text, fragment) -> None:
    src = tmp_path / "bad.json"
    src.write_text(text)
    result = invoke(
        "memory", "import", "--store", str(tmp_path / "m.db"), "--session", "x", "--input", str(src)
    )
    assert result.exit_code == 1 and fragment in result.stderr, result.output
    assert "Traceback" not in result.output


def test_progress_in_a_log_file_is_one_line_per_change() -> None:
    """Where stderr is a file (nohup, CI), rich draws no live bar; LineProgress writes lines."""
    import time
    from io import StringIO

    from rich.console import Console
    from rich.progress import TextColumn

    from memalpha.cli.common import LineProgress

    def counts(bar: LineProgress) -> list[str]:
        text = bar.console.file.getvalue()
        return [line.split()[1] for line in text.splitlines() if "elapsed" in line]

    log = StringIO()
    bar = LineProgress(TextColumn("{task.description}"), console=Console(file=log, width=200))
    bar.every_s = 0.0
    with bar:
        task = bar.add_task("train", total=3, info="")
        for step, info in ((0, "start"), (1, "reward 0.5"), (1, "reward 0.5"), (2, ""), (3, "")):
            bar.update(task, completed=step, info=info)
    assert counts(bar) == ["1/3", "2/3", "3/3"]  # a count shown once; none for the start at 0
    assert "reward 0.5" in log.getvalue()
    # a burst (4 jobs of a batch finishing at once) inside the window: its first count at
    # once, its last when the window closes, without waiting for the next update
    burst = LineProgress(TextColumn("{task.description}"), console=Console(file=StringIO()))
    burst.every_s = 0.5
    with burst:
        task = burst.add_task("eval", total=24, info="")
        for done in (1, 2, 3, 4):
            burst.update(task, completed=done)
        assert counts(burst) == ["1/24"]
        deadline = time.monotonic() + 10
        while counts(burst) == ["1/24"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert counts(burst) == ["1/24", "4/24"]
        burst.update(task, completed=5)  # inside the next window: shown when the run stops
    assert counts(burst) == ["1/24", "4/24", "5/24"]
