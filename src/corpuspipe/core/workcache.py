"""The work cache: content-addressed records of finished work, verified before they are trusted.

Every pass over a shard and every reduce stores one **record** under ``<out>/.work/<area>/<key>.json``:
what it returned (its *payload*: paths of the files it wrote, counts, partial results) and, for
every file it wrote, the file's size and xxh3-128 digest, plus a digest of the record itself.  The
record is written last, so its presence means the work finished.

**Nothing read back is trusted unverified** (issue 24): :meth:`WorkCache.load` re-checks the
record's own digest and every file's size and digest.  A record or file that is damaged, truncated,
missing or unreadable makes the entry a miss -- the work is done again and one warning line says
so -- never data and never a crash.  Before this, one flipped byte in a pass-1 essays file became
立足→疫足 in three documents of the next release (exit 0), and a truncated file raised the same
448-line ArrowInvalid traceback on every run until ``.work`` was deleted by hand.

**Records are portable**: a path under the work folder is stored relative to it
(``{"$work": "pass1/ab12.parquet"}``) and made absolute again on load, so a copied output folder
(``cp -a``) uses its own work files, never the original's.  Keys are computed over the portable
form too, so the copy's keys are the original's.

Verification costs one read of each cached file per process: xxh3-128 hashes ~10 GB/s on this
machine, and a digest is remembered per (path, size, mtime, inode) for the life of the process, so
a file is hashed at most once per run however many lookups name it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import xxhash

from corpuspipe.core.io import file_hash, write_json

RECORD_FORMAT = 2
_WORK = "$work"
_DIGESTS: dict[tuple[str, int, int, int], str] = {}  # per-process memo: (path, size, mtime_ns, ino) -> xxh3


def file_digest(path: str | Path) -> str:
    """xxh3-128 of a file's bytes (remembered per path, size, mtime and inode in this process)."""
    st = os.stat(path)
    memo = (os.fspath(path), st.st_size, st.st_mtime_ns, st.st_ino)
    digest = _DIGESTS.get(memo)
    if digest is None:
        digest = file_hash(Path(path), xxhash.xxh3_128(), 1 << 22)
        _DIGESTS[memo] = digest
    return digest


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class Damaged(Exception):
    """A record that cannot be trusted; the message says which file and how."""


