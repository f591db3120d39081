"""``rebuild_raw`` on edits as a release's readers get them: edits.parquet rows (issue 14).

Rows come back as dicts (``pyarrow.Table.to_pylist()``, pandas ``to_dict("records")``) or as
``itertuples()`` row objects, with extra columns (doc_id, source_path, essay_index).
"""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from tests.helpers import paths

from corpuspipe.config import NormalizeConfig, SectionConfig
from corpuspipe.core.edits import Replacement, TrackedText, rebuild_from_raw_offsets, rebuild_raw
from corpuspipe.core.records import Essay, SectionRow
from corpuspipe.core import shardio
from corpuspipe.release.tables import shard_tables
from corpuspipe.stages.normalize import normalize_essay
from corpuspipe.stages.section import section_text

DATA = paths.DATA / "normalize"


@pytest.fixture(scope="module")
def normalized(tmp_path_factory):
    """The 1954 government work report (real Traditional text) after line removals and normalize,
    its edits written with the release writer's edits table and read back from Parquet."""
    raw = (DATA / "gov_1954_traditional.txt").read_text(encoding="utf-8")
    body = TrackedText(raw[30:], base=30)
    first_line = body.text.index("\n") + 1
    body.apply([Replacement(0, first_line, "", "title_line")], "ingest")
    essay = Essay("gov_1954_traditional.txt", "0" * 64, 0, body)
    normalize_essay(essay, NormalizeConfig())
    assert len(essay.body.edits) > 100  # t2s, punctuation and whitespace edits
    path = tmp_path_factory.mktemp("rows") / "edits.parquet"
    edits = shard_tables(shardio.essays_table([essay]), {})["edits"]
    pq.write_table(edits, path)
    return essay, raw, path


def test_rebuild_raw_takes_pyarrow_rows_as_dicts(normalized):
    essay, raw, path = normalized
    rows = pq.read_table(path).to_pylist()
    assert set(rows[0]) > {"raw_start", "clean_start", "before", "after", "doc_id"}
    assert rebuild_raw(essay.text, rows) == raw[30:]
    assert rebuild_from_raw_offsets(essay.text, rows, base=30) == raw[30:]
    for r in rows:
        assert raw[r["raw_start"] : r["raw_end"]] == r["before"]


def test_rebuild_raw_takes_pandas_records_and_itertuples_in_any_order(normalized):
    essay, raw, path = normalized
    df = pd.read_parquet(path)
    assert rebuild_raw(essay.text, df.to_dict("records")) == raw[30:]
    assert rebuild_raw(essay.text, df.itertuples(index=False)) == raw[30:]
    shuffled = df.sample(frac=1.0, random_state=3)  # row order must not matter
    assert rebuild_raw(essay.text, shuffled.to_dict("records")) == raw[30:]
    assert rebuild_raw(essay.text, list(shuffled.itertuples())) == raw[30:]


def test_dicts_and_edit_tuples_give_the_same_rebuild_for_adjacent_deletions():
    """Two deletions at one clean point are put back in raw order, whatever order rows come in."""
    t = TrackedText("甲乙丙丁")
    t.apply([Replacement(1, 2, "", "a")], "s1")  # deletes 乙
    t.apply([Replacement(1, 2, "", "b")], "s2")  # deletes 丙: a second edit at clean offset 1
    assert [(e.clean_start, e.clean_end) for e in t.edits] == [(1, 1), (1, 1)]
    rows = [e._asdict() | {"doc_id": "x"} for e in t.edits]
    for order in (rows, rows[::-1]):
        assert rebuild_raw(t.text, order) == "甲乙丙丁"
    assert rebuild_raw(t.text, t.edits[::-1]) == "甲乙丙丁"


def test_bad_rows_are_one_line_errors_without_text():
    t = TrackedText("秘密的正文,内容")
    t.apply([Replacement(5, 6, "，", "punct")], "normalize")
    (row,) = [e._asdict() for e in t.edits]
    cases = [
        ({k: v for k, v in row.items() if k != "clean_start"}, "clean_start"),
        (row | {"clean_start": 5.0}, "not an integer"),
        (row | {"after": None}, "not str"),
        (row | {"clean_start": 4, "clean_end": 5}, "does not match"),
    ]
    for bad, needle in cases:
        with pytest.raises(ValueError) as exc:
            rebuild_raw(t.text, [bad])
        msg = str(exc.value)
        assert needle in msg and "\n" not in msg and "秘密" not in msg and "，" not in msg


