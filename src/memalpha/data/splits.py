"""Train / validation / test assignment by source document, fixed by a hash of the document key
(never by the build seed), so no document or question can appear in two splits whatever seeds
are used; `check_disjoint` proves it for built files."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Literal

from memalpha.data.instance import Instance
from memalpha.errors import DataError

Split = Literal["train", "validation", "test"]
SPLITS: tuple[Split, ...] = ("train", "validation", "test")


def split_of(key: str, *, validation: float = 0.1, test: float = 0.1) -> Split:
    """The split a source document belongs to (80/10/10 by default)."""
    x = int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if x < test else "validation" if x < test + validation else "train"


def check_disjoint(by_split: dict[str, Iterable[Instance]]) -> None:
    """Raise if any source document or question text is shared by two splits.

    Each instance lists its source documents in `metadata["documents"]`.

    Raises:
        DataError: naming the first shared document or question.
    """
    seen_docs: dict[str, str] = {}
    seen_questions: dict[str, str] = {}
    for split, instances in by_split.items():
        for inst in instances:
            for key, seen, kind in (
                *((d, seen_docs, "document") for d in inst.metadata.get("documents", [])),
                # a question is its text with its gold: templated texts ("Summarize … from d1
                # to d2") legitimately repeat across splits with different content and gold
                *(
                    (f"{q.question} => {q.answers}", seen_questions, "question")
                    for q in inst.questions
                ),
            ):
                other = seen.setdefault(key, split)
                if other != split:
                    raise DataError(f"{kind} {key[:80]!r} is in both '{other}' and '{split}'")
