"""Issue 24 #7: an operational failure (a full disk, a damaged file) is one line at the command line,
without Prefect's tracebacks, and leaves no temporary files behind."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest
from tests.helpers.cli import last_error_line, run_cli
from tests.helpers.tiny_release import make_tables, write_release

from corpuspipe.core import shardio
from corpuspipe.core.io import atomic_path, is_stale_temp, temp_name
from corpuspipe.release.locking import clean_stale_tmp, release_lock

@pytest.fixture
def releases(tmp_path):
    root = tmp_path / "releases"
    write_release(root, make_tables(), "1.0.0")
    return root


# ----------------------------------------------------------------------------- #7 full disk, damage
class _FullDisk:
    """A Parquet writer on a full disk: every write and the footer fail with ENOSPC."""

    def write_table(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    def close(self):
        raise OSError(errno.ENOSPC, "No space left on device")


def test_essay_writer_leaves_no_temp_file_when_the_disk_is_full(tmp_path, raw_dir):
    """abort() closed the writer first: on a full disk that close raised again and the unlink never ran."""
    from corpuspipe.config import IngestConfig
    from corpuspipe.stages.ingest.files import ingest_file

    essays = ingest_file(raw_dir, sorted(p.name for p in raw_dir.iterdir())[0], IngestConfig()).essays
    w = shardio.EssayWriter(tmp_path / "pass0" / "k.parquet")
    assert w.tmp.exists()
    w.writer.close()
    w.writer = _FullDisk()
    with pytest.raises(OSError):
        w.write(essays)
    w.abort()  # must not raise, must remove
    assert list((tmp_path / "pass0").iterdir()) == []
    w2 = shardio.EssayWriter(tmp_path / "pass0" / "k.parquet")
    w2.write(essays)
    w2.writer.close()
    w2.writer = _FullDisk()
    with pytest.raises(OSError):
        w2.close()
    assert list((tmp_path / "pass0").iterdir()) == []


def test_atomic_path_removes_the_partial_file_and_stale_temps_are_swept(tmp_path):
    target = tmp_path / ".work" / "watermark" / "x.parquet"
    with pytest.raises(OSError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert not target.parent.exists() or list(target.parent.iterdir()) == []
    # a killed build's leftover (dead pid) goes, a live writer's (ours) stays
    (tmp_path / ".work" / "pass0").mkdir(parents=True)
    dead = tmp_path / ".work" / "pass0" / ".k.parquet.999999999-00ff.tmp"
    old = tmp_path / ".work" / "pass0" / ".k2.parquet.tmp"
    live = tmp_path / ".work" / "pass0" / temp_name("k3.parquet")
    for p in (dead, old, live):
        p.write_bytes(b"x")
    assert is_stale_temp(dead.name) and is_stale_temp(old.name) and not is_stale_temp(live.name)
    with release_lock(tmp_path):
        removed = clean_stale_tmp(tmp_path)
    assert dead in removed and old in removed and live.exists()


def _tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_release_on_a_full_disk_is_one_line_and_leaves_no_temp_files(tmp_path, gov_reports, cli_env):
    """88 real reports (4.4 MB) into a 2 MB file system: pass 0 fails.  Before: rc 1 but 105-331 lines
    with 2-15 Prefect tracebacks, and a .tmp of the watermark collect left in .work."""
    disk = tmp_path / "disk"
    if os.geteuid() != 0 or not _tmpfs(disk, "2M"):
        pytest.skip("needs a small tmpfs (root)")
    try:
        raw = tmp_path / "raw"
        raw.mkdir()
        for i, r in enumerate(gov_reports):
            (raw / f"r{i:03d}.txt").write_text(r["title"] + "\n\n" + r["content"] + "\n", encoding="utf-8")
        proc = run_cli("release", str(raw), "--out", str(disk / "rel"), timeout=300,
                   env=cli_env)
        print(f"[measure] full disk: rc {proc.returncode}, {len(proc.stderr.splitlines())} stderr lines")
        assert proc.returncode == 1
        line = last_error_line(proc, "no space left on the device", str(disk / "rel"))
        print(f"[measure] {line}")
        left = [p for p in disk.rglob("*") if p.name.endswith(".tmp") or ".tmp-" in p.name]
        assert left == []
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_damaged_release_files_are_one_line(releases, tmp_path):
    docs = sorted((releases / "1.0.0" / "documents").glob("part-*.parquet"))[0]
    docs.chmod(0o644)
    docs.write_bytes(docs.read_bytes()[:300])
    last_error_line(run_cli("inspect", str(releases)), "part-00000.parquet", "1.0.0")
    man = releases / "1.0.0" / "MANIFEST.json"
    man.write_text('{"version": ', encoding="utf-8")
    last_error_line(run_cli("inspect", str(releases / "1.0.0")), "is damaged: MANIFEST.json is unreadable", "1.0.0")