def test_rows_and_edit_objects_agree_on_random_edit_sets():
    rng = random.Random(5)
    raw = (DATA / "us_constitution_zhs.s2t.txt").read_text(encoding="utf-8")[:3000]
    t = TrackedText(raw, base=7)
    for k in range(8):
        n = len(t.text)
        points = sorted(rng.sample(range(n), 40))
        reps = [Replacement(p, min(p + rng.randrange(3), n), rng.choice(["", "x", "，", "国家"]), f"r{k}") for p in points[::2]]
        t.apply(reps, f"s{k}")
    rows = [e._asdict() | {"doc_id": "d", "essay_index": 0} for e in t.edits]
    rng.shuffle(rows)
    assert rebuild_raw(t.text, rows) == rebuild_raw(t.text, t.edits) == raw
    assert rebuild_from_raw_offsets(t.text, rows, base=7) == raw


@pytest.mark.slow
def test_every_document_of_a_real_release_rebuilds_from_its_parquet_rows(prefect_harness, raw_dir, tmp_path):
    """The seed release: rows as dicts (pyarrow and pandas) rebuild each document's range of its
    decoded source file, and each row's ``before`` is the file at its raw offsets."""
    from corpuspipe.orchestrate.flow import build_release

    release = Path(build_release(raw_dir=str(raw_dir), out_dir=str(tmp_path), version="1.0.0")["release_dir"])
    docs = pq.read_table(release / "documents").to_pylist()
    by_doc_pa: dict[str, list[dict]] = {}
    for r in pq.read_table(release / "edits").to_pylist():
        by_doc_pa.setdefault(r["doc_id"], []).append(r)
    by_doc_pd: dict[str, list[dict]] = {}
    for r in pd.read_parquet(release / "edits").to_dict("records"):
        by_doc_pd.setdefault(r["doc_id"], []).append(r)
    assert sum(map(len, by_doc_pa.values())) > 100
    offsets: dict[str, int] = {}
    for d in sorted(docs, key=lambda d: (d["source_path"], d["essay_index"])):
        decoded = (raw_dir / d["source_path"]).read_text(encoding="utf-8-sig")
        rows = by_doc_pa.get(d["doc_id"], [])
        rebuilt = rebuild_raw(d["text"], rows)
        assert rebuild_raw(d["text"], by_doc_pd.get(d["doc_id"], [])) == rebuilt
        start = offsets.get(d["source_path"], 0)
        assert rebuilt == decoded[start : start + len(rebuilt)], (d["source_path"], d["essay_index"])
        assert rebuild_from_raw_offsets(d["text"], rows, base=start) == rebuilt
        for r in rows:
            assert decoded[r["raw_start"] : r["raw_end"]] == r["before"]
        offsets[d["source_path"]] = start + len(rebuilt)
    for path, end in offsets.items():
        assert end == len((raw_dir / path).read_text(encoding="utf-8-sig")), path


def test_shard_table_round_trips_real_essays_with_and_without_edits_and_sections():
    """essays_table -> table_essays gives back every edit and section (the list<struct> columns are
    built by transposing the rows; an essay with none, and a batch with none at all, included)."""
    raw = paths.RAW
    essays = []
    for i, path in enumerate(sorted(raw.glob("*.txt"))):
        e = Essay(source_path=path.name, source_sha256=f"{i:064d}", essay_index=0,
                  body=TrackedText(path.read_text(encoding="utf-8")))
        normalize_essay(e, NormalizeConfig())
        e.sections = [SectionRow(e.doc_id, s.path, s.level, s.ordinal, s.marker, s.marker_family, s.heading,
                                 s.char_start, s.char_end, s.parent_path)
                      for s in section_text(e.body.text, SectionConfig())]
        essays.append(e)
    essays[0].sections = []  # sectioned, no section: stays [] (None means "not sectioned")
    essays.append(Essay(source_path="plain.txt", source_sha256="f" * 64, essay_index=0, body=TrackedText("简单一句。")))
    assert sum(len(e.body.edits) for e in essays) > 100 and not essays[-1].body.edits
    assert sum(len(e.sections or ()) for e in essays) > 20
    for batch in (essays, essays[-1:]):
        back = shardio.table_essays(shardio.essays_table(batch))
        assert [b.body.edits for b in back] == [e.body.edits for e in batch]
        assert [b.body.text for b in back] == [e.body.text for e in batch]
        assert [b.sections for b in back] == [e.sections for e in batch]
