"""The release writer as parallel tasks: parts, runners, digests (issue 21 item 2).

Built from raw/ (real seed essays) with ``pipeline.build``, cut into several shards and parts."""

from __future__ import annotations

import hashlib
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from tests.helpers.seed_release import data_files

from corpuspipe import pipeline
from corpuspipe.core import schemas
from corpuspipe.config import PipelineConfig
from corpuspipe.core.stage import Tasks
from corpuspipe.release import digest, tables
from corpuspipe.release.assemble import write_release
from corpuspipe.release.validate import validate_release

CFG = PipelineConfig.model_validate({"release": {"shard_files": 2}})  # raw/'s 9 files in 5 shards


@pytest.fixture(scope="module")
def build(tmp_path_factory, raw_dir):
    work = tmp_path_factory.mktemp("parts") / "work"
    b = pipeline.build(raw_dir, CFG, work)
    assert len(b.passes[-1]) >= 4
    return b


def _pool_runner(ex: ProcessPoolExecutor):
    def run(step: Tasks) -> list:
        return [f.result() for f in [ex.submit(step.fn, *a) for a in step.args]]
    return run


def _write(build, out: Path, monkeypatch, part_bytes: int, runner=None):
    monkeypatch.setattr(tables, "PART_SHARD_BYTES", part_bytes)
    kw = {"run_tasks": runner} if runner else {}
    return write_release(build, CFG, out, "1.0.0", "2026-01-01T00:00:00Z", build.wall, **kw).release_dir


def test_a_pool_of_processes_writes_the_same_bytes_as_one_process(build, tmp_path, monkeypatch):
    serial = _write(build, tmp_path / "serial", monkeypatch, 1)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as ex:
        pooled = _write(build, tmp_path / "pool", monkeypatch, 1, _pool_runner(ex))
    files = data_files(serial)
    assert files == data_files(pooled)
    assert len([f for f in files if f.startswith("documents/")]) == len(build.passes[-1])  # a part per shard
    for f in files:
        assert (serial / f).read_bytes() == (pooled / f).read_bytes(), f
    assert (serial / "README.md").read_text() == (pooled / "README.md").read_text()


def test_parts_hold_the_rows_of_one_file_and_validate(build, tmp_path, monkeypatch):
    """Several parts or one: the same rows in the same order; the table digest is the parts' combined."""
    many = _write(build, tmp_path / "many", monkeypatch, 1)
    one = _write(build, tmp_path / "one", monkeypatch, 1 << 40)
    assert validate_release(many) == validate_release(one)
    import json

    manifest = json.loads((many / "MANIFEST.json").read_text(encoding="utf-8"))
    for t in schemas.RELEASE_TABLES:
        a = pq.read_table(many / t.name)
        b = pq.read_table(one / t.name)
        assert a.equals(b), t.name  # parts in shard order: the rows of one part, in its order
        parts = sorted((o for o in manifest["outputs"] if o["table"] == t.name), key=lambda o: o["part"])
        assert [o["path"] for o in parts] == [f"{t.name}/part-{i:05d}.parquet" for i in range(len(parts))]
        for o in parts:
            assert digest.file_digest(many / o["path"]) == o["digest"]
            assert hashlib.sha256((many / o["path"]).read_bytes()).hexdigest() == o["sha256"]
        assert manifest["table_digests"][t.name] == digest.combine([(o["rows"], o["digest"]) for o in parts])
    steps = manifest["orchestration"]["release_seconds"]
    assert {"write: tables", "total"} <= set(steps)


def test_a_damaged_part_fails_validation_with_its_name(build, tmp_path, monkeypatch):
    """The task's read-back check on a part whose sections no longer match their documents."""
    import pyarrow as pa

    rel = _write(build, tmp_path / "r", monkeypatch, 1)
    path = rel / "sections" / "part-00001.parquet"
    t = pq.read_table(path)
    rows = t.to_pylist()
    rows[0]["text"] = rows[0]["text"] + "（篡改）"
    import os

    os.chmod(path, 0o644)
    pq.write_table(pa.Table.from_pylist(rows, schema=t.schema), path)
    from corpuspipe.release.validate import ReleaseInvalid, read_back

    report = read_back({"documents": rel / "documents" / "part-00001.parquet", "sections": path,
                        "edits": rel / "edits" / "part-00001.parquet"}, "1.0.0")
    assert report["problems"] and "is not the document slice" in report["problems"][0]
    with pytest.raises(ReleaseInvalid, match="sections/part-00001.parquet: [0-9,]+ bytes, the manifest says"):
        validate_release(rel)
