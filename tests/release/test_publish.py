from __future__ import annotations

import hashlib
import json
from pathlib import Path

import fsspec
import pytest
from tests.helpers.cli import file_digests
from tests.helpers.tiny_release import make_tables, write_release

from corpuspipe.release.card import write_card
from corpuspipe.release.publish import PublishError, publish, verify_release


@pytest.fixture
def release(tmp_path: Path) -> Path:
    r = write_release(tmp_path / "releases", make_tables(), "1.0.0")
    write_card(r)  # derived files travel with the release too
    return r


def test_fresh_publish_copies_everything_and_writes_index_and_latest(release, tmp_path):
    target = tmp_path / "bucket" / "corpus"
    url = publish(release, str(target))
    assert url == f"{target}/1.0.0"
    assert file_digests(target / "1.0.0") == file_digests(release)
    assert "README.md" in file_digests(target / "1.0.0")
    index = json.loads((target / "index.json").read_text())
    manifest = json.loads((release / "MANIFEST.json").read_text())
    assert index["latest"] == "1.0.0"
    assert index["releases"] == [{"version": "1.0.0", "content_hash": manifest["content_hash"],
                                  "created_at": manifest["created_at"],
                                  "counts": {"documents": 4, "duplicates": 1, "edits": 4, "quarantine": 1,
                                             "sections": 8}}]
    assert (target / "latest").read_text() == "1.0.0\n"
    assert not [p for p in target.iterdir() if p.name.startswith(".tmp") or p.name.endswith(".tmp")]


def test_republishing_identical_content_is_a_no_op(release, tmp_path):
    target = f"file://{tmp_path / 'bucket'}"
    first = publish(release, target)
    before = file_digests(tmp_path / "bucket")
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "bucket").rglob("*") if p.is_file()}
    assert publish(release, target) == first
    assert file_digests(tmp_path / "bucket") == before
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "bucket").rglob("*") if p.is_file()} == mtimes


def test_same_version_with_different_content_is_refused(release, tmp_path):
    target = tmp_path / "bucket"
    publish(release, str(target))
    before = file_digests(target)
    other = write_release(tmp_path / "other", make_tables(titles={0: "不同的标题"}), "1.0.0")
    with pytest.raises(PublishError, match="already holds release 1.0.0 with content_hash"):
        publish(other, str(target))
    assert file_digests(target) == before


def test_tampered_file_is_refused_and_target_untouched(release, tmp_path):
    target = tmp_path / "bucket"
    docs = release / "documents" / "part-00001.parquet"
    data = bytearray(docs.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different bytes
    docs.write_bytes(bytes(data))
    with pytest.raises(PublishError, match="documents/part-00001.parquet: sha256 differs"):
        publish(release, str(target))
    assert not target.exists()


def test_missing_manifest_or_file_is_refused(release, tmp_path):
    (release / "edits" / "part-00000.parquet").unlink()
    with pytest.raises(PublishError, match="edits/part-00000.parquet: missing"):
        verify_release(release)
    (release / "MANIFEST.json").unlink()
    with pytest.raises(PublishError, match="MANIFEST.json is missing"):
        publish(release, str(tmp_path / "bucket"))
    assert not (tmp_path / "bucket").exists()


def test_object_store_path_and_upload_corruption(release, tmp_path, monkeypatch):
    """memory:// goes through the non-local branch (per-file moves, manifest last)."""
    target = f"memory://pub-{tmp_path.name}/corpus"
    fs, root = fsspec.core.url_to_fs(target)
    original = type(fs).put_file

    def corrupting_put(self, lpath, rpath, **kw):
        original(self, lpath, rpath, **kw)
        if rpath.endswith("sections/part-00000.parquet"):
            self.pipe_file(rpath, b"not parquet")

    monkeypatch.setattr(type(fs), "put_file", corrupting_put)
    with pytest.raises(PublishError, match="corrupted sections/part-00000.parquet"):
        publish(release, target)
    assert not fs.exists(f"{root}/1.0.0")
    assert not [p for p in fs.ls(root, detail=False) if ".tmp-" in p]
    monkeypatch.undo()

    url = publish(release, target)
    assert url == f"{target}/1.0.0"
    manifest = json.loads(fs.cat_file(f"{root}/1.0.0/MANIFEST.json"))
    for o in manifest["outputs"]:
        assert hashlib.sha256(fs.cat_file(f"{root}/1.0.0/{o['path']}")).hexdigest() == o["sha256"]
    assert fs.cat_file(f"{root}/latest") == b"1.0.0\n"


def test_two_versions_are_indexed_in_order(tmp_path):
    r1 = write_release(tmp_path / "rel", make_tables(), "1.0.0")
    r2 = write_release(tmp_path / "rel", make_tables(n_docs=5), "1.10.0", previous_version="1.0.0")
    r3 = write_release(tmp_path / "rel", make_tables(n_docs=3), "1.9.0", previous_version="1.0.0")
    target = tmp_path / "bucket"
    for r in (r2, r1, r3):
        publish(r, str(target))
    index = json.loads((target / "index.json").read_text())
    assert [e["version"] for e in index["releases"]] == ["1.0.0", "1.9.0", "1.10.0"]
    assert (target / "latest").read_text().strip() == "1.10.0"


def test_interrupted_publish_leftover_is_reported(release, tmp_path):
    target = tmp_path / "bucket"
    (target / "1.0.0").mkdir(parents=True)
    (target / "1.0.0" / "documents").mkdir()
    (target / "1.0.0" / "documents" / "part-00000.parquet").write_bytes(b"partial")
    with pytest.raises(PublishError, match="without MANIFEST.json"):
        publish(release, str(target))
