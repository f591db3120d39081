from __future__ import annotations

import json

import pyarrow as pa
import pytest
from tests.helpers.tiny_release import make_tables, write_release

from corpuspipe.core import schemas
from corpuspipe.config import PipelineConfig
from corpuspipe.release.versioning import (
    VersionError,
    decide_version,
    latest_release,
    manifest_metadata_digest,
    metadata_digest,
    read_manifest,
    register_release,
    schema_fingerprint,
    table_digest,
)


def _inputs(sha: str = "a" * 64) -> list[dict]:
    return [{"path": "000_x.txt", "bytes": 100, "sha256": sha, "encoding": "utf-8", "essays": 1}]


def _state(tables: dict[str, pa.Table], cfg: PipelineConfig | None = None, inputs=None, pv="0.1.0"):
    cfg = cfg or PipelineConfig()
    return (
        schema_fingerprint({n: t.schema for n, t in tables.items()}),
        {n: table_digest(t) for n, t in tables.items()},
        metadata_digest(cfg.model_dump(mode="json"), pv, inputs if inputs is not None else _inputs()),
    )


def _manifest(version: str, state) -> dict:
    fp, digests, md = state
    return {"version": version, "schema_fingerprint": fp, "table_digests": digests, "metadata_digest": md,
            "content_hash": "h" + version, "created_at": "2025-01-01T00:00:00Z",
            "outputs": [{"path": "documents.parquet", "rows": 3, "sha256": "x", "bytes": 1}]}


# ----------------------------------------------------------------------------- table_digest


def test_table_digest_ignores_metadata_chunking_and_offset_width():
    t = make_tables()["documents"]
    rechunked = pa.concat_tables([t.slice(0, 1), t.slice(1, 2), t.slice(3)])
    assert rechunked.column("text").num_chunks == 3
    with_meta = t.replace_schema_metadata({"corpuspipe.version": "9.9.9"})
    large = t.cast(pa.schema([pa.field(f.name, pa.large_string() if f.type == pa.string() else f.type, f.nullable)
                              for f in t.schema]))
    reordered = t.select(list(reversed(t.column_names)))
    d = table_digest(t)
    assert len(d) == 64
    assert d == table_digest(rechunked) == table_digest(with_meta) == table_digest(large) == table_digest(reordered)


def test_table_digest_sees_every_kind_of_cell_change():
    t = make_tables()["documents"]
    d = table_digest(t)
    seen = {d}
    for col, values in [
        ("title", ["x", "标题1", "标题2", "标题3"]),
        ("author", [None] * 4),  # null vs value
        ("trad_ratio", pa.array([0.0, 0.0, 0.0, 0.5], pa.float32())),
        ("flags", pa.array([[], ["a"], [], []], pa.list_(pa.string()))),
        ("flags", pa.array([[], [""], [], []], pa.list_(pa.string()))),  # empty string in a list != empty list
    ]:
        arr = pa.array(values, t.schema.field(col).type) if not isinstance(values, pa.Array) else values
        changed = t.set_column(t.schema.get_field_index(col), t.schema.field(col), arr)
        seen.add(table_digest(changed))
    # Moving a character between adjacent strings keeps the concatenation: lengths must count.
    a = pa.table({"s": ["ab", "c"]})
    b = pa.table({"s": ["a", "bc"]})
    assert table_digest(a) != table_digest(b)
    assert table_digest(pa.table({"s": [None]})) != table_digest(pa.table({"s": [""]}))
    assert len(seen) == 6
    assert table_digest(t.slice(0, 3)) != d  # a row removed


def test_table_digest_is_stable_across_a_parquet_round_trip(tmp_path):
    import pyarrow.parquet as pq

    t = make_tables()["sections"]
    pq.write_table(t, tmp_path / "s.parquet", compression="zstd", row_group_size=3)
    assert table_digest(pq.read_table(tmp_path / "s.parquet")) == table_digest(t)


def test_schema_fingerprint_changes_with_columns_types_and_nullability_only():
    fp = schema_fingerprint(schemas.TABLES)
    assert fp == schema_fingerprint(dict(reversed(list(schemas.TABLES.items()))))
    docs = schemas.DOCUMENTS
    with_meta = dict(schemas.TABLES, documents=docs.with_metadata({"a": "b"}))
    assert schema_fingerprint(with_meta) == fp
    added = dict(schemas.TABLES, documents=docs.append(pa.field("lang", pa.string())))
    retyped = dict(schemas.TABLES, documents=docs.set(docs.get_field_index("char_count"),
                                                      pa.field("char_count", pa.int64(), nullable=False)))
    nullable = dict(schemas.TABLES, documents=docs.set(docs.get_field_index("text"), pa.field("text", pa.string())))
    fps = {schema_fingerprint(s) for s in (added, retyped, nullable)}
    assert fp not in fps and len(fps) == 3


# ----------------------------------------------------------------------------- decide_version


