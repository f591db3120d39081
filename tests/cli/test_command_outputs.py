"""Issue 24 #13-16 at the command line: nothing writes into a releases folder; a killed export leaves
nothing a reader takes for output and the re-run succeeds; every enumerated option names its valid
values; NaN is not a bound."""

from __future__ import annotations

import errno
import json
import signal
import subprocess
import time

import pyarrow.parquet as pq
import pytest
from tests.helpers.cli import CLI, file_digests, last_error_line, run_cli
from tests.helpers.tiny_release import make_tables, write_release

from corpuspipe.release.export import ExportError, Selection, export_release, parse_bounds


@pytest.fixture
def releases(tmp_path):
    root = tmp_path / "releases"
    write_release(root, make_tables(), "1.0.0")
    return root


# ----------------------------------------------------------------------------- #13, #14 the releases folder
def test_no_command_writes_into_the_releases_folder(releases, tmp_path):
    before = file_digests(releases)
    doc_id = pq.read_table(releases / "1.0.0" / "documents", columns=["doc_id"])["doc_id"][0].as_py()
    last_error_line(run_cli("export", str(releases), str(releases / "1.1.0")), "refusing to write into the releases folder")
    last_error_line(run_cli("export", str(releases), str(releases / "1.0.0" / "out")), "refusing", "release")
    last_error_line(run_cli("show", str(releases), doc_id, "--html", str(releases / "index.json")), "refusing")
    last_error_line(run_cli("show", str(releases), doc_id, "--html", str(releases / "latest")), "refusing")
    last_error_line(run_cli("diff", str(releases), str(releases), "--out", str(releases / "CHANGES.md")), "refusing")
    last_error_line(run_cli("release", str(tmp_path), "--out", str(releases / "1.1.0")), "inside the releases folder")
    assert file_digests(releases) == before
    assert not (releases / "1.1.0").exists()
    ok = run_cli("show", str(releases), doc_id, "--html", str(tmp_path / "story.html"))
    assert ok.returncode == 0, ok.stderr
    assert run_cli("inspect", str(releases)).returncode == 0


# ----------------------------------------------------------------------------- #15 killed export
def test_a_killed_export_leaves_nothing_a_reader_takes_and_the_rerun_succeeds(tmp_path):
    root = tmp_path / "releases"
    write_release(root, make_tables(n_docs=1500), "1.0.0")
    exports = tmp_path / "exports"
    exports.mkdir()
    out = exports / "train"
    proc = subprocess.Popen([*CLI, "export", str(root), str(out), "--shard-rows", "1", "--keep-flagged"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    partial = None
    while time.monotonic() < deadline:
        found = [p for p in exports.iterdir() if p.name.startswith(".train.partial-")]
        if found and len(list((found[0] / "parquet").glob("*.parquet")) if (found[0] / "parquet").is_dir() else []) >= 20:
            partial = found[0]
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert partial is not None, "the export never got going"
    assert not out.exists()  # nothing named train: a reader given it finds nothing
    assert [p.name for p in exports.iterdir() if not p.name.startswith(".")] == []
    again = run_cli("export", str(root), str(out), "--keep-flagged", "--shard-rows", "500")
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in exports.iterdir()) == ["train"]  # the dead partial is gone too
    man = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert pq.read_table(out / "parquet").num_rows == man["rows"] == 1499


def test_export_api_leaves_no_folder_when_it_fails(tmp_path, releases, monkeypatch):
    from corpuspipe.release import export as export_mod

    def boom(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export_mod, "atomic_write_text", boom)
    with pytest.raises(OSError):
        export_release(releases / "1.0.0", tmp_path / "o", Selection())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["releases"]  # no "o", no partial folder


# ----------------------------------------------------------------------------- #16 options
@pytest.mark.parametrize("args, needle", [
    (["--min", "han_ratio=nan"], "NaN"),
    (["--max", "best_containment=NaN"], "NaN"),
    (["--script", "klingon"], "unknown script 'klingon': use one of simplified, traditional, mixed, unknown"),
    (["--format", "csv"], "unknown format 'csv': use one of parquet, jsonl"),
    (["--format", "parquet", "--format", "xml"], "unknown format 'xml'"),
    (["--level", "para"], "unknown level 'para': use one of document, section"),
    (["--exclude-flag", "mojibak"], "unknown flag 'mojibak'"),
])
def test_bad_export_options_name_the_value_and_the_choices(releases, tmp_path, args, needle):
    line = last_error_line(run_cli("export", str(releases), str(tmp_path / "o"), *args), needle)
    if "flag" in needle:
        assert "mojibake" in line  # the valid values are listed
    assert not (tmp_path / "o").exists()


def test_nan_and_bad_values_are_refused_by_the_api_too(releases, tmp_path):
    with pytest.raises(ExportError, match="NaN"):
        parse_bounds(["han_ratio=nan"], "min")
    with pytest.raises(ExportError, match="NaN"):
        export_release(releases / "1.0.0", tmp_path / "o", Selection(min={"han_ratio": float("nan")}))
    with pytest.raises(ExportError, match="klingon"):
        export_release(releases / "1.0.0", tmp_path / "o", Selection(scripts=["klingon"]))
    assert not (tmp_path / "o").exists()
