"""End to end: the real Prefect flow on raw/, read back with pandas, polars and DuckDB."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpuspipe.core import schemas
from corpuspipe.core.edits import Edit, rebuild_raw
from corpuspipe.release.validate import validate_release
from tests.helpers.seed_release import data_files

pytestmark = pytest.mark.slow


def _build(raw: Path, out: Path, version: str | None = None) -> Path:
    from corpuspipe.orchestrate.flow import build_release

    return Path(build_release(raw_dir=str(raw), out_dir=str(out), version=version)["release_dir"])


@pytest.fixture(scope="session")
def seed_release(prefect_harness, raw_dir, tmp_path_factory) -> Path:
    return _build(raw_dir, tmp_path_factory.mktemp("releases"))


def test_release_has_the_contract_files_and_validates(seed_release, raw_dir):
    for name in schemas.TABLES:  # every table is a folder of parts
        assert sorted(p.name for p in (seed_release / name).iterdir())[0] == "part-00000.parquet", name
    for fname in data_files(seed_release) + ["MANIFEST.json"]:
        assert (seed_release / fname).is_file(), fname
    counts = validate_release(seed_release)
    assert counts["documents"] == 9
    assert counts["sections"] > 9
    manifest = json.loads((seed_release / "MANIFEST.json").read_text(encoding="utf-8"))
    assert manifest["version"] == "1.0.0" and seed_release.name == "1.0.0"
    assert (seed_release.parent / "latest").read_text().strip() == "1.0.0"
    assert [i["path"] for i in manifest["inputs"]] == sorted(p.name for p in raw_dir.glob("*.txt"))
    for i in manifest["inputs"]:
        assert i["bytes"] == (raw_dir / i["path"]).stat().st_size and i["encoding"].startswith("utf-8")
    for key in ("dataset", "content_hash", "created_at", "pipeline", "libraries", "config", "config_hash", "stages"):
        assert key in manifest
    assert set(manifest["stages"]) >= {"ingest", "watermark", "normalize", "section", "dedup"}


def test_parquet_metadata_is_sorted_and_has_no_timestamps(seed_release):
    for fname in data_files(seed_release):
        name = fname.split("/")[0]
        md = pq.read_schema(seed_release / fname).metadata
        keys = [k for k in md if k.startswith(b"corpuspipe.")]
        assert keys == sorted(keys)
        assert md[b"corpuspipe.table"].decode() == name
        assert md[b"corpuspipe.version"] == b"1.0.0"
        assert b"created" not in b" ".join(md.keys())


def test_loads_without_casts_in_pandas_polars_duckdb(seed_release):
    import duckdb
    import pandas as pd
    import polars as pl

    docs_pd = pd.read_parquet(seed_release / "documents")
    assert len(docs_pd) == 9 and str(docs_pd["essay_index"].dtype) == "int32"
    docs_pl = pl.read_parquet(str(seed_release / "documents" / "*.parquet"))
    assert docs_pl.schema["essay_index"] == pl.Int32
    assert docs_pl.schema["flags"] == pl.List(pl.String)
    secs_pl = pl.read_parquet(str(seed_release / "sections" / "*.parquet"))
    assert secs_pl.schema["level"] == pl.Int8
    con = duckdb.connect()
    n_dedup = con.execute(
        f"SELECT count(*) FROM read_parquet('{seed_release / 'documents' / '*.parquet'}') WHERE duplicate_of IS NULL"
    ).fetchone()[0]
    assert n_dedup == 9  # no two different seed essays are duplicates
    rows = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{seed_release / 'sections' / '*.parquet'}')").fetchall()
    types = {r[0]: r[1] for r in rows}
    assert types["level"] == "TINYINT" and types["char_start"] == "INTEGER"
    edits = con.execute(
        f"SELECT count(*) FROM read_parquet('{seed_release / 'edits' / '*.parquet'}')"
    ).fetchone()[0]
    assert edits > 0


def test_raw_files_rebuild_exactly_from_release(seed_release, raw_dir):
    docs = pq.read_table(seed_release / "documents").to_pylist()
    edits = pq.read_table(seed_release / "edits").to_pylist()
    by_doc: dict[str, list[Edit]] = {}
    for e in edits:
        by_doc.setdefault(e["doc_id"], []).append(
            Edit(e["raw_start"], e["raw_end"], e["before"], e["after"], e["stage"], e["rule"], e["clean_start"], e["clean_end"])
        )
    files: dict[str, list[tuple[int, str]]] = {}
    for d in docs:
        files.setdefault(d["source_path"], []).append((d["essay_index"], rebuild_raw(d["text"], by_doc.get(d["doc_id"], []))))
    for path, parts in files.items():
        rebuilt = "".join(text for _, text in sorted(parts))
        assert rebuilt == (raw_dir / path).read_text(encoding="utf-8-sig"), path


def test_same_inputs_give_byte_identical_parquet(prefect_harness, raw_dir, tmp_path):
    a = _build(raw_dir, tmp_path / "a", version="1.0.0")
    b = _build(raw_dir, tmp_path / "b", version="1.0.0")
    assert data_files(a) == data_files(b)
    for fname in data_files(a):
        assert (a / fname).read_bytes() == (b / fname).read_bytes(), fname
    ma = json.loads((a / "MANIFEST.json").read_text())
    mb = json.loads((b / "MANIFEST.json").read_text())
    assert ma["content_hash"] == mb["content_hash"]


def test_schemas_match_contract_columns():
    required = {
        "documents": ["doc_id", "source_path", "source_sha256", "essay_index", "title", "author", "date", "text",
                      "script", "char_count", "cluster_id", "duplicate_of", "flags"],
        "sections": ["section_id", "doc_id", "path", "level", "marker", "heading", "text", "char_start", "char_end",
                     "parent_id", "cluster_id", "duplicate_of"],
        "duplicates": ["level", "a_id", "b_id", "jaccard", "jaccard_exact", "containment_ab", "containment_ba", "relation"],
        "edits": ["source_path", "essay_index", "stage", "rule", "raw_start", "raw_end", "before", "after"],
    }
    for table, cols in required.items():
        names = schemas.TABLES[table].names
        assert all(c in names for c in cols), (table, set(cols) - set(names))
    assert schemas.DOCUMENTS.field("essay_index").type == pa.int32()
    assert schemas.DOCUMENTS.field("flags").type == pa.list_(pa.string())
    assert schemas.SECTIONS.field("level").type == pa.int8()
