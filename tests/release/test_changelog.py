from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet  # noqa: F401  (pa.parquet)
import pytest
from tests.helpers.tiny_release import make_tables, write_release

from corpuspipe.core import schemas
from corpuspipe.release.changelog import write_changelog
from corpuspipe.release.diff import diff_releases, diff_table
from corpuspipe.config import PipelineConfig


def _edit_docs(tables, changes):
    docs = tables["documents"].to_pylist()
    for row in docs:
        for (doc_id, col), value in changes.items():
            if row["doc_id"] == doc_id:
                row[col] = value
    return dict(tables, documents=pa.Table.from_pylist(docs, schema=schemas.DOCUMENTS))


def test_identical_releases_have_no_changes(tmp_path):
    a = write_release(tmp_path, make_tables(), "1.0.0")
    b = write_release(tmp_path, make_tables(), "1.0.1", previous_version="1.0.0")
    d = diff_releases(a, b)
    assert (d["from"], d["to"]) == ("1.0.0", "1.0.1")
    for name, t in d["tables"].items():
        assert (t["added"], t["removed"], t["changed"], t["metadata_changed"]) == (0, 0, 0, 0), name
        assert t["unchanged"] == t["rows_a"] == t["rows_b"]
    assert d["schema"] == {"tables_added": [], "tables_removed": [], "columns": {}}
    text = write_changelog(a, b).read_text(encoding="utf-8")
    assert "No schema changes." in text and "configuration: unchanged" in text


def test_rows_added_removed_text_changed_and_metadata_changed(tmp_path):
    old = make_tables(n_docs=4)
    a = write_release(tmp_path, old, "1.0.0")
    new = make_tables(n_docs=5)  # d0004 added
    new = dict(new, documents=new["documents"].filter(pa.compute.not_equal(new["documents"]["doc_id"], "d0001")))
    new = _edit_docs(new, {("d0000", "text_sha256"): "f" * 64, ("d0003", "cluster_id"): "c9999"})
    b = write_release(tmp_path, new, "1.1.0", previous_version="1.0.0")
    docs = diff_releases(a, b)["tables"]["documents"]
    assert docs["key"] == ["doc_id"]
    assert (docs["rows_a"], docs["rows_b"]) == (4, 4)
    assert (docs["added"], docs["removed"], docs["changed"], docs["metadata_changed"]) == (1, 1, 1, 1)
    assert docs["unchanged"] == 1
    assert docs["examples"]["added"] == ["d0004"] and docs["examples"]["removed"] == ["d0001"]
    assert docs["examples"]["changed"] == ["d0000"] and docs["examples"]["metadata_changed"] == ["d0003"]
    assert docs["changed_columns"] == {"cluster_id": 1, "text_sha256": 1}
    sections = diff_releases(a, b)["tables"]["sections"]
    assert (sections["added"], sections["removed"], sections["changed"]) == (2, 0, 0)  # d0004's two
    text = write_changelog(a, b).read_text(encoding="utf-8")
    assert "| documents | 4 | 4 | 1 | 1 | 1 | 1 |" in text
    assert "`d0004`" in text and "`d0001`" in text


def test_section_text_change_detected_without_a_hash_column():
    t = make_tables()["sections"]
    rows = t.to_pylist()
    rows[3]["text"] = rows[3]["text"] + "。"
    d = diff_table("sections", t, pa.Table.from_pylist(rows, schema=schemas.SECTIONS))
    assert d["changed"] == 1 and d["examples"]["changed"] == [rows[3]["section_id"]]


