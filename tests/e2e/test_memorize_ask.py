"""`memalpha memorize` then `memalpha ask` as a user runs them: the rule writer and extractive
reader always, the real SmolLM2 as writer and reader in a slow test."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from memalpha.cli import app
from memalpha.data import read_instances

runner = CliRunner()


def build_squad(tmp_path) -> str:
    path = str(tmp_path / "squad.jsonl")
    result = runner.invoke(
        app,
        [
            "data",
            "build",
            "--source",
            "squad",
            "--instances",
            "1",
            "--max-tokens",
            "1500",
            "--chunk-tokens",
            "400",
            "--out",
            path,
        ],
    )
    assert result.exit_code == 0, result.output
    return path


def test_rule_writer_then_extractive_reader_answers_from_the_store(tmp_path) -> None:
    path, db = build_squad(tmp_path), str(tmp_path / "mem.db")
    result = runner.invoke(app, ["memorize", "--instance", path, "--store", db, "--session", "s"])
    assert result.exit_code == 0 and "calls succeeded" in result.stdout
    (inst,) = read_instances(tmp_path / "squad.jsonl")
    hits = 0
    for q in inst.questions[:8]:
        answer = runner.invoke(app, ["ask", q.question, "--store", db, "--session", "s"])
        assert answer.exit_code == 0 and "answer:" in answer.stdout
        hits += any(a.lower() in answer.stdout.lower() for a in q.answers)
    assert hits >= 2  # the store really holds the facts the questions need


def test_memorize_needs_exactly_one_input(tmp_path) -> None:
    result = runner.invoke(app, ["memorize", "--store", str(tmp_path / "m.db"), "--session", "s"])
    assert result.exit_code == 2 and "exactly one of --input" in result.stderr


def test_memorize_a_plain_text_file(tmp_path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("Ada moved to Lisbon in 2021. She works as a marine biologist. " * 3)
    db = str(tmp_path / "m.db")
    result = runner.invoke(
        app,
        ["memorize", "--input", str(text), "--store", db, "--session", "n", "--chunk-tokens", "32"],
    )
    assert result.exit_code == 0
    answer = runner.invoke(app, ["ask", "Where did Ada move?", "--store", db, "--session", "n"])
    assert "Lisbon" in answer.stdout


@pytest.mark.slow
def test_smollm2_memorizes_and_answers_offline(tmp_path) -> None:
    path, db = build_squad(tmp_path), str(tmp_path / "mem.db")
    result = runner.invoke(
        app,
        [
            "memorize",
            "--instance",
            path,
            "--store",
            db,
            "--session",
            "m",
            "--policy",
            "smollm2-135m-instruct",
            "--max-new-tokens",
            "96",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "memorized" in result.stdout
    runner.invoke(app, ["memorize", "--instance", path, "--store", db, "--session", "r"])
    answer = runner.invoke(
        app,
        [
            "ask",
            "What is this text about?",
            "--store",
            db,
            "--session",
            "r",
            "--reader",
            "smollm2-135m-instruct",
        ],
    )
    assert answer.exit_code == 0 and "answer:" in answer.stdout


def test_a_trained_policy_memorizes_with_the_writer_it_was_trained_with(
    tmp_path, tiny_model
) -> None:
    """A policy folder records its writer (writer.json): `memorize --policy` uses it, so a
    policy trained on compact prompts is not driven with the published ones; options win."""
    import shutil

    from memalpha.agent import WriterConfig, save_writer_config

    folder = tmp_path / "policy"
    shutil.copytree(tiny_model, folder)
    save_writer_config(folder, WriterConfig(prompt="compact", max_new_tokens=6))
    text = tmp_path / "note.txt"
    text.write_text("Alice moved to Paris in 2019. She bakes bread.", "utf-8")
    args = ["memorize", "--input", str(text), "--store", str(tmp_path / "m.db")]
    recorded = runner.invoke(app, [*args, "--session", "a", "--policy", str(folder)])
    assert recorded.exit_code == 0, recorded.output
    assert "prompt compact, budget 6 tokens" in recorded.output
    told = runner.invoke(
        app,
        [*args, "--session", "b", "--policy", str(folder), "--prompt", "published"]
        + ["--max-new-tokens", "4", "--view", "retrieved", "--view-k", "2"],
    )
    assert told.exit_code == 0, told.output
    assert "prompt published, budget 4 tokens, view retrieved k=2" in told.output
    plain = runner.invoke(
        app, [*args, "--session", "c", "--policy", str(tiny_model), "--max-new-tokens", "8"]
    )
    assert "format hermes, prompt published, budget 8" in plain.output  # nothing recorded


@pytest.mark.parametrize(
    "option", [["--view", "sideways"], ["--prompt", "terse"], ["--view-k", "-1"]]
)
def test_a_bad_writer_option_is_a_config_error(tmp_path, option) -> None:
    text = tmp_path / "note.txt"
    text.write_text("Alice moved to Paris.", "utf-8")
    args = ["memorize", "--input", str(text), "--store", str(tmp_path / "m.db"), "--session", "s"]
    result = runner.invoke(app, [*args, *option])
    assert result.exit_code == 2 and "invalid writer settings" in result.output
    assert not (tmp_path / "m.db").exists()  # refused before anything was written