class WorkCache:
    """Records of finished work under one work folder (see the module docstring).

    ``warn`` receives one line per damaged entry (the CLI prints it; tests collect it)."""

    def __init__(self, root: str | Path, warn: Callable[[str], None] | None = None):
        self.root = Path(root).resolve()
        self._prefix = str(self.root) + os.sep
        self.warn = warn or (lambda msg: None)

    # -- portable paths --------------------------------------------------------------------------
    def portable(self, value: Any) -> Any:
        """``value`` with every absolute path under the work folder replaced by ``{"$work": relative}``."""
        if isinstance(value, str):
            return {_WORK: value[len(self._prefix):]} if value.startswith(self._prefix) else value
        if isinstance(value, dict):
            return {k: self.portable(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.portable(v) for v in value]
        return value

    def absolute(self, value: Any) -> Any:
        """The inverse of :meth:`portable`, against this cache's folder."""
        if isinstance(value, dict):
            if len(value) == 1 and _WORK in value:
                return str(self.root / value[_WORK])
            return {k: self.absolute(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.absolute(v) for v in value]
        return value

    def paths_in(self, value: Any) -> Iterator[str]:
        """Every absolute path under the work folder named anywhere in ``value``."""
        if isinstance(value, str):
            if value.startswith(self._prefix):
                yield value
        elif isinstance(value, dict):
            for v in value.values():
                yield from self.paths_in(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                yield from self.paths_in(v)

    def digest_of(self, value: Any) -> str:
        """sha256 of ``value`` in portable form: a key part that does not depend on where the
        output folder lives."""
        return hashlib.sha256(_canonical(self.portable(value))).hexdigest()

    # -- records -----------------------------------------------------------------------------------
    def record_path(self, area: str, key: str) -> Path:
        return self.root / area / f"{key}.json"

    def store(self, area: str, key: str, payload: Any, files: Iterable[str | Path] = ()) -> None:
        """Record finished work: ``payload`` plus the size and digest of every file it wrote (and
        every work file its payload names).  Written atomically and last."""
        names = sorted({str(Path(f).resolve()) for f in files} | set(self.paths_in(payload)))
        entries = []
        for name in names:
            if not name.startswith(self._prefix):
                raise ValueError(f"{name}: a work-cache record covers files under {self.root} only")
            entries.append({"path": name[len(self._prefix):], "bytes": os.stat(name).st_size,
                            "xxh3": file_digest(name)})
        body = {"format": RECORD_FORMAT, "payload": self.portable(payload), "files": entries}
        write_json(self.record_path(area, key), {**body, "sha256": hashlib.sha256(_canonical(body)).hexdigest()})

    def load(self, area: str, key: str) -> Any | None:
        """The payload of a verified record (paths absolute), or None: no record (a plain miss), or
        a record that fails verification (a warning line, the record removed, a miss)."""
        path = self.record_path(area, key)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            return self._damaged(path, f"unreadable ({exc.strerror or exc})")
        try:
            return self._verified(raw)
        except Damaged as exc:
            return self._damaged(path, str(exc))

    def files_of(self, area: str, key: str) -> list[Path]:
        """The record file and every file it covers (for pruning), without verifying."""
        path = self.record_path(area, key)
        try:
            d = json.loads(path.read_bytes())
            return [path] + [self.root / f["path"] for f in d.get("files", [])]
        except (OSError, ValueError, TypeError, KeyError):
            return [path]

    def _verified(self, raw: bytes) -> Any:
        try:
            d = json.loads(raw)
            body = {"format": d["format"], "payload": d["payload"], "files": d["files"]}
            sealed = d["sha256"]
        except (ValueError, TypeError, KeyError):
            raise Damaged("record is not a work-cache record (damaged JSON)") from None
        if body["format"] != RECORD_FORMAT:
            raise Damaged(f"record format {body['format']!r}, expected {RECORD_FORMAT}")
        if hashlib.sha256(_canonical(body)).hexdigest() != sealed:
            raise Damaged("record's digest does not match its content")
        for f in body["files"]:
            name = self.root / f["path"]
            try:
                size = os.stat(name).st_size
            except FileNotFoundError:
                raise Damaged(f"{f['path']} is missing") from None
            except OSError as exc:
                raise Damaged(f"{f['path']} unreadable ({exc.strerror or exc})") from None
            if size != f["bytes"]:
                raise Damaged(f"{f['path']} has {size} bytes, recorded {f['bytes']}")
            try:
                digest = file_digest(name)
            except OSError as exc:
                raise Damaged(f"{f['path']} unreadable ({exc.strerror or exc})") from None
            if digest != f["xxh3"]:
                raise Damaged(f"{f['path']} does not match its recorded digest")
        return self.absolute(body["payload"])

    def _damaged(self, path: Path, why: str) -> None:
        rel = path.relative_to(self.root) if path.is_relative_to(self.root) else path
        self.warn(f"work cache entry {rel} not used: {why}; recomputing it")
        try:
            path.unlink()
        except OSError:
            pass
        return None

    # -- pruning -----------------------------------------------------------------------------------
    def prune(self, keep: Iterable[str | Path]) -> int:
        """Delete every file under the work folder not in ``keep`` (earlier inputs or configs):
        content-addressed files would otherwise pile up with every changed input.  Deleting the
        whole folder is always safe."""
        keep_set = {Path(p).resolve() for p in keep}
        removed = 0
        for p in self.root.rglob("*"):
            if p.is_file() and p.resolve() not in keep_set:
                p.unlink(missing_ok=True)
                removed += 1
        return removed