def test_null_and_duplicate_natural_keys_match_one_to_one():
    q = make_tables()["quarantine"]  # line is NULL in the key
    row = q.to_pylist()[0]
    two = pa.Table.from_pylist([row, row], schema=schemas.QUARANTINE)
    three = pa.Table.from_pylist([row, row, dict(row, detail="other")], schema=schemas.QUARANTINE)
    d = diff_table("quarantine", two, three)
    assert (d["added"], d["removed"], d["changed"], d["unchanged"]) == (1, 0, 0, 2)
    d2 = diff_table("quarantine", two, two)
    assert (d2["added"], d2["removed"], d2["changed"]) == (0, 0, 0)
    flagged = pa.Table.from_pylist([row, dict(row, bytes=None)], schema=schemas.QUARANTINE)
    d3 = diff_table("quarantine", two, flagged)
    assert d3["changed"] == 1 and d3["changed_columns"] == {"bytes": 1}


def test_list_column_changes_are_seen():
    docs = make_tables()["documents"]
    rows = docs.to_pylist()
    rows[1]["flags"] = ["mojibake"]
    rows[2]["flags"] = [""]  # empty string vs empty list
    d = diff_table("documents", docs, pa.Table.from_pylist(rows, schema=schemas.DOCUMENTS))
    assert d["metadata_changed"] == 2 and d["changed_columns"] == {"flags": 2}


def test_schema_changes_and_config_changes_are_reported(tmp_path):
    a = write_release(tmp_path, make_tables(), "1.0.0")
    new = make_tables()
    docs = new["documents"].append_column(pa.field("lang", pa.string()), pa.array(["zh"] * 4))
    docs = docs.drop_columns(["url"])
    docs = docs.set_column(docs.schema.get_field_index("char_count"), "char_count",
                           docs["char_count"].cast(pa.int64()))
    new = dict(new, documents=docs)
    del new["quarantine"]
    old_t = PipelineConfig().dedup.threshold
    new_t = round(old_t + 0.1, 2)
    cfg = PipelineConfig.model_validate({"dedup": {"threshold": new_t}})
    b = write_release(tmp_path, new, "2.0.0", config=cfg, previous_version="1.0.0")
    d = diff_releases(a, b)
    cols = d["schema"]["columns"]["documents"]
    assert cols["added"] == ["lang"] and cols["removed"] == ["url"]
    assert cols["type_changed"] == [{"column": "char_count", "from": "int32", "to": "int64"}]
    assert d["schema"]["tables_removed"] == ["quarantine"]
    assert d["tables"]["quarantine"]["removed"] == 1
    assert d["tables"]["documents"]["changed"] == 0  # rows still match on doc_id
    assert d["manifest"]["config_changes"] == [{"key": "dedup.threshold", "from": old_t, "to": new_t}]
    text = write_changelog(a, b).read_text(encoding="utf-8")
    assert "column added `lang`" in text and "column removed `url`" in text
    assert "int32 → int64" in text and "table removed: `quarantine`" in text
    assert f"| `dedup.threshold` | {old_t} | {new_t} |" in text


def test_markdown_cells_are_escaped():
    docs = make_tables()["documents"]
    rows = docs.to_pylist()
    rows.append(dict(rows[0], doc_id="evil|id`x"))
    d = diff_table("documents", docs, pa.Table.from_pylist(rows, schema=schemas.DOCUMENTS))
    from corpuspipe.release.changelog import render_changelog

    md = render_changelog({"from": "1", "to": "2", "tables": {"documents": d},
                           "schema": {"tables_added": [], "tables_removed": [], "columns": {}},
                           "manifest": {"config_changes": [], "pipeline_version": ["a", "a"],
                                        "schema_version": ["1", "1"],
                                        "inputs": {"added": [], "removed": [], "changed": []}}})
    assert "`evil\\|id'x`" in md


