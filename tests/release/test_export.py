"""`corpuspipe export`: deterministic training shards of the deduplicated release, readable by the
usual Parquet/JSONL readers, never two documents of one cluster, sections only at the leaves."""

from __future__ import annotations

import json

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.helpers.cli import run_cli
from tests.helpers.seed_release import COPY_NAME, SEED_000

from corpuspipe.release.export import ExportError, Selection, export_release


def _jsonl_rows(path):
    with pa.CompressedInputStream(pa.OSFile(str(path)), "zstd") as f:
        return [json.loads(line) for line in f.read().decode("utf-8").splitlines()]


def test_the_planted_copy_is_one_cluster_in_the_release(seed_release):
    docs = pq.read_table(seed_release / "documents", columns=["source_path", "cluster_id", "duplicate_of"])
    rows = {r["source_path"]: r for r in docs.to_pylist()}
    assert rows[SEED_000]["cluster_id"] == rows[COPY_NAME]["cluster_id"]
    assert (rows[SEED_000]["duplicate_of"] is None) != (rows[COPY_NAME]["duplicate_of"] is None)


def test_document_export_keeps_one_per_cluster_and_loads_everywhere(seed_release, tmp_path):
    res = export_release(seed_release, tmp_path / "out", Selection(exclude_flags=[]), shard_rows=4)
    out = tmp_path / "out"
    docs = pq.read_table(seed_release / "documents", columns=["doc_id", "cluster_id", "duplicate_of"])
    assert res.rows == docs.num_rows - 1  # the planted copy is the only duplicate
    parquet = sorted((out / "parquet").glob("*"))
    assert [p.name for p in parquet] == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    t = pq.read_table(out / "parquet")  # pyarrow dataset reader over the folder (what datatrove's ParquetReader uses)
    assert t.column_names[:2] == ["id", "text"] and t.num_rows == res.rows
    assert len(set(t["cluster_id"].to_pylist())) == t.num_rows  # no two documents of one cluster
    order = [d for d, dup in zip(docs["doc_id"].to_pylist(), docs["duplicate_of"].to_pylist()) if dup is None]
    assert t["id"].to_pylist() == order  # the release's own (deterministic) row order
    assert pd.read_parquet(out / "parquet")["text"].str.len().min() > 0
    assert pl.read_parquet(str(out / "parquet" / "*.parquet")).height == res.rows
    assert duckdb.sql(f"SELECT count(DISTINCT cluster_id) FROM '{out}/parquet/*.parquet'").fetchall()[0][0] == res.rows
    jsonl = [r for p in sorted((out / "jsonl").glob("*")) for r in _jsonl_rows(p)]
    assert [r["id"] for r in jsonl] == t["id"].to_pylist() and jsonl[0]["text"] == t["text"][0].as_py()
    man = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    rel = json.loads((seed_release / "MANIFEST.json").read_text(encoding="utf-8"))
    assert (man["release_version"], man["release_content_hash"]) == (rel["version"], rel["content_hash"])
    assert rel["content_hash"] in (out / "README.md").read_text(encoding="utf-8")


def test_export_is_byte_identical_when_repeated(seed_release, tmp_path):
    a = export_release(seed_release, tmp_path / "a", Selection(), shard_rows=3)
    b = export_release(seed_release, tmp_path / "b", Selection(), shard_rows=3)
    assert a.files == b.files and a.manifest["export_hash"] == b.manifest["export_hash"]


def test_flags_scripts_and_signal_bounds_filter(seed_release, tmp_path):
    docs = pq.read_table(seed_release / "documents").to_pylist()
    kept = [d for d in docs if d["duplicate_of"] is None]
    default = export_release(seed_release, tmp_path / "d", Selection(), formats=["parquet"])
    assert default.rows == sum(1 for d in kept if "mojibake" not in d["flags"])  # mojibake out by default
    trad = export_release(seed_release, tmp_path / "t", Selection(scripts=["traditional"], exclude_flags=[]),
                          formats=["parquet"])
    assert trad.rows == sum(1 for d in kept if d["script"] == "traditional") >= 1
    cut = sorted(d["dup_5gram_frac"] for d in kept)[len(kept) // 2]
    bounded = export_release(seed_release, tmp_path / "b", Selection(exclude_flags=[], max={"dup_5gram_frac": cut}),
                             formats=["parquet"])
    got = pq.read_table(tmp_path / "b" / "parquet")["dup_5gram_frac"].to_pylist()
    assert bounded.rows == sum(1 for d in kept if d["dup_5gram_frac"] <= cut) and max(got) <= cut
    with pytest.raises(ExportError, match="cannot filter on 'text'"):
        export_release(seed_release, tmp_path / "x", Selection(min={"text": 1}))


def test_section_export_has_only_deduplicated_leaves(seed_release, tmp_path):
    res = export_release(seed_release, tmp_path / "s", Selection(level="section", exclude_flags=[]),
                         formats=["parquet"])
    secs = pq.read_table(seed_release / "sections").to_pylist()
    parents = {s["parent_id"] for s in secs if s["parent_id"]}
    t = pq.read_table(tmp_path / "s" / "parquet").to_pylist()
    assert res.rows == len(t) > 0
    assert not parents & {r["id"] for r in t}  # no parent: its text contains its children's
    dups = {s["section_id"] for s in secs if s["duplicate_of"]}
    assert dups and not dups & {r["id"] for r in t}
    docs = pq.read_table(seed_release / "documents", columns=["doc_id", "duplicate_of"]).to_pylist()
    dup_docs = {d["doc_id"] for d in docs if d["duplicate_of"]}
    assert not dup_docs & {r["doc_id"] for r in t}
    # the leaves together hold each kept document's outline text once: no character twice
    by_doc: dict[str, list[tuple[int, int]]] = {}
    for r in t:
        by_doc.setdefault(r["doc_id"], []).append((r["char_start"], r["char_end"]))
    for spans in by_doc.values():
        spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))


def test_cli_export_and_its_user_errors(seed_release, tmp_path):
    ok = run_cli("export", str(seed_release), str(tmp_path / "o"), "--format", "jsonl", "--min", "han_ratio=0.5")
    assert ok.returncode == 0, ok.stderr
    assert "exported" in ok.stdout and list((tmp_path / "o" / "jsonl").glob("*.jsonl.zst"))
    for args, needle in ((["--min", "han_ratio"], "NAME=NUMBER"), (["--level", "para"], "unknown level")):
        bad = run_cli("export", str(seed_release), str(tmp_path / "p"), *args)
        lines = [l for l in bad.stderr.splitlines() if l.strip()]
        assert bad.returncode != 0 and len(lines) == 1 and needle in lines[0] and "Traceback" not in bad.stderr
    again = run_cli("export", str(seed_release), str(tmp_path / "o"))
    assert again.returncode != 0 and "not an empty directory" in again.stderr
