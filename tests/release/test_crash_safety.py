"""A killed build leaves no visible partial release, and two builds never write one output at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.helpers.cli import run_cli
from tests.helpers.procs import kill_group

from corpuspipe.release.locking import LockHeld, clean_stale_tmp, holder_pid, holds_lock, release_lock

# Runs the real CLI, but the writer hangs once the release's parts are written (by the pool's
# workers) and before anything else of the release exists (card, manifest, rename).
HANGING_CLI = """
import os, sys, time
from pathlib import Path
import corpuspipe.release.card as card

def write_card(release_dir, stats=None):
    Path(os.environ["CRASH_MARKER"]).write_text(str(Path(release_dir) / "documents" / "part-00000.parquet"))
    time.sleep(3600)

card.write_card = write_card
from corpuspipe.cli import app
app(sys.argv[1:], prog_name="corpuspipe")
"""

HOLD_LOCK = """
import sys, time
from corpuspipe.release.locking import release_lock
with release_lock(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.readline()  # hold until the test closes stdin
"""


def _wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"process exited ({proc.returncode}) before {what}: {proc.stderr.read() if proc.stderr else ''}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def _kill_group(proc: subprocess.Popen) -> None:
    """Like a crash or an OOM kill: the build (and a server it started) dies at once."""
    kill_group(proc)


# -- the lock itself, across two processes ------------------------------------------------
def test_lock_refuses_naming_the_holder_then_is_free_after_it_exits(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert holder_pid(tmp_path) == holder.pid
        with pytest.raises(LockHeld, match=f"pid {holder.pid}"):
            with release_lock(tmp_path, timeout=0.3):
                pass
        holder.stdin.close()  # the holder releases; a waiting build then gets the lock
        with release_lock(tmp_path, timeout=60):
            assert holder_pid(tmp_path) == os.getpid()
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_lock_is_freed_by_the_kernel_when_the_holder_is_killed(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    assert holder.stdout.readline().strip() == "held"
    _kill_group(holder)
    with release_lock(tmp_path, timeout=0):  # no stale lock, although .lock still exists
        assert (tmp_path / ".lock").exists()


def test_lock_is_reentrant_in_one_process_and_guards_cleanup(tmp_path):
    (tmp_path / ".tmp-1.0.0-abc").mkdir()
    (tmp_path / ".tmp-1.0.0-abc" / "documents.parquet").write_bytes(b"partial")
    (tmp_path / ".latest.x1.tmp").write_text("1.0.0")
    (tmp_path / "1.0.0").mkdir()
    with pytest.raises(RuntimeError, match="needs the lock"):
        clean_stale_tmp(tmp_path)
    with release_lock(tmp_path):
        with release_lock(tmp_path, timeout=0):  # the flow inside the CLI takes it again
            assert holds_lock(tmp_path)
        assert holds_lock(tmp_path)
        removed = clean_stale_tmp(tmp_path)
    assert not holds_lock(tmp_path)
    assert [p.name for p in removed] == [".latest.x1.tmp", ".tmp-1.0.0-abc"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "1.0.0"]


# -- the CLI, killed while writing ----------------------------------------------------------
@pytest.mark.slow
def test_killed_build_leaves_no_partial_release_and_a_rerun_succeeds(cli_env, raw_dir, tmp_path):
    from corpuspipe.release.validate import validate_release

    out = tmp_path / "releases"
    done = run_cli("release", str(raw_dir), "--out", str(out), "--version", "1.0.0", env=cli_env, timeout=600)
    assert done.returncode == 0, done.stderr
    index_before = (out / "index.json").read_text()

    marker = tmp_path / "first-file-written"
    env = dict(cli_env, CRASH_MARKER=str(marker))
    hung = subprocess.Popen(
        [sys.executable, "-c", HANGING_CLI, "release", str(raw_dir), "--out", str(out), "--version", "2.0.0",
         "--runner", "thread"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        _wait_for(marker.exists, 300, "the first release file to be written", hung)
        partial = Path(marker.read_text())
        assert partial.is_file() and partial.parent.parent.name.startswith(".tmp-2.0.0-")
        assert not (out / "2.0.0").exists()

        # a second build into the same output refuses at once and names the running one
        refused = run_cli("release", str(raw_dir), "--out", str(out), "--version", "2.0.0", env=cli_env, timeout=600)
        assert refused.returncode == 75
        assert f"pid {hung.pid}" in refused.stderr and "Traceback" not in refused.stderr
        assert partial.is_file()  # it did not touch the running build's files
    finally:
        _kill_group(hung)

    assert hung.returncode == -signal.SIGKILL
    assert not (out / "2.0.0").exists()
    assert (out / "latest").read_text().strip() == "1.0.0"
    assert (out / "index.json").read_text() == index_before
    assert partial.parent.parent.is_dir()  # the leftover is only hidden (dot dir), not yet removed

    rerun = run_cli("release", str(raw_dir), "--out", str(out), "--version", "2.0.0", env=cli_env, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert not partial.parent.parent.exists()  # cleaned up under the lock by the next build
    assert not list(out.glob(".tmp-*"))
    assert (out / "latest").read_text().strip() == "2.0.0"
    assert validate_release(out / "2.0.0")["documents"] == 9
    versions = [r["version"] for r in json.loads((out / "index.json").read_text())["releases"]]
    assert sorted(versions) == ["1.0.0", "2.0.0"]