@pytest.mark.slow
def test_changelog_on_100k_documents(tmp_path, capsys):
    """Scale check (bench-style: the time is printed, not asserted)."""
    import datetime
    import hashlib
    import time

    import numpy as np

    def docs(n: int, drop: range, change: range) -> pa.Table:
        ids = [f"d{i:07d}" for i in range(n)]
        changed = set(change)
        texts = [f"我们要坚持以人民为中心的发展思想推进各项工作{i}" + ("改" if i in changed else "") for i in range(n)]
        cols = {
            "doc_id": ids, "source_path": [f"{i // 100:05d}.txt" for i in range(n)],
            "source_sha256": ["0" * 64] * n, "essay_index": pa.array(np.arange(n) % 100, pa.int32()),
            "title": [f"标题{i}" for i in range(n)], "author": [None] * n, "date": pa.array([datetime.date(2024, 1, 1)] * n, pa.date32()),
            "url": [None] * n, "crawled_at": [None] * n, "text": texts,
            "text_sha256": [hashlib.sha256(t.encode()).hexdigest() for t in texts],
            "script": ["simplified"] * n, "trad_ratio": pa.array(np.zeros(n), pa.float32()),
            "char_count": pa.array([len(t) for t in texts], pa.int32()),
            "section_count": pa.array(np.ones(n), pa.int32()), "edit_count": pa.array(np.ones(n), pa.int32()),
            "cluster_id": ids, "cluster_size": pa.array(np.ones(n), pa.int32()), "duplicate_of": [None] * n,
            "flags": [["mojibake"] if i % 50 == 0 else [] for i in range(n)],
            **{name: pa.array(np.zeros(n), pa.float32()) for name in schemas.SIGNAL_COLUMNS},
        }
        mask = np.ones(n, dtype=bool)
        mask[list(drop)] = False
        return pa.table(cols, schema=schemas.DOCUMENTS).filter(pa.array(mask))

    n = 100_000
    small = make_tables()
    a_docs = docs(n, drop=range(0, n, 97), change=range(0))
    b_docs = docs(n + 1000, drop=range(5, n, 101), change=range(3, n, 89))
    a = write_release(tmp_path, dict(small, documents=a_docs), "1.0.0", register=False)
    b = write_release(tmp_path, dict(small, documents=b_docs), "1.1.0", register=False)
    t0 = time.perf_counter()
    d = diff_releases(a, b)
    t1 = time.perf_counter()
    path = write_changelog(a, b)
    elapsed = (t1 - t0, time.perf_counter() - t1)
    a_ids, b_ids = set(a_docs["doc_id"].to_pylist()), set(b_docs["doc_id"].to_pylist())
    changed = {f"d{i:07d}" for i in range(3, n, 89)} & a_ids & b_ids
    t = d["tables"]["documents"]
    assert (t["rows_a"], t["rows_b"]) == (len(a_ids), len(b_ids)) == (98_969, 100_009)
    assert (t["added"], t["removed"]) == (len(b_ids - a_ids), len(a_ids - b_ids))
    assert t["changed"] == len(changed) and t["metadata_changed"] == 0
    assert t["changed_columns"] == {"char_count": len(changed), "text_sha256": len(changed)}
    assert path.stat().st_size > 0
    with capsys.disabled():
        print(f"\n[bench] 2x100k documents: diff_releases {elapsed[0]:.2f} s, write_changelog {elapsed[1]:.2f} s")


