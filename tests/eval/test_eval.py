"""`memalpha eval` end to end on real instances (SQuAD, TREC, the novel, the conflict builder)
with all six methods. The LLM parts (memalpha writer, MemAgent, MEM1) run the tiny random
model of tests/tiny.py — a real local transformers model, fast enough for the default suite;
SmolLM2 numbers are in benchmarks/RESULTS.md."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from memalpha.cli import app
from memalpha.data import Competency
from memalpha.eval import EvalConfig, read_rows, run_eval
from memalpha.eval.config import MethodConfig
from memalpha.eval.methods import LongContext, RagTopK


def small(shared_data) -> dict:
    """One short held-out instance per source: enough to exercise every method."""
    return {
        "split": "test",
        "instances": 1,
        "max_tokens": 160,
        "chunk_tokens": 64,
        "questions": 3,
        "data_dir": str(shared_data),
    }


def config(tmp_path, shared_data, tiny_model, name="run", **extra) -> EvalConfig:
    one = small(shared_data)
    model = {"model": str(tiny_model), "batch_size": 8}
    return EvalConfig.model_validate(
        {
            "out_dir": str(tmp_path / name),
            "datasets": [
                {"source": "squad", **one},
                {"source": "trec_coarse", **one},
                {"source": "book", **one, "max_tokens": 800, "chunk_tokens": 200},
                {
                    "source": "conflict",
                    **one,
                    "max_tokens": 400,
                    "chunk_tokens": 128,
                    "facts": 4,
                },
            ],
            "methods": [
                {
                    "name": "memalpha-tiny",
                    "kind": "memalpha",
                    "policy": model,
                    "prompt": "compact",
                    "max_new_tokens": 8,
                },
                {"name": "rule", "kind": "rule-writer"},
                {"name": "long", "kind": "long-context", "window_tokens": 80},
                {"name": "rag", "kind": "rag-topk", "k": 1},
                {"name": "memagent", "kind": "memagent", "model": model, "memory_tokens": 16},
                {"name": "mem1", "kind": "mem1", "model": model, "memory_tokens": 16},
            ],
            "reader": {"kind": "extractive"},
            **extra,
        }
    )


def test_six_methods_one_reader_one_report(tmp_path, shared_data, tiny_model):
    cfg = config(tmp_path, shared_data, tiny_model)
    run_dir = run_eval(cfg)
    rows = read_rows(run_dir / "predictions.jsonl")
    assert {r["method"] for r in rows} == {m.name for m in cfg.methods}
    assert len({r["instance_id"] for r in rows}) == 4
    assert all({"question", "gold", "prediction", "score", "memory_tokens"} <= set(r) for r in rows)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(summary["methods"]) == {m.name for m in cfg.methods}
    rule = summary["methods"]["rule"]["1"]
    assert set(rule["competencies"]) == {c.value for c in Competency}
    assert rule["overall"] == pytest.approx(sum(rule["competencies"].values()) / 4)
    assert summary["methods"]["long"]["1"]["memory_tokens"] <= 80
    assert rule["overall"] > 0  # the rule writer's memory answers some questions
    md = (run_dir / "summary.md").read_text()
    assert "| rule |" in md and "unweighted mean over competencies" in md
    assert (run_dir / "scores.png").stat().st_size > 0


def test_rerun_gives_byte_identical_scores_also_with_processes(tmp_path, shared_data, tiny_model):
    a = run_eval(config(tmp_path, shared_data, tiny_model, "a"))
    b = run_eval(config(tmp_path, shared_data, tiny_model, "b", workers=2))
    assert (a / "summary.json").read_bytes() == (b / "summary.json").read_bytes()


def test_a_run_keeps_each_memory_and_the_fate_of_each_changed_fact(
    tmp_path, shared_data, tiny_model, counter
):
    """memories.jsonl holds the final memory of every memory method's job, and a conflict
    question's row the fate of its changed facts in that memory and its type (single or multi
    hop); the rule writer stores every chunk, so it never loses a change (each old value it kept
    stands beside the new one). A writer's line also holds each chunk's calls, and they replay
    to that final memory."""
    from memalpha.eval import read_calls, read_memories
    from memalpha.eval.runner import load_jobs
    from memalpha.memory import Memory, ToolExecutor, ToolRegistry, snapshot_to_dict
    from memalpha.memory.export import snapshot_from_dict
    from memalpha.tokens import make_token_counter

    cfg = config(tmp_path, shared_data, tiny_model)
    cfg = cfg.model_copy(
        update={
            "methods": [m for m in cfg.methods if m.name in ("memalpha-tiny", "rule", "rag")],
            "datasets": [d for d in cfg.datasets if d.source == "conflict"],
        }
    )
    run_dir = run_eval(cfg)
    memories = read_memories(run_dir)
    rows = read_rows(run_dir / "predictions.jsonl")
    assert {method for method, _, _ in memories} == {"memalpha-tiny", "rule"}  # rag keeps none
    questions = {
        (j.instance.id, q.id): q for j in load_jobs(cfg, counter) for q in j.instance.questions
    }
    assert any(q.superseded for q in questions.values())
    assert {r.get("qtype") for r in rows} == {"single_hop", "multi_hop"}
    for r in rows:
        asked = questions[(r["instance_id"], r["question_id"])]
        assert r.get("qtype") == asked.qtype  # recorded where the source names one
        if r["method"] == "rag" or not asked.superseded:
            assert "fates" not in r
            continue
        memory = snapshot_from_dict(memories[(r["method"], r["scale"], r["instance_id"])])
        contents = [e.content for e in memory.semantic + memory.episodic]
        contents += [memory.core] if memory.core else []
        assert r["fates"] == [change.fate(contents) for change in asked.superseded]
    rule = [f for r in rows if r["method"] == "rule" for f in r.get("fates", [])]
    assert rule and set(rule) <= {"both", "overwritten"}
    # a writer's line also holds each chunk's calls, which replay to its final memory
    calls = read_calls(run_dir)
    assert set(calls) == set(memories)
    jobs = {(j.method, j.scale, j.instance.id): j for j in load_jobs(cfg, counter)}
    for key, made in calls.items():
        job, method = jobs[key], next(m for m in cfg.methods if m.name == key[0])
        assert len(made) == len(job.instance.chunks)
        replayed = Memory(method.writer.memory, make_token_counter(method.writer.memory.tokenizer))
        executor = ToolExecutor(ToolRegistry(method.writer.memory.disabled))
        for chunk in made:
            executor.execute_all(replayed, chunk)
        assert snapshot_to_dict(replayed.snapshot()) == memories[key]
    assert all(any(made) for key, made in calls.items() if key[0] == "rule")  # it stores chunks


def test_killed_run_resumes_without_redoing_finished_jobs(tmp_path, shared_data, tiny_model):
    cfg = config(tmp_path, shared_data, tiny_model)
    run_eval(cfg)
    path = cfg.out_dir / "predictions.jsonl"
    full = path.read_bytes()
    lines = full.splitlines(keepends=True)
    first = json.loads(lines[0])
    block = first["questions"]
    # as a kill leaves it: the first job's rows whole, the next job's first row torn
    path.write_bytes(b"".join(lines[:block]) + lines[block][: len(lines[block]) // 2])
    progress = []
    run_eval(cfg, on_progress=lambda done, total: progress.append((done, total)))
    assert progress[0] == (1, 24)  # one job was done, 23 were left
    rows = read_rows(path)
    keys = [(r["method"], r["instance_id"], r["question_id"]) for r in rows]
    assert len(keys) == len(set(keys)) == len(full.splitlines())
    assert json.loads((cfg.out_dir / "summary.json").read_text())["methods"]


def _children(pid: int) -> set[int]:
    """The live processes whose parent is `pid` (Linux /proc)."""
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        child = int(stat.parent.name)
        fields = _stat(child)
        if fields and int(fields[1]) == pid and fields[0] != "Z":
            out.add(child)
    return out


def _alive(pids: set[int]) -> set[int]:
    return {p for p in pids if (fields := _stat(p)) and fields[0] != "Z"}


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state, parent, ...); [] when the
    process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return []


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_killing_an_eval_ends_its_worker_processes(tmp_path, shared_data, tiny_model):
    """SIGKILL runs no cleanup in `memalpha eval`; its worker processes, each holding a batch
    that takes tens of seconds (a long book, 256 tokens a chunk), end within seconds anyway, not
    when their batch is done (an orphaned pool once computed for an hour on the cores a resumed
    run needed)."""
    cfg = config(tmp_path, shared_data, tiny_model, workers=2, batch_instances=1)
    long_book = {**small(shared_data), "instances": 2, "max_tokens": 6000, "chunk_tokens": 200}
    cfg = cfg.model_copy(
        update={
            "datasets": [cfg.datasets[2].model_copy(update=long_book)],
            "methods": [cfg.methods[0].model_copy(update={"max_new_tokens": 256})],
        }
    )
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json", exclude_unset=True)))
    cmd = [sys.executable, "-m", "memalpha.cli", "eval", "--config", str(path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        workers: set[int] = set()
        while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
            workers = {p for p in _children(proc.pid) if "spawn_main" in _cmdline(p)}
            time.sleep(0.2)
        assert len(workers) == 2, proc.stderr.read().decode() if proc.poll() is not None else ""
        time.sleep(8)  # each worker has started and taken a batch
        assert _alive(workers) == workers  # still computing: the batches are long
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 10
    while _alive(workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = _alive(workers)
    for pid in left:  # do not leave them to the rest of the suite
        os.kill(pid, signal.SIGKILL)
    assert not left, f"workers still running 10 s after their eval was killed: {sorted(left)}"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_changed_config_refuses_to_resume(tmp_path, shared_data, tiny_model):
    from memalpha.errors import ConfigError

    cfg = config(tmp_path, shared_data, tiny_model)
    first = cfg.model_copy(update={"methods": cfg.methods[1:4]})
    run_eval(first)
    changed = [m.model_copy(update={"window_tokens": 81}) for m in first.methods]
    with pytest.raises(ConfigError, match="different config"):  # a method kept but changed
        run_eval(cfg.model_copy(update={"methods": changed}))


def test_added_methods_resume_without_redoing_the_others(tmp_path, shared_data, tiny_model):
    """A method added to a finished evaluation runs alone; the others' rows are kept; a pool
    added with it is reported, not run. Here the finished run is first copied to another
    directory, as RESULTS.md's runs do to keep it as it was, and resumed from the copy."""
    cfg = config(tmp_path, shared_data, tiny_model, pools={"writers": ["memalpha-tiny", "rule"]})
    first = cfg.model_copy(update={"methods": cfg.methods[1:4], "pools": {}})
    run_eval(first)
    kept = (first.out_dir / "predictions.jsonl").read_bytes()
    cfg = cfg.model_copy(update={"out_dir": tmp_path / "with-more-methods"})
    shutil.copytree(first.out_dir, cfg.out_dir)
    before = (cfg.out_dir / "predictions.jsonl").read_bytes()
    progress = []
    run_eval(cfg, on_progress=lambda done, total: progress.append((done, total)))
    assert progress[0] == (12, 24)  # 3 of 6 methods x 4 instances were done
    assert (cfg.out_dir / "predictions.jsonl").read_bytes().startswith(before)
    assert "writers" not in {r["method"] for r in read_rows(cfg.out_dir / "predictions.jsonl")}
    summary = json.loads((cfg.out_dir / "summary.json").read_text())
    assert set(summary["methods"]) == {m.name for m in cfg.methods} | {"writers"}
    overall = {m: s["1"]["overall"] for m, s in summary["methods"].items()}
    assert overall["writers"] == pytest.approx((overall["memalpha-tiny"] + overall["rule"]) / 2)
    assert (first.out_dir / "predictions.jsonl").read_bytes() == kept  # the original untouched


