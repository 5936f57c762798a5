"""Cut the small real-data sample shipped in `src/memalpha/data/sample/` from ../shared/data.

Deterministic (no randomness: fixed strides and prefixes), so re-running it reproduces the
committed files byte for byte. The sample keeps each dataset's layout, so the same builders
read it; its licences and attribution are in the sample's SOURCES.md.

    python scripts/make_data_sample.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "memalpha" / "data" / "sample"


def lines(path: Path, n: int, encoding: str = "utf-8", header: bool = False) -> str:
    text = path.read_text(encoding).splitlines(keepends=True)
    head, body = (text[:1], text[1:]) if header else ([], text)
    stride = max(1, len(body) // n)
    return "".join(head + body[::stride][:n])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    data = parser.parse_args().data
    for sub in (
        "squad-v1.1",
        "hotpotqa",
        "trec",
        "banking77",
        "clinc150",
        "nlu-evaluation-data/KFold_1/trainset",
        "nlu-evaluation-data/KFold_1/testset/csv",
        "gutenberg-1342-pride-and-prejudice",
    ):
        (OUT / sub).mkdir(parents=True, exist_ok=True)

    squad = json.loads((data / "squad-v1.1" / "dev-v1.1.json").read_text("utf-8"))
    squad["data"] = [{**a, "paragraphs": a["paragraphs"][:12]} for a in squad["data"][::4]]
    (OUT / "squad-v1.1" / "dev-v1.1.json").write_text(json.dumps(squad, ensure_ascii=False))

    hotpot = json.loads(
        (data / "hotpotqa" / "hotpot_dev_distractor_v1_100.json").read_text("utf-8")
    )
    (OUT / "hotpotqa" / "hotpot_dev_distractor_v1_100.json").write_text(
        json.dumps(hotpot[:40], ensure_ascii=False)
    )

    (OUT / "trec" / "train_5500.label").write_bytes(
        lines(data / "trec" / "train_5500.label", 1500, "latin-1").encode("latin-1")
    )
    shutil.copy(data / "trec" / "TREC_10.label", OUT / "trec" / "TREC_10.label")

    for name, n in (("train.csv", 1500), ("test.csv", 500)):
        (OUT / "banking77" / name).write_text(lines(data / "banking77" / name, n, header=True))
    shutil.copy(data / "banking77" / "LICENSE", OUT / "banking77" / "LICENSE")

    clinc = json.loads((data / "clinc150" / "data_full.json").read_text("utf-8"))
    small = {k: v[:: 10 if k == "train" else 6] for k, v in clinc.items()}
    (OUT / "clinc150" / "data_full.json").write_text(json.dumps(small, ensure_ascii=False))
    shutil.copy(data / "clinc150" / "LICENSE", OUT / "clinc150" / "LICENSE")

    nlu = data / "nlu-evaluation-data" / "KFold_1"
    for folder, n in (("trainset", 25), ("testset/csv", 6)):
        for path in sorted((nlu / folder).glob("*.csv")):
            dest = OUT / "nlu-evaluation-data" / "KFold_1" / folder / path.name
            dest.write_text(lines(path, n, header=True))
    shutil.copy(data / "nlu-evaluation-data" / "LICENSE", OUT / "nlu-evaluation-data" / "LICENSE")

    book = data / "gutenberg-1342-pride-and-prejudice"
    for name in ("1342-0.txt", "LICENSE.txt"):
        shutil.copy(book / name, OUT / "gutenberg-1342-pride-and-prejudice" / name)


if __name__ == "__main__":
    main()