def _changed_copy(a: pa.Table, table: str) -> pa.Table:
    rows = a.to_pylist()
    text_col = {"sections": "text", "edits": "after", "documents": "title"}[table]
    n = len(rows)
    for r in rows[1:n // 2:3]:  # changed text, changed keys (added + removed), dropped and repeated rows
        r[text_col] = (r[text_col] or "") + "（修订）"
    for r in rows[n // 2::4]:
        r["doc_id"] = r["doc_id"][::-1]
    return pa.Table.from_pylist(rows[:n - max(1, n // 8)] + rows[:2], schema=a.schema)


@pytest.mark.parametrize("table", ["sections", "edits", "documents"])
def test_diff_by_parts_equals_the_whole_table_diff(seed_release, tmp_path, monkeypatch, table):
    """The diff of two releases cut into parts (partitions by key hash, long strings hashed, one task
    per part and per partition) gives what diff_table gives on the two whole tables, on the seed
    release's real text."""
    from tests.helpers.seed_release import read_table

    from corpuspipe.release import diff

    a = read_table(seed_release, table)
    b = _changed_copy(a, table)
    skip = diff.SKIP_COLUMNS.get(table, set())
    cols = [c for c in a.column_names if c not in skip]
    whole = diff_table(table, a.select(cols), b.select(cols))
    monkeypatch.setattr(diff, "PART_ROWS", max(4, a.num_rows // 3))
    ra = write_release(tmp_path, {table: a}, "1.0.0", register=False, parts={table: 3})
    rb = write_release(tmp_path, {table: b}, "1.1.0", register=False, parts={table: 4})
    parts = diff_releases(ra, rb, tmp_root=tmp_path)["tables"][table]
    assert parts == whole
    assert whole["changed"] + whole["metadata_changed"] > 0 and whole["added"] > 0 and whole["removed"] > 0
    assert not list(tmp_path.glob(".tmp-changelog-*"))  # the spilled partitions are gone


def test_parts_with_the_same_rows_are_not_read(tmp_path, monkeypatch):
    """A part whose row digest is in both releases counts as unchanged without being read (only its
    sha256 is checked); the rest are diffed as usual."""
    from corpuspipe.release import diff

    old = make_tables(n_docs=8)
    new = _edit_docs(make_tables(n_docs=8), {("d0006", "title"): "改过的标题"})  # in the second documents part
    a = write_release(tmp_path, old, "1.0.0", register=False, parts={"documents": 2})
    b = write_release(tmp_path, new, "1.1.0", register=False, parts={"documents": 2})
    read: list[str] = []
    original = diff._compact

    def counting(t, hashed, offset):
        read.append(str(t.num_rows))
        return original(t, hashed, offset)

    monkeypatch.setattr(diff, "_compact", counting)
    d = diff_releases(a, b)
    docs = d["tables"]["documents"]
    assert (docs["changed"], docs["metadata_changed"], docs["unchanged"]) == (0, 1, 7)
    assert docs["examples"]["metadata_changed"] == ["d0006"]
    for name in ("sections", "edits", "duplicates", "quarantine"):
        assert d["tables"][name]["unchanged"] == d["tables"][name]["rows_a"], name
    # only the changed documents part was read (both releases' copies), plus empty partitions
    assert sum(int(n) for n in read) == 8


def test_a_release_of_the_old_layout_is_diffed_against_a_new_one(tmp_path):
    """Schema 2.x releases had one <table>.parquet per table: the first 3.x release diffs against one."""
    import hashlib
    import json

    from corpuspipe.release.versioning import content_hash

    a = write_release(tmp_path, make_tables(), "1.0.0", register=False, parts={"documents": 1})
    manifest = json.loads((a / "MANIFEST.json").read_text(encoding="utf-8"))
    for o in manifest["outputs"]:  # back to the 2.x layout
        name = o["table"]
        (a / o["path"]).rename(a / f"{name}.parquet")
        (a / name).rmdir()
        o.clear()
        o.update(path=f"{name}.parquet", bytes=(a / f"{name}.parquet").stat().st_size, rows=manifest["counts"][name]
                 if "counts" in manifest else pa.parquet.read_metadata(a / f"{name}.parquet").num_rows,
                 sha256=hashlib.sha256((a / f"{name}.parquet").read_bytes()).hexdigest())
    manifest["content_hash"] = content_hash(manifest["outputs"])
    (a / "MANIFEST.json").write_text(json.dumps(manifest), encoding="utf-8")
    b = write_release(tmp_path, make_tables(n_docs=5), "1.1.0", register=False)
    docs = diff_releases(a, b)["tables"]["documents"]
    assert (docs["rows_a"], docs["rows_b"], docs["added"], docs["unchanged"]) == (4, 5, 1, 4)
