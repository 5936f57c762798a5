"""Every builder, from the full ../shared/data and from the shipped sample: valid instances,
answers where they should be, determinism, and disjoint splits."""

from __future__ import annotations

import re

import pytest

from memalpha.data import (
    BUILDERS,
    SPLITS,
    BuildConfig,
    Competency,
    build,
    check_disjoint,
    write_instances,
)
from memalpha.errors import ConfigError, DataError

REAL = [
    "squad",
    "hotpotqa",
    "trec_coarse",
    "trec_fine",
    "banking77",
    "clinc150",
    "nlu",
    "book",
    "conflict",
]


def make(source, shared_data, counter, **kw):
    cfg = {"instances": 2, "max_tokens": 3000, "chunk_tokens": 512, "questions": 10, **kw}
    return build(BuildConfig(source=source, data_dir=shared_data, **cfg), counter)


@pytest.mark.parametrize("source", BUILDERS)
def test_every_builder_gives_valid_instances(source, shared_data, counter) -> None:
    for inst in make(source, shared_data, counter):
        assert inst.chunks and inst.questions
        assert all(counter.count(c) <= 512 + 80 for c in inst.chunks)  # budget + wrapper
        assert all(0 <= i < len(inst.chunks) for q in inst.questions for i in q.evidence_chunks)


@pytest.mark.parametrize("source", ["squad", "hotpotqa"])
def test_accurate_retrieval_gold_occurs_in_its_evidence_chunks(
    source, shared_data, counter
) -> None:
    checked = 0
    for inst in make(source, shared_data, counter, instances=3, max_tokens=8000):
        for q in inst.questions:
            assert q.evidence_chunks
            if q.answers[0].lower() in ("yes", "no"):  # HotpotQA comparison questions
                continue
            evidence = " ".join(inst.chunks[i] for i in q.evidence_chunks)
            assert any(a in evidence for a in q.answers), (q.question, q.answers)
            checked += 1
    assert checked >= 5


@pytest.mark.parametrize("source", ["conflict", "synth_cr"])
def test_conflict_gold_is_the_newest_value(source, shared_data, counter) -> None:
    for inst in make(source, shared_data, counter, facts=12):
        text = "\n".join(inst.chunks)
        for q in inst.questions:
            person = re.search(r"(?:of|that) ([A-Z]\w+ [A-Z]\w+)", q.question).group(1)
            update = text.rindex(f"Update: {person}")
            first = text.index(person)
            assert first < update, "the overwrite must come after the original fact"
            update_line = text[update:].split(".")[0]
            if q.qtype == "single_hop":
                assert update_line.endswith(f"it is now {q.answers[0]}")
            else:
                company = update_line.rsplit(" ", 1)[1]
                assert f"{company} is headquartered in {q.answers[0]}." in text
        assert {q.qtype for q in inst.questions} == {"single_hop", "multi_hop"}


@pytest.mark.parametrize("source", ["conflict", "synth_cr"])
def test_conflict_questions_name_the_value_the_input_overwrote(source, shared_data, counter):
    for inst in make(source, shared_data, counter, facts=12):
        text = "\n".join(inst.chunks)
        for q in inst.questions:
            (change,) = q.superseded
            assert change.old != change.new and change.subject in q.question
            update = text.rindex(f"Update: {change.subject}")
            stated_old = text.index(change.subject)  # the original fact comes first
            assert change.old in text[stated_old : text.index(".", stated_old)]
            assert change.new in text[update : text.index(".", update)]
    # only conflict resolution knows of overwritten values
    ar = make("synth_ar", shared_data, counter)
    assert all(not q.superseded for inst in ar for q in inst.questions)


@pytest.mark.parametrize("source", ["trec_coarse", "banking77", "clinc150", "nlu", "trec_fine"])
def test_test_time_learning_questions_are_held_out_and_labels_seen(source, shared_data, counter):
    for inst in make(source, shared_data, counter):
        text = "\n".join(inst.chunks)
        seen = set(re.findall(r"^Label: (\d+)$", text, re.M))
        for q in inst.questions:
            sentence = q.question.split("\n")[0]
            assert f"{sentence}\nLabel:" not in text, "question sentence leaked into examples"
            assert q.answers[0] in seen and "\\boxed{label}" in q.question


def test_book_keywords_come_from_the_span(shared_data, counter) -> None:
    for inst in make("book", shared_data, counter):
        for q in inst.questions:
            span = " ".join(inst.chunks[i] for i in q.evidence_chunks)
            for keyword in q.answers[0].split(", "):
                assert keyword in span


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
@pytest.mark.parametrize("source", BUILDERS)
def test_same_seed_same_bytes_other_seed_differs(source, suffix, shared_data, counter, tmp_path):
    paths = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        paths.append(tmp_path / f"{name}{suffix}")
        write_instances(make(source, shared_data, counter, seed=seed), paths[-1])
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()


@pytest.mark.parametrize("source", REAL)
def test_splits_share_no_document_or_question(source, shared_data, counter) -> None:
    by_split = {s: make(source, shared_data, counter, split=s, instances=3) for s in SPLITS}
    check_disjoint(by_split)
    for split, instances in by_split.items():
        assert all(i.metadata["split"] == split for i in instances)


def test_check_disjoint_catches_a_leak(shared_data, counter) -> None:
    train = make("squad", shared_data, counter)
    with pytest.raises(DataError, match="in both 'train' and 'test'"):
        check_disjoint({"train": train, "test": train[:1]})


def test_sample_shipped_in_the_package_builds_every_source(counter) -> None:
    for source in BUILDERS:
        for split in SPLITS:
            assert build(
                BuildConfig(
                    source=source,
                    split=split,
                    instances=1,
                    max_tokens=2000,
                    chunk_tokens=512,
                    questions=5,
                ),
                counter,
            )


def test_mixture_covers_all_four_competencies(counter) -> None:
    competencies = {
        inst.competency
        for source in ("squad", "trec_coarse", "book", "conflict")
        for inst in build(BuildConfig(source=source, instances=1, max_tokens=2000), counter)
    }
    assert competencies == set(Competency)


@pytest.mark.parametrize("factor", [1, 4, 16, 64])
@pytest.mark.parametrize("source", ["synth_ar", "synth_cr", "synth_ttl", "synth_lru"])
def test_synthetic_length_is_exact_at_every_scale(source, factor, counter) -> None:
    target = 1000 * factor
    (inst,) = build(
        BuildConfig(source=source, instances=1, max_tokens=target, chunk_tokens=512, facts=10),
        counter,
    )
    assert target - 40 <= inst.metadata["content_tokens"] <= target


def test_errors_are_specific(tmp_path, counter) -> None:
    with pytest.raises(ConfigError, match="unknown source 'nope'"):
        build(BuildConfig(source="nope"), counter)
    with pytest.raises(DataError, match="raw file missing"):
        build(BuildConfig(source="squad", data_dir=tmp_path), counter)
    with pytest.raises(ConfigError, match="raise max_tokens"):
        build(BuildConfig(source="synth_ar", facts=100, max_tokens=100), counter)
    with pytest.raises(ConfigError, match="synthetic people per split"):
        build(BuildConfig(source="synth_ar", facts=400, max_tokens=100_000), counter)
