"""The CLI's user errors are one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


CLI = [sys.executable, "-m", "corpuspipe.cli"]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def _one_error_line(proc: subprocess.CompletedProcess, needle: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0]


def test_missing_raw_dir(tmp_path):
    _one_error_line(run("release", str(tmp_path / "nope"), "--out", str(tmp_path / "out")), "raw directory not found")


def test_empty_raw_dir(tmp_path):
    (tmp_path / "empty").mkdir()
    _one_error_line(run("release", str(tmp_path / "empty"), "--out", str(tmp_path / "out")), "raw directory is empty")


def test_unwritable_output(tmp_path, raw_dir):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    _one_error_line(run("release", str(raw_dir), "--out", str(blocker / "releases")), "not a directory")


def test_inspect_rejects_non_release(tmp_path):
    _one_error_line(run("inspect", str(tmp_path)), "not a release")
