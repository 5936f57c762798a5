"""Instance files: our JSONL/parquet round trip, the published Memalpha parquet layout and the
MemoryAgentBench row layout (fixtures written here in those exact layouts), clear errors."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

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