def test_long_context_keeps_the_end_and_rag_finds_the_chunk(counter, real_instances):
    (inst,) = real_instances(["squad"], instances=1, max_tokens=600, chunk_tokens=64, questions=6)
    long = LongContext(MethodConfig(name="l", kind="long-context", window_tokens=50), counter)
    text = long.recall(inst).context("")
    assert inst.chunks[-1].endswith(text[-40:]) and counter.count(text) <= 50
    rag = RagTopK(MethodConfig(name="r", kind="rag-topk", k=1), counter)
    recall = rag.recall(inst)
    assert recall.memory_tokens == sum(counter.count_many(inst.chunks))
    contexts = [recall.context(qa.question) for qa in inst.questions]
    assert all(c in inst.chunks for c in contexts)  # k=1: one raw chunk
    found = [
        any(a in c for a in qa.answers) for c, qa in zip(contexts, inst.questions, strict=True)
    ]
    assert sum(found) >= len(found) / 2  # BM25 finds the answer's chunk for most questions


def test_cli_eval_and_report(tmp_path, shared_data, tiny_model):
    cfg = config(tmp_path, shared_data, tiny_model)
    cfg = cfg.model_copy(update={"methods": cfg.methods[1:4]})
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    runner = CliRunner()
    result = runner.invoke(app, ["eval", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "| rule |" in result.stdout
    # stderr is no terminal here, as in a log file: the progress comes as plain lines too
    assert re.search(r"^jobs \(method × instance\) (\d+)/\1 elapsed", result.stderr, re.M)
    result = runner.invoke(app, ["report", str(cfg.out_dir), str(cfg.out_dir)])
    assert result.exit_code == 0 and "run/rule" in result.stdout
    bad = runner.invoke(app, ["report", str(tmp_path / "nothing")])
    assert bad.exit_code == 1 and "summary.json" in " ".join(bad.output.split())
    # the summary file alone (a run directory gone), paired and pooled with the run
    kept = tmp_path / "kept.json"
    kept.write_bytes((cfg.out_dir / "summary.json").read_bytes())
    pooled = ["report", str(cfg.out_dir), str(kept), "--pool", "both=run/rule,kept/rule"]
    result = runner.invoke(app, pooled)
    assert result.exit_code == 0, result.output
    assert "| both |" in result.stdout  # one instance a source here: shown, too few to pair
    table = [line for line in result.stdout.splitlines() if line.startswith("|")]
    assert len(table) > 4 and all(line.endswith("|") for line in table)  # rows never wrapped
    for spec in ("both", "both=run/rule", "=run/rule,kept/rule", "run/rule=run/rule,kept/rule"):
        bad = runner.invoke(app, [*pooled[:3], "--pool", spec])
        assert bad.exit_code in (1, 2) and "pool" in " ".join(bad.output.split()), spec
    # --out keeps what was compared as a summary of its own, which a later report reads back
    merged_path = tmp_path / "merged.json"
    result = runner.invoke(app, [*pooled, "--out", str(merged_path)])
    assert result.exit_code == 0, result.output
    merged = json.loads(merged_path.read_text("utf-8"))
    own = json.loads((cfg.out_dir / "summary.json").read_text("utf-8"))["methods"]
    assert set(merged["methods"]) == {"both"} | {f"{r}/{m}" for r in ("run", "kept") for m in own}
    for name in ("run/rule", "kept/rule", "both"):
        assert merged["methods"][name]["1"]["overall"] == own["rule"]["1"]["overall"]
    assert merged["merged_from"]["pools"] == {"both": ["run/rule", "kept/rule"]}
    again = runner.invoke(app, ["report", str(merged_path)])
    assert again.exit_code == 0 and "| merged/both |" in again.stdout
    # a scale the runs were not answered at names the run and the scales it has
    longer = runner.invoke(app, [*pooled, "--scale", "16"])
    assert longer.exit_code == 1
    assert "was not answered at scale 16; its scales: 1" in " ".join(longer.output.split())


@pytest.mark.parametrize("name", ["cpu-smollm2", "length"])
def test_shipped_eval_configs_load_and_cover_the_competencies(name, repo_root, counter):
    from memalpha.config import load_config
    from memalpha.eval.runner import load_jobs

    cfg = load_config(EvalConfig, repo_root / "configs" / "eval" / f"{name}.yaml")
    jobs = load_jobs(cfg, counter)
    assert jobs and {j.scale for j in jobs} == set(cfg.scales)
    if name == "cpu-smollm2":
        kinds = {m.kind for m in cfg.methods}
        assert kinds == {"memalpha", "rule-writer", "long-context", "rag-topk", "memagent", "mem1"}
        assert {j.instance.competency for j in jobs} == set(Competency)


def test_ray_fan_out_gives_the_same_scores(tmp_path, shared_data, tiny_model, restore_threads):
    """`ray_address` runs the jobs as Ray actors (a local Ray instance here), each on the
    run's `threads` (unset, an actor computes on what Ray gives it: one thread by default)."""
    pytest.importorskip("ray")
    import ray

    cfg = config(tmp_path, shared_data, tiny_model, "local", threads=1)
    methods = {"methods": cfg.methods[:4]}  # rule, long, rag + the tiny memalpha writer
    a = run_eval(cfg.model_copy(update=methods))
    b = run_eval(
        config(
            tmp_path, shared_data, tiny_model, "ray", ray_address="local", workers=2, threads=1
        ).model_copy(update=methods)
    )
    ray.shutdown()
    assert (a / "summary.json").read_bytes() == (b / "summary.json").read_bytes()


def test_writer_recalls_a_batch_in_one_generation_per_chunk_index(
    tiny_model, real_instances, counter
):
    """Jobs of one method run together: a memalpha writer generates chunk t of every instance
    in one call (the policy's batch_size caps a call), not one call per instance."""
    from memalpha.eval.methods import make_method
    from memalpha.eval.runner import Job, batches

    instances = real_instances(["squad"], instances=3, max_tokens=160, chunk_tokens=64)
    cfg = MethodConfig(
        name="w", kind="memalpha", policy={"model": str(tiny_model)}, max_new_tokens=4
    )
    method = make_method(cfg, counter, None)
    sizes = []
    generate = method.llm.generate
    method.llm.generate = lambda prompts, sampling: (
        sizes.append(len(prompts)) or generate(prompts, sampling)
    )
    recalls = method.recall_many(instances)
    method.close()
    chunks = [len(i.chunks) for i in instances]
    assert len(recalls) == 3 and all(r.memory is not None for r in recalls)
    assert sizes == [sum(n > t for n in chunks) for t in range(max(chunks))]
    jobs = [Job(m, 1, i) for m in ("a", "b") for i in instances]
    assert [[j.method for j in b] for b in batches(jobs, 2)] == [
        ["a", "a"],
        ["a"],
        ["b", "b"],
        ["b"],
    ]
    one_method = [Job("a", scale, i) for scale in (16, 1) for i in instances[:2]]
    assert [[j.scale for j in b] for b in batches(one_method, 8)] == [[16, 16], [1, 1]]


def test_a_writer_method_counts_tokens_with_its_own_tokenizer(tmp_path, shared_data, tiny_model):
    """Training counts a memory with `memory.tokenizer`; eval must too (it used cl100k)."""
    from memalpha.agent import RuleWriterLLM, WriterConfig, build_agent
    from memalpha.data import BuildConfig, build
    from memalpha.llm import FORMATS
    from memalpha.memory import Memory
    from memalpha.tokens import make_token_counter

    words = {"kind": "huggingface", "name": str(tiny_model)}  # one token per word
    squad = {"source": "squad", **small(shared_data)}
    cfg = EvalConfig.model_validate(
        {
            "out_dir": str(tmp_path / "words"),
            "datasets": [squad],
            "methods": [
                {"name": "rule-words", "kind": "rule-writer", "memory": {"tokenizer": words}},
                {"name": "rule-cl100k", "kind": "rule-writer"},
            ],
        }
    )
    rows = read_rows(run_eval(cfg) / "predictions.jsonl")
    got = {r["method"]: r["memory_tokens"] for r in rows}
    # the same memory, written as training writes it, counted with each tokenizer
    (inst,) = build(BuildConfig.model_validate(squad), make_token_counter())
    expected = {}
    for name, method in (("rule-words", cfg.methods[0]), ("rule-cl100k", cfg.methods[1])):
        writer = method.writer
        counter = make_token_counter(writer.memory.tokenizer)
        memory = Memory(writer.memory, counter)
        build_agent(writer, counter).memorize(
            RuleWriterLLM(FORMATS["hermes"]), WriterConfig().sampling(), memory, inst.chunks
        )
        expected[name] = memory.total_tokens
    assert got == expected
    assert got["rule-words"] != got["rule-cl100k"]


def test_a_trained_policy_is_evaluated_as_it_was_trained(tmp_path, tiny_model):
    """A policy folder's writer.json is the method's default; set fields replace it."""
    from memalpha.agent import WriterConfig, save_writer_config

    folder = tmp_path / "policy"
    shutil.copytree(tiny_model, folder)
    save_writer_config(folder, WriterConfig(format="qwen", prompt="compact", max_new_tokens=77))
    recorded = MethodConfig(name="m", kind="memalpha", policy={"model": str(folder)})
    assert (recorded.writer.format, recorded.writer.prompt) == ("qwen", "compact")
    assert recorded.writer.max_new_tokens == 77
    override = MethodConfig(
        name="m", kind="memalpha", policy={"model": str(folder)}, max_new_tokens=9
    )
    assert (override.writer.prompt, override.writer.max_new_tokens) == ("compact", 9)
    base = MethodConfig(name="m", kind="memalpha", policy={"model": str(tiny_model)})
    assert base.writer == WriterConfig()  # nothing recorded: the defaults


def test_a_question_asked_of_the_same_memory_twice_is_answered_once(shared_data, tiny_model):
    """The LLM reader (here the tiny random model) is asked the questions of a batch of jobs in
    one call, and a question asked of a memory it has already seen is answered from memory: two
    writers that store the same thing get the same answers for one reading."""
    from memalpha.eval.runner import Worker, batches, load_jobs

    one = small(shared_data)
    cfg = EvalConfig.model_validate(
        {
            "datasets": [{"source": "squad", **one}, {"source": "trec_coarse", **one}],
            "methods": [
                {"name": "rule-a", "kind": "rule-writer"},
                {"name": "rule-b", "kind": "rule-writer"},
            ],
            "reader": {"kind": "rag", "model": {"model": str(tiny_model)}, "k": 5},
            "reader_max_new_tokens": 4,
        }
    )
    worker = Worker(cfg)
    memo = worker.reader.llm
    calls = []
    generate = memo.llm.generate
    memo.llm.generate = lambda prompts, sampling: (
        calls.append(len(prompts)) or generate(prompts, sampling)
    )
    jobs = load_jobs(cfg, worker.counter)
    rows = [
        row
        for batch in batches(jobs, cfg.batch_instances)
        for result in worker.run(batch)
        for row in result.rows
    ]
    worker.close()
    asked = sum(len(j.instance.questions) for j in jobs if j.method == "rule-a")
    assert asked == 6 and calls == [6]  # both instances' questions in one call; none for rule-b
    assert (memo.hits, memo.misses) == (6, 6)
    answers = {m: [r["prediction"] for r in rows if r["method"] == m] for m in ("rule-a", "rule-b")}
    assert answers["rule-a"] == answers["rule-b"]


def test_a_run_records_its_thread_count_and_resumes_only_under_it(
    tmp_path, shared_data, tiny_model, restore_threads
):
    """Greedy bf16 writing differs with the thread count (benchmarks/RESULTS.md, "Groups of 8
    at change chunks"): every row says the count it was written under, the run's config keeps
    it, and a resume under another is refused by name, the rows untouched."""
    import torch

    from memalpha.errors import ConfigError

    cfg = config(tmp_path, shared_data, tiny_model)
    cfg = cfg.model_copy(update={"methods": cfg.methods[:2], "threads": 1})
    run_eval(cfg)
    assert torch.get_num_threads() == 1
    rows = read_rows(cfg.out_dir / "predictions.jsonl")
    assert rows and {r["threads"] for r in rows} == {1}
    saved = yaml.safe_load((cfg.out_dir / "config.yaml").read_text())
    assert saved["threads"] == 1
    summary = json.loads((cfg.out_dir / "summary.json").read_text())
    assert summary["methods"]["memalpha-tiny"]["1"]["threads"] == [1]
    before = (cfg.out_dir / "predictions.jsonl").read_bytes()
    with pytest.raises(ConfigError, match=r"threads: 1 then, 2 now"):
        run_eval(cfg.model_copy(update={"threads": 2}))
    assert (cfg.out_dir / "predictions.jsonl").read_bytes() == before
    torch.set_num_threads(2)  # as found, unset, is what the machine gives: 2 here, not 1
    with pytest.raises(ConfigError, match=r"threads: 1 then, 2 now"):
        run_eval(cfg.model_copy(update={"threads": None}))
    torch.set_num_threads(1)  # as found, it is the run's count again: the run resumes
    run_eval(cfg.model_copy(update={"threads": None}))
    assert (cfg.out_dir / "predictions.jsonl").read_bytes() == before


def test_worker_processes_write_as_the_policy_folder_recorded(tmp_path, shared_data, tiny_model):
    """A trained policy writes as its `writer.json` says, under the writer keys the method
    sets itself. Worker processes once rebuilt the config from a full dump, where every key
    reads as set: the defaults replaced the recorded writer, and a policy trained with ids
    after their text was refused (found starting configs/eval/length-idafter.yaml)."""
    from memalpha.agent import WriterConfig, save_writer_config

    policy = tmp_path / "policy"
    shutil.copytree(tiny_model, policy)
    recorded = WriterConfig(prompt="compact", max_new_tokens=8, memory={"view": {"ids": "after"}})
    save_writer_config(policy, recorded)
    cfg = config(tmp_path, shared_data, tiny_model)
    cfg = cfg.model_copy(
        update={
            "datasets": cfg.datasets[:2],
            "methods": [
                MethodConfig(name="trained", kind="memalpha", policy={"model": str(policy)}),
                cfg.methods[1],
            ],
        }
    )
    assert cfg.methods[0].writer == recorded
    one = run_eval(cfg.model_copy(update={"out_dir": tmp_path / "one"}))
    two = run_eval(cfg.model_copy(update={"out_dir": tmp_path / "two", "workers": 2}))
    assert (one / "summary.json").read_bytes() == (two / "summary.json").read_bytes()


def test_a_runs_saved_config_reruns_its_policies_as_they_recorded(tmp_path):
    """A method's writer fields left unset come from its policy's writer.json; the run's saved
    config.yaml must leave them unset too, or running it again evaluates the policy under the
    defaults (the recent view, ids before) instead of the view it was trained with."""
    from memalpha.agent import WriterConfig, save_writer_config
    from memalpha.eval.runner import _prepare

    policy = tmp_path / "policy"
    policy.mkdir()
    trained = WriterConfig(prompt="compact", memory={"view": {"mode": "sentences", "k": 8}})
    save_writer_config(policy, trained)
    cfg = EvalConfig.model_validate(
        {
            "out_dir": str(tmp_path / "run"),
            "files": ["unused.jsonl"],
            "methods": [{"name": "p", "kind": "memalpha", "policy": {"model": str(policy)}}],
        }
    )
    _prepare(cfg, fresh=True)
    saved = EvalConfig.model_validate(
        yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    )
    assert saved.methods[0].writer == trained == cfg.methods[0].writer
    assert saved.threads == _prepare(cfg, fresh=False)[0].threads  # resolved, and kept
