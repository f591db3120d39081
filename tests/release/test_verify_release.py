"""Issue 24 rows 5-6: a release checks itself before anything reads it.

Measured by a user before: one byte flipped in a table and ``inspect``, ``show``, ``export``, ``diff``
all exited 0 with no warning (``export`` labelled the damaged text with the original content hash,
``diff`` against an intact copy reported nothing changed, the next release built on it); the same
file truncated gave 57-90-line tracebacks and crashed the next release's changelog.  Now every
command that reads a release refuses a damaged one in one line naming the file (exit 1), and
``corpuspipe verify`` checks everything.  Releases here are built from raw/ (real seed essays)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from tests.helpers import paths
from tests.helpers.cli import one_line, run_cli
from tests.helpers.seed_release import build_seed_release, plant_copy

from corpuspipe import pipeline
from corpuspipe.config import PipelineConfig
from corpuspipe.release.assemble import write_release
from corpuspipe.release.verify import ReleaseDamaged

PART = "documents/part-00000.parquet"


def refused(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit 1, no traceback, one line on stderr naming what is damaged."""
    assert proc.returncode == 1, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    return one_line(proc, *needles)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """raw/ released once; returns (raw copy, the releases root holding 1.0.0)."""
    root = tmp_path_factory.mktemp("verify")
    raw = root / "raw"
    shutil.copytree(paths.RAW, raw)
    release = build_seed_release(raw, root / "releases")
    assert release.name == "1.0.0"
    return raw, root / "releases"


def _copy(built, tmp_path: Path) -> Path:
    out = tmp_path / "releases"
    shutil.copytree(built[1], out, ignore=shutil.ignore_patterns(".work"))
    for p in out.rglob("*"):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)  # releases are sealed 0444
    return out / "1.0.0"


def _flip(release: Path) -> None:
    path = release / PART
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one byte, same size
    path.write_bytes(bytes(data))


def _truncate(release: Path) -> None:
    path = release / PART
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGES = {"flipped byte": (_flip, "sha256 differs"), "truncated": (_truncate, "bytes, the manifest says")}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_every_reading_command_refuses_a_damaged_release(built, tmp_path, damage):
    release = _copy(built, tmp_path)
    intact = built[1] / "1.0.0"
    doc_id = pq.read_table(intact / "documents", columns=["doc_id"])["doc_id"][0].as_py()
    hurt, says = DAMAGES[damage]
    hurt(release)
    for args in (["inspect", str(release)], ["show", str(release), doc_id],
                 ["export", str(release), str(tmp_path / "export")],
                 ["diff", str(intact), str(release)], ["diff", str(release), str(intact)]):
        refused(run_cli(*args), PART, says, str(release))
    assert not (tmp_path / "export").exists() or not any((tmp_path / "export").rglob("*.parquet"))
    proc = run_cli("verify", str(release))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"damaged: {PART}" in proc.stderr and "files: " in proc.stdout


def test_verify_prints_what_it_checked_on_an_intact_release(built):
    proc = run_cli("verify", str(built[1]))  # a releases root: its latest
    assert proc.returncode == 0, proc.stderr
    for line in ("size and sha256 all match", "content hash: matches", "contract:", "rows: documents 9", "verified"):
        assert line in proc.stdout, proc.stdout


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_the_next_release_refuses_to_build_on_a_damaged_one(built, tmp_path, damage):
    """The next release diffs its tables against the previous one (its changelog): it checks the
    previous release's files first, and leaves nothing behind when it refuses."""
    raw = tmp_path / "raw"
    shutil.copytree(built[0], raw)
    release = _copy(built, tmp_path)
    out = release.parent
    DAMAGES[damage][0](release)
    plant_copy(raw)  # new input: a new release (and a changelog against 1.0.0) is due
    cfg = PipelineConfig()
    build = pipeline.build(raw, cfg, tmp_path / "work")
    with pytest.raises(ReleaseDamaged) as info:
        write_release(build, cfg, out, None, "2026-01-02T00:00:00Z", build.wall)
    assert PART in str(info.value) and str(release) in str(info.value) and "\n" not in str(info.value)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".work")) == \
        ["1.0.0", "index.json", "latest"]  # no new release, no temporary directory left


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_the_release_command_refuses_a_damaged_previous_release_before_any_work(built, tmp_path, damage):
    """`corpuspipe release` checks the release it would build on before it starts: one line naming
    the file and what to do, exit 1, no pass run, nothing written."""
    raw = tmp_path / "raw"
    shutil.copytree(built[0], raw)
    release = _copy(built, tmp_path)
    hurt, says = DAMAGES[damage]
    hurt(release)
    plant_copy(raw)
    before = sorted(p.name for p in release.parent.iterdir())
    proc = run_cli("release", str(raw), "--out", str(release.parent))
    line = refused(proc, PART, says, str(release), "restore the file")
    assert "pass 0" not in proc.stderr and "Prefect" not in proc.stderr, proc.stderr
    assert line.startswith("error:")
    assert sorted(p.name for p in release.parent.iterdir() if p.name != ".lock") == before  # the lock file stays, as after any run


def test_an_unchanged_rerun_checks_the_release_it_answers_with(built, tmp_path):
    """Same inputs, config and code: the answer is the existing release -- unless its files no
    longer have the manifest's sizes (a stat per file; a flipped byte is found by verify and by the
    next written release's changelog)."""
    release = _copy(built, tmp_path)
    cfg = PipelineConfig()
    build = pipeline.build(built[0], cfg, tmp_path / "work")
    same = write_release(build, cfg, release.parent, None, "2026-01-02T00:00:00Z", build.wall)
    assert same.status == "unchanged" and same.release_dir == release
    _truncate(release)
    with pytest.raises(ReleaseDamaged, match="documents/part-00000.parquet: .* bytes, the manifest says"):
        write_release(build, cfg, release.parent, None, "2026-01-02T00:00:00Z", build.wall)
