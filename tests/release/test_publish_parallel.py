"""Issue 13 #3, #11: parallel publishes keep every version; every file of a release is verified."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.helpers.paths import REPO
from tests.helpers.tiny_release import make_tables, write_release

from corpuspipe.release.card import write_card
from corpuspipe.release.publish import (
    ALREADY_PUBLISHED,
    PUBLISHED,
    PublishError,
    publish_release,
    rebuild_index,
)
from corpuspipe.release.versioning import MANIFEST_NAME, seal_release



def add_files_list(release: Path) -> None:
    """What the lead's writer adds: every file but MANIFEST.json with bytes and sha256."""
    mpath = release / MANIFEST_NAME
    manifest = json.loads(mpath.read_text(encoding="utf-8"))
    manifest["files"] = [
        {"path": p.relative_to(release).as_posix(), "bytes": p.stat().st_size,
         "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
        for p in sorted(release.rglob("*")) if p.is_file() and p.name != MANIFEST_NAME
    ]
    mpath.write_text(json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True), encoding="utf-8")


_CHILD = """
import os, sys, time
from corpuspipe.release.publish import publish_release
go = sys.argv[3]
while not os.path.exists(go):
    time.sleep(0.005)
r = publish_release(sys.argv[1], sys.argv[2])
print(r.status)
"""


def _publish_in_parallel(releases: list[Path], target: Path, tmp_path: Path) -> list[subprocess.CompletedProcess]:
    """Start one real process per release, release them together through a go-file, wait for all."""
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    procs = [subprocess.Popen([sys.executable, "-c", _CHILD, str(r), str(target), str(go)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in releases]
    time.sleep(1.5)  # let every child import and start polling (the go-file makes the start simultaneous)
    go.write_text("")
    done = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return done


def test_eight_parallel_publishes_keep_every_version_in_the_index(tmp_path):
    versions = [f"1.{i}.0" for i in range(8)]
    releases = [write_release(tmp_path / "rel", make_tables(n_docs=3 + i % 3), v, register=False)
                for i, v in enumerate(versions)]
    target = tmp_path / "bucket"
    target.mkdir()
    results = _publish_in_parallel(releases, target, tmp_path)
    assert [r.returncode for r in results] == [0] * 8, [r.stderr[-500:] for r in results]
    index = json.loads((target / "index.json").read_text())
    assert [e["version"] for e in index["releases"]] == versions
    assert (target / "latest").read_text() == "1.7.0\n"


def test_one_version_published_four_times_at_once(tmp_path):
    release = write_release(tmp_path / "rel", make_tables(), "1.0.0")
    target = tmp_path / "bucket"
    target.mkdir()
    results = _publish_in_parallel([release] * 4, target, tmp_path)
    assert [r.returncode for r in results] == [0] * 4, [r.stderr[-500:] for r in results]
    statuses = sorted(r.stdout.strip() for r in results)
    assert statuses.count(PUBLISHED) == 1 and statuses.count(ALREADY_PUBLISHED) == 3, statuses
    assert not [p for p in target.iterdir() if p.name.startswith(".tmp")]
    assert json.loads((target / "index.json").read_text())["latest"] == "1.0.0"


def test_identical_republish_says_already_published(tmp_path):
    release = write_release(tmp_path / "rel", make_tables(), "1.0.0")
    assert publish_release(release, str(tmp_path / "bucket")).status == PUBLISHED
    assert publish_release(release, str(tmp_path / "bucket")).status == ALREADY_PUBLISHED


def test_index_is_derivable_from_the_manifests_on_an_object_store(tmp_path):
    target = f"memory://idx-{tmp_path.name}/corpus"
    import fsspec

    fs, root = fsspec.core.url_to_fs(target)
    for i, v in enumerate(["1.0.0", "1.1.0"]):
        publish_release(write_release(tmp_path / "rel", make_tables(n_docs=3 + i), v, register=False), target)
    fs.pipe_file(f"{root}/index.json", b'{"latest": "1.0.0", "releases": []}')  # a race's leftover
    index = rebuild_index(fs, root)
    assert [e["version"] for e in index["releases"]] == ["1.0.0", "1.1.0"]
    assert json.loads(fs.cat_file(f"{root}/index.json")) == index
    assert fs.cat_file(f"{root}/latest") == b"1.1.0\n"


@pytest.mark.parametrize("name", ["report.html", "README.md"])
def test_tampered_derived_file_is_refused_via_the_files_list(tmp_path, name):
    release = write_release(tmp_path / "rel", make_tables(), "1.0.0")
    write_card(release)
    (release / "report.html").write_text("<html><body>report</body></html>", encoding="utf-8")
    add_files_list(release)
    path = release / name
    path.write_text(path.read_text(encoding="utf-8").replace("<", "[", 1), encoding="utf-8")
    with pytest.raises(PublishError, match=f"{name}: (sha256|size)"):
        publish_release(release, str(tmp_path / "bucket"))
    assert not (tmp_path / "bucket" / "1.0.0").exists()


def test_files_list_decides_what_is_copied_and_sealed_releases_publish(tmp_path):
    release = write_release(tmp_path / "rel", make_tables(), "1.0.0")
    write_card(release)
    add_files_list(release)
    (release / "notes-by-someone.txt").write_text("not part of the release")
    seal_release(release)
    assert all(not os.access(p, os.W_OK) or os.geteuid() == 0 for p in release.iterdir())
    assert all((p.stat().st_mode & 0o777) == 0o444 for p in release.iterdir() if p.is_file())
    target = tmp_path / "bucket"
    publish_release(release, str(target))
    copied = sorted(p.name for p in (target / "1.0.0").iterdir())
    assert "notes-by-someone.txt" not in copied and "README.md" in copied and MANIFEST_NAME in copied
    assert all((p.stat().st_mode & 0o777) == 0o444 for p in (target / "1.0.0").rglob("*") if p.is_file())
    assert (target / "1.0.0" / "documents" / "part-00001.parquet").is_file()  # a table's parts, in its folder
