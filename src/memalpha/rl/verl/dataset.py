"""Instances as verl dataset rows (parquet), one row per instance.

verl's `RLHFDataset` wants a chat `prompt` (it filters by its length and keeps it as
`raw_prompt`), a `data_source`, `reward_model.ground_truth` and `extra_info`. The agent loop
builds its own prompts chunk by chunk, so `prompt` is a short placeholder naming the instance;
the whole instance travels as JSON in `extra_info.instance` (a string, so that parquet does
not have to give every instance's metadata one schema).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from memalpha.data import Instance

AGENT_NAME = "memalpha_writer"


def verl_rows(instances: Iterable[Instance], agent_name: str = AGENT_NAME) -> list[dict[str, Any]]:
    return [
        {
            "data_source": inst.data_source,
            "agent_name": agent_name,
            "prompt": [{"role": "user", "content": f"Memorize instance {inst.id}."}],
            "ability": inst.competency.value,
            "reward_model": {
                "style": "memalpha",
                "ground_truth": json.dumps([qa.answers for qa in inst.questions]),
            },
            "extra_info": {"index": i, "instance": inst.model_dump_json()},
        }
        for i, inst in enumerate(instances)
    ]


def write_verl_parquet(instances: Iterable[Instance], path: Path) -> int:
    """Write the rows to `path` (parents created); returns the number of rows."""
    rows = verl_rows(instances)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return len(rows)
