"""Instance files: our JSONL/parquet round trip, the published Memalpha parquet layout and the
MemoryAgentBench row layout (fixtures written here in those exact layouts), clear errors."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from memalpha.agent import rule_calls
from memalpha.data import BuildConfig, Competency, build, read_instances, write_instances
from memalpha.errors import DataError


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_round_trip_is_exact(tmp_path, counter, suffix) -> None:
    instances = [
        *build(BuildConfig(source="squad", instances=2, max_tokens=2000), counter),
        *build(BuildConfig(source="synth_cr", instances=1, max_tokens=2000), counter),
    ]
    path = tmp_path / f"x{suffix}"
    write_instances(instances, path)
    assert read_instances(path) == instances


def test_published_memalpha_parquet_loads_unchanged(tmp_path) -> None:
    # the exact column set and JSON-string encoding of data/memalpha/*.parquet (SPEC §5.1)
    rows = {
        "instance_id": [0, 1],
        "prompt": ["I will provide you with sequential information chunks.", ""],
        "chunks": [
            json.dumps(
                [
                    "[Dialogue between User and Assistant on 2024-01-01 10:00]\n"
                    "<User>Here are some new facts I learnt just now:\nParis is the "
                    "capital of France.\n<Assistant>Sure I will remember them."
                ]
            ),
            json.dumps(["Sentence: how do I top up\nLabel: 3"]),
        ],
        "questions_and_answers": [
            json.dumps([{"question": "What is the capital of France?", "answer": "Paris"}]),
            json.dumps(
                [{"question": "Sentence: top up please\nWhat are the labels?", "answer": ["3"]}]
            ),
        ],
        "data_source": ["squad", "icl_trec_coarse_6600shot_balance"],
        "metadata": [json.dumps({"source": "squad"}), "{}"],
        "num_chunks": [1, 1],
        "num_questions": [1, 1],
    }
    path = tmp_path / "test.parquet"
    pq.write_table(pa.table(rows), path)
    squad, icl = read_instances(path)
    assert squad.id == "squad-0" and squad.metric == "containment"
    assert squad.questions[0].answers == ["Paris"] and "Paris" in squad.chunks[0]
    assert icl.competency is Competency.TEST_TIME_LEARNING and icl.metric == "boxed_label"
    assert squad.metadata["prompt"].startswith("I will provide")


def test_memoryagentbench_rows_are_chunked_on_load(tmp_path, counter) -> None:
    context = " ".join(f"Fact {i}: the code word for day {i} is word{i}." for i in range(400))
    rows = [
        {
            "context": context,
            "questions": ["What is the code word for day 7?"],
            "answers": [["word7"]],
            "metadata": {"source": "ruler_qa1_197K", "demo": ""},
        },
        {
            "context": "\n".join(f"Sentence: utterance {i}\nLabel: {i % 5}" for i in range(300)),
            "questions": ["Sentence: utterance 301\nLabel?"],
            "answers": [["1"]],
            "metadata": {"source": "icl_banking77_5900shot_balance", "demo": ""},
        },
    ]
    path = tmp_path / "mab.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    ar, ttl = read_instances(path, counter=counter, chunk_tokens=256)
    assert ar.data_source == "ruler_qa1_197K" and ar.metric == "substring_exact_match"
    assert len(ar.chunks) > 5 and any("word7." in c for c in ar.chunks)
    assert all(counter.count(c) <= 256 + 80 for c in ar.chunks)
    assert "Sentence: utterance 0\nLabel: 0" in ttl.chunks[0] and ttl.metric == "boxed_label"
    with pytest.raises(DataError, match="pass a token counter"):
        read_instances(path)


def test_memoryagentbench_chunks_keep_the_sources_own_dates(tmp_path, counter) -> None:
    """A LongMemEval-style history is dated by its own sessions, never by invented dates (an
    LLM reader would answer "when" questions with them); a chunk before any date is undated,
    and the rule writer then writes no episodic time."""
    sessions = [
        "Intro without a date. " + "The user likes tea. " * 30,
        "Session Date: 2023/05/20 (Sat) 02:21\nuser: I ran a charity race today. " * 3
        + "It went well. " * 30,
        "Session Date: 2023/06/02 (Fri) 10:05\nuser: I adopted a cat named Miso. " + "Yes. " * 30,
    ]
    rows = [
        {
            "context": "\n\n".join(sessions),
            "questions": ["When did I run the charity race?"],
            "answers": [["2023/05/20"]],
            "metadata": {"source": "longmemeval_s", "demo": ""},
        }
    ]
    path = tmp_path / "lme.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    (inst,) = read_instances(path, counter=counter, chunk_tokens=96)
    headers = [c.split("\n", 1)[0] for c in inst.chunks]
    assert headers[0] == "[Dialogue between User and Assistant]"
    assert "2024-01" not in " ".join(headers)  # no invented date anywhere
    race = next(i for i, c in enumerate(inst.chunks) if "charity race" in c)
    assert headers[race] == "[Dialogue between User and Assistant on 2023/05/20 (Sat) 02:21]"
    assert headers[-1] == "[Dialogue between User and Assistant on 2023/06/02 (Fri) 10:05]"
    calls = rule_calls(inst.chunks[race], first=False)
    episodic = [
        c.arguments["content"] for c in calls if c.arguments["memory_type"] == "episodic_memory"
    ]
    assert episodic and episodic[0].startswith("At 2023/05/20 (Sat) 02:21, the user shared")
    assert not [
        c
        for c in rule_calls(inst.chunks[0], first=False)
        if c.arguments["memory_type"] == "episodic_memory"
    ]


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("bad.jsonl", "{not json}\n", "row 1 is not JSON"),
        ("bad2.jsonl", '{"id": "x"}\n', "row 1 is not a valid instance"),
        ("bad.parquet", "not parquet at all", "not a readable parquet file"),
    ],
)
def test_bad_files_give_specific_errors(tmp_path, name, content, fragment) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match=fragment):
        read_instances(path)


def test_unknown_parquet_layout_is_named(tmp_path) -> None:
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"foo": [1]}), path)
    with pytest.raises(DataError, match="unknown parquet layout"):
        read_instances(path)
