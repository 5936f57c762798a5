"""Reading and writing instances: our JSON-lines and parquet files, the published Memalpha
parquet layout (SPEC §5.1) and MemoryAgentBench rows (`context`, `questions`, `answers`,
`metadata.source`), which are chunked on load."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from memalpha.data.chunking import chunk_text, pack
from memalpha.data.instance import QA, Instance
from memalpha.data.sources import source_info
from memalpha.data.templates import dialogue_chunks, source_dates
from memalpha.errors import DataError
from memalpha.tokens import TokenCounter


def write_instances(instances: Iterable[Instance], path: Path) -> None:
    """Write `.jsonl` or `.parquet` (by suffix) atomically; equal instances give equal bytes."""
    tmp = path.with_name(path.name + ".tmp")
    rows = [i.model_dump(mode="json") for i in instances]
    if path.suffix == ".parquet":
        table = pa.table(
            {
                "id": [r["id"] for r in rows],
                "data_source": [r["data_source"] for r in rows],
                "competency": [r["competency"] for r in rows],
                "metric": [r["metric"] for r in rows],
                "chunks": pa.array([r["chunks"] for r in rows], type=pa.list_(pa.string())),
                "questions": [json.dumps(r["questions"], ensure_ascii=False) for r in rows],
                "metadata": [
                    json.dumps(r["metadata"], ensure_ascii=False, sort_keys=True) for r in rows
                ],
            }
        )
        pq.write_table(table, tmp)
    else:
        with open(tmp, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    tmp.replace(path)


def read_instances(
    path: Path, *, counter: TokenCounter | None = None, chunk_tokens: int = 2048, seed: int = 0
) -> list[Instance]:
    """Read any supported file: our JSONL/parquet, published Memalpha parquet, MemoryAgentBench.

    Args:
        counter: needed for MemoryAgentBench rows, which are chunked on load.
        chunk_tokens: chunk budget for MemoryAgentBench contexts (published: 2048; 1024 for ICL).
        seed: for the dialogue wrapper's opener choice and times.

    Raises:
        DataError: missing file, unknown layout or an invalid row (its number is named).
    """
    if not path.is_file():
        raise DataError("no such file", path=str(path))
    if path.suffix != ".parquet":
        out = []
        for n, line in enumerate(_lines(path), 1):
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"row {n} is not JSON: {exc}", path=str(path)) from None
            out.append(_validate(data, path, n))
        return out
    try:
        rows = pq.read_table(path).to_pylist()
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"not a readable parquet file: {exc}", path=str(path)) from None
    if not rows:
        return []
    columns = set(rows[0])
    if {"chunks", "questions_and_answers", "data_source"} <= columns:
        convert = _from_memalpha
    elif {"context", "questions", "answers"} <= columns:
        if counter is None:
            raise DataError(
                "MemoryAgentBench rows are chunked on load: pass a token counter", path=str(path)
            )
        rng = random.Random(seed)

        def convert(row: dict, n: int) -> dict:
            return _from_memoryagentbench(row, n, counter, chunk_tokens, rng)
    elif {"id", "chunks", "questions"} <= columns:

        def convert(row: dict, n: int) -> dict:
            return {
                **row,
                "questions": json.loads(row["questions"]),
                "metadata": json.loads(row["metadata"] or "{}"),
            }
    else:
        raise DataError(
            f"unknown parquet layout (columns: {', '.join(sorted(columns))})", path=str(path)
        )
    return [_validate(convert(row, n), path, n) for n, row in enumerate(rows, 1)]


def _lines(path: Path) -> Iterable[str]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield line


def _validate(data: Any, path: Path, n: int) -> Instance:
    try:
        return Instance.model_validate(data)
    except (ValidationError, json.JSONDecodeError, TypeError) as exc:
        raise DataError(f"row {n} is not a valid instance: {exc}", path=str(path)) from None


def _from_memalpha(row: dict, n: int) -> dict:
    """Published layout: `chunks` and `questions_and_answers` are JSON strings."""
    try:
        chunks = json.loads(row["chunks"])
        qas = json.loads(row["questions_and_answers"])
        metadata = json.loads(row.get("metadata") or "{}")
    except json.JSONDecodeError as exc:
        raise DataError(f"row {n}: a JSON column does not parse: {exc}") from None
    source = row["data_source"]
    info = source_info(source)
    questions = [
        QA(
            id=f"q{i}",
            question=qa["question"],
            answers=[str(a) for a in qa["answer"]]
            if isinstance(qa["answer"], list)
            else [str(qa["answer"])],
        )
        for i, qa in enumerate(qas)
    ]
    extra = {k: row[k] for k in ("prompt", "instance_id") if row.get(k) is not None}
    return {
        "id": f"{source}-{row.get('instance_id', n - 1)}",
        "data_source": source,
        "competency": info.competency,
        "metric": info.metric,
        "chunks": chunks,
        "questions": questions,
        "metadata": {
            **(metadata if isinstance(metadata, dict) else {"metadata": metadata}),
            **extra,
        },
    }


def _from_memoryagentbench(
    row: dict, n: int, counter: TokenCounter, chunk_tokens: int, rng: random.Random
) -> dict:
    """MemoryAgentBench: one long `context`; ICL contexts are packed by line, others by sentence.
    Chunks are dated only by the dates the context itself carries (`source_dates`)."""
    meta = row.get("metadata") or {}
    if isinstance(meta, str):
        meta = json.loads(meta)
    source = meta.get("source") or "memoryagentbench"
    if source.startswith("icl_"):
        pieces = pack(
            [ln for ln in row["context"].split("\n") if ln.strip()],
            chunk_tokens,
            counter,
            joiner="\n",
        )
    else:
        pieces = chunk_text(row["context"], chunk_tokens, counter)
    answers = row["answers"]
    questions = [
        QA(
            id=f"q{i}",
            question=q,
            answers=[str(a) for a in (ans if isinstance(ans, list) else [ans])],
        )
        for i, (q, ans) in enumerate(zip(row["questions"], answers, strict=True))
    ]
    info = source_info(source)
    return {
        "id": f"{source}-{n - 1}",
        "data_source": source,
        "competency": info.competency,
        "metric": info.metric,
        # a dialogue history's own session dates, never invented ones: an LLM reader answers
        # "when" questions with whatever date the memory holds
        "chunks": dialogue_chunks(
            pieces, rng, classification=source.startswith("icl_"), dates=source_dates(pieces)
        ),
        "questions": questions,
        "metadata": {k: v for k, v in meta.items() if isinstance(v, str | int | float)},
    }
