"""One build at a time per output directory: an ``fcntl.flock`` on ``<out>/.lock``.

The kernel drops a flock when its holder dies (even on SIGKILL), so a crashed build never leaves
a stale lock behind; the pid written into the file is only there to name the holder in messages.
The lock is re-entrant within one process, so the CLI can take it before starting Prefect and the
flow can take it again (deployments and ``serve`` run the flow without the CLI).
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from corpuspipe.core.io import is_stale_temp

LOCK_NAME = ".lock"
TMP_PREFIX = ".tmp-"  # steps.write_release_step builds releases in <out>/.tmp-<version>-*/


class LockHeld(Exception):
    """Another process is building into the same output directory."""


_held: dict[Path, tuple[int, int]] = {}  # lock path -> (fd, depth), this process only
_guard = threading.Lock()


def lock_path(out_root: Path) -> Path:
    return Path(out_root).resolve() / LOCK_NAME


def holder_pid(out_root: Path) -> int | None:
    """The pid recorded by the current (or last) holder, if readable."""
    try:
        return int(lock_path(out_root).read_text(encoding="ascii").strip() or 0) or None
    except (OSError, ValueError):
        return None


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        raise


@contextmanager
def release_lock(out_root: Path, timeout: float = 0.0, poll: float = 0.2) -> Iterator[Path]:
    """Hold ``<out>/.lock`` for the duration; wait up to ``timeout`` seconds, then raise LockHeld."""
    path = lock_path(out_root)
    with _guard:
        if path in _held:
            fd, depth = _held[path]
            _held[path] = (fd, depth + 1)
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield path
        finally:
            with _guard:
                fd, depth = _held[path]
                _held[path] = (fd, depth - 1)
        return

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + max(timeout, 0.0)
        while not _try_flock(fd):
            if time.monotonic() >= deadline:
                pid = holder_pid(out_root)
                who = f"pid {pid}" if pid else "another process"
                waited = f" after waiting {timeout:g} s" if timeout > 0 else ""
                raise LockHeld(
                    f"another build ({who}) is writing to {path.parent} (lock {path}){waited}; "
                    "wait for it to finish or pass --wait SECONDS"
                )
            time.sleep(poll)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        with _guard:
            _held[path] = (fd, 1)
    except BaseException:
        os.close(fd)
        raise
    try:
        yield path
    finally:
        with _guard:
            del _held[path]
        os.ftruncate(fd, 0)  # the pid names a live holder only
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def holds_lock(out_root: Path) -> bool:
    with _guard:
        return lock_path(out_root) in _held


def clean_stale_tmp(out_root: Path) -> list[Path]:
    """Remove half-written release dirs and temp files left by a crashed build.

    Only safe while holding the lock: then no other build can be writing them.
    """
    root = Path(out_root)
    if not holds_lock(root):
        raise RuntimeError(f"clean_stale_tmp needs the lock on {root}")
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for p in root.iterdir():
        if p.name.startswith(TMP_PREFIX) and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
        elif p.name.startswith(".") and p.name.endswith(".tmp") and p.is_file():  # atomic_write_text leftovers
            p.unlink(missing_ok=True)
            removed.append(p)
    # a killed or failed build's half-written work files (core.io.atomic_path / atomic_open, shard writers)
    for dirpath, _dirs, names in os.walk(root / ".work"):
        for name in names:
            if is_stale_temp(name):
                p = Path(dirpath) / name
                p.unlink(missing_ok=True)
                removed.append(p)
    return sorted(removed)
