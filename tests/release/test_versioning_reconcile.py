"""Issue 13 #4 and #10: a crash after the rename is reconciled; sealed releases are read-only."""

from __future__ import annotations

import json
import os

import pytest
from tests.helpers.tiny_release import make_tables, write_release

from corpuspipe.release.versioning import (
    INDEX_NAME,
    LATEST_NAME,
    decide_version,
    latest_release,
    read_manifest,
    reconcile,
    register_release,
    seal_release,
)


def _crash_after_rename(root, tables, version, previous):
    """What a build killed between os.replace(tmp, <version>) and register_release leaves behind."""
    return write_release(root, tables, version, previous_version=previous, register=False)


def test_reconcile_registers_a_release_the_crash_left_unindexed(tmp_path):
    root = tmp_path / "releases"
    write_release(root, make_tables(), "1.0.0")
    r2 = _crash_after_rename(root, make_tables(n_docs=5), "1.1.0", "1.0.0")
    assert (root / LATEST_NAME).read_text() == "1.0.0\n"  # the wedge: latest is behind
    # without reconcile the next build decides 1.1.0 again from latest and collides with the dir
    prev = read_manifest(latest_release(root))
    assert decide_version(prev, prev["schema_fingerprint"], {"x": "changed"}, "m")[0] == "1.1.0"

    assert reconcile(root) == ["1.1.0"]
    assert (root / LATEST_NAME).read_text() == "1.1.0\n"
    index = json.loads((root / INDEX_NAME).read_text())
    assert [e["version"] for e in index["releases"]] == ["1.0.0", "1.1.0"]
    assert latest_release(root) == r2
    prev = read_manifest(latest_release(root))
    assert decide_version(prev, prev["schema_fingerprint"], {"x": "changed"}, "m")[0] == "1.2.0"
    assert reconcile(root) == []  # idempotent


def test_reconcile_skips_incomplete_or_altered_dirs_and_repairs_a_stale_latest(tmp_path):
    root = tmp_path / "releases"
    write_release(root, make_tables(), "1.0.0")
    bad = _crash_after_rename(root, make_tables(n_docs=5), "1.1.0", "1.0.0")
    (bad / "edits" / "part-00000.parquet").unlink()
    altered = _crash_after_rename(root, make_tables(n_docs=3), "1.2.0", "1.0.0")
    with open(altered / "documents" / "part-00000.parquet", "r+b") as f:
        f.seek(100)
        f.write(b"\0")
    assert reconcile(root) == []
    assert (root / LATEST_NAME).read_text() == "1.0.0\n"
    (root / LATEST_NAME).unlink()  # crash between index.json and latest
    reconcile(root)
    assert (root / LATEST_NAME).read_text() == "1.0.0\n"


def test_register_release_is_idempotent(tmp_path):
    root = tmp_path / "releases"
    r = write_release(root, make_tables(), "1.0.0", register=False)
    m = read_manifest(r)
    assert register_release(root, "1.0.0", m) is True
    stamp = {p.name: p.stat().st_mtime_ns for p in root.iterdir() if p.is_file()}
    assert register_release(root, "1.0.0", m) is False
    assert {p.name: p.stat().st_mtime_ns for p in root.iterdir() if p.is_file()} == stamp


def test_seal_release_makes_every_file_read_only(tmp_path):
    r = write_release(tmp_path / "releases", make_tables(), "1.0.0")
    sealed = seal_release(r)
    assert sealed == sorted(p for p in r.rglob("*") if p.is_file())
    assert {oct(p.stat().st_mode & 0o777) for p in sealed} == {"0o444"}
    if os.geteuid() != 0:  # root ignores modes
        with pytest.raises(PermissionError):
            (r / "MANIFEST.json").write_text("{}")