def test_decide_version_first_release_and_each_kind_of_change():
    tables = make_tables()
    base = _state(tables)
    assert decide_version(None, *base) == ("1.0.0", "initial")
    prev = _manifest("1.2.3", base)
    assert decide_version(prev, *base) == ("1.2.3", "none")

    edited = dict(tables, documents=make_tables(titles={1: "新标题"})["documents"])
    assert decide_version(prev, *_state(edited)) == ("1.3.0", "minor")
    fewer = make_tables(n_docs=3)
    assert decide_version(prev, *_state(fewer)) == ("1.3.0", "minor")

    cfg = PipelineConfig.model_validate({"dedup": {"threshold": round(PipelineConfig().dedup.threshold + 0.05, 2)}})
    assert decide_version(prev, *_state(tables, cfg=cfg)) == ("1.2.4", "patch")
    assert decide_version(prev, *_state(tables, pv="0.2.0")) == ("1.2.4", "patch")
    assert decide_version(prev, *_state(tables, inputs=_inputs("b" * 64))) == ("1.2.4", "patch")

    docs = tables["documents"].append_column(pa.field("lang", pa.string()), pa.array(["zh"] * 4))
    assert decide_version(prev, *_state(dict(tables, documents=docs))) == ("2.0.0", "major")


def test_decide_version_recomputes_metadata_digest_for_manifests_without_one():
    tables = make_tables()
    state = _state(tables)
    cfg = PipelineConfig()
    prev = _manifest("1.0.0", state)
    del prev["metadata_digest"]
    prev.update(config=cfg.model_dump(mode="json"), pipeline={"version": "0.1.0", "git_commit": "zzz"},
                inputs=_inputs())
    assert manifest_metadata_digest(prev) == state[2]
    assert decide_version(prev, *state) == ("1.0.0", "none")


def test_requested_version_must_be_newer_and_big_enough():
    tables = make_tables()
    base = _state(tables)
    prev = _manifest("1.2.3", base)
    edited = _state(dict(tables, documents=make_tables(titles={0: "改"})["documents"]))
    assert decide_version(prev, *edited, requested="2.0.0") == ("2.0.0", "minor")
    assert decide_version(prev, *edited, requested="1.4.0") == ("1.4.0", "minor")
    with pytest.raises(VersionError, match="needs a minor"):
        decide_version(prev, *edited, requested="1.2.4")
    with pytest.raises(VersionError, match="not newer"):
        decide_version(prev, *base, requested="1.2.3")
    with pytest.raises(VersionError, match="MAJOR.MINOR.PATCH"):
        decide_version(None, *base, requested="v1")
    assert decide_version(None, *base, requested="0.9.0") == ("0.9.0", "initial")


# ----------------------------------------------------------------------------- registry


def test_register_release_keeps_a_sorted_deterministic_index_and_latest(tmp_path):
    state = _state(make_tables())
    for v in ["1.0.0", "1.10.0", "1.2.0"]:
        register_release(tmp_path, v, _manifest(v, state))
    index = json.loads((tmp_path / "index.json").read_text())
    assert [e["version"] for e in index["releases"]] == ["1.0.0", "1.2.0", "1.10.0"]
    assert index["latest"] == "1.10.0"
    assert index["releases"][0] == {"version": "1.0.0", "content_hash": "h1.0.0",
                                    "created_at": "2025-01-01T00:00:00Z", "counts": {"documents": 3}}
    assert (tmp_path / "latest").read_text().strip() == "1.10.0"
    before = (tmp_path / "index.json").read_bytes()
    register_release(tmp_path, "1.2.0", _manifest("1.2.0", state))  # identical: allowed, no change
    assert (tmp_path / "index.json").read_bytes() == before
    changed = dict(_manifest("1.2.0", state), content_hash="other")
    with pytest.raises(VersionError, match="immutable"):
        register_release(tmp_path, "1.2.0", changed)
    assert (tmp_path / "index.json").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_latest_release_prefers_latest_file_then_index_then_scan(tmp_path):
    assert latest_release(tmp_path / "missing") is None
    assert latest_release(tmp_path) is None
    r1 = write_release(tmp_path, make_tables(), "1.0.0")
    r2 = write_release(tmp_path, make_tables(n_docs=5), "1.1.0", previous_version="1.0.0")
    assert latest_release(tmp_path) == r2
    assert read_manifest(r2)["version"] == "1.1.0"
    (tmp_path / "latest").write_text("1.0.0\n")
    assert latest_release(tmp_path) == r1
    (tmp_path / "latest").unlink()
    (tmp_path / "index.json").unlink()
    assert latest_release(tmp_path) == r2


def test_a_new_schema_version_is_a_major_release():
    """Schema 3.0 changed the layout (tables as folders of parts), not the columns: a 2.x release's
    reader breaks all the same, so the next release after one is a major version."""
    old = {"version": "1.4.0", "schema_fingerprint": schema_fingerprint(schemas.TABLES, "2.0"),
           "table_digests": {}, "metadata_digest": "m"}
    assert schema_fingerprint(schemas.TABLES) == schema_fingerprint(schemas.TABLES, schemas.SCHEMA_VERSION)
    assert decide_version(old, schema_fingerprint(schemas.TABLES), {}, "m") == ("2.0.0", "major")
