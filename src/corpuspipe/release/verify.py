"""Trust a release only after checking it: every file a command reads is checked against the
manifest's size and sha256 first.

Measured by a user before this existed: one byte flipped in a table and ``inspect``, ``show``,
``export`` and ``diff`` all exited 0 (``export`` wrote the damaged text labelled with the original
content hash, ``diff`` against an intact copy reported nothing changed, the next release built on
it); the same file truncated gave 57-90-line tracebacks and a crashed next release.  Now a reader
opens a release with :func:`open_release` and asks it for a table's parts (:meth:`Release.parts`);
a damaged file is :class:`ReleaseDamaged`, one line naming the file.

Cost: the size is compared first (a truncated file never reaches the digest); the sha256 is read
once per process and file, and remembered by (path, size, mtime), so a command that reads a table
twice, or the writer that diffs and then reads the previous release, hashes it once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from corpuspipe.core.io import file_sha256
from corpuspipe.release.layout import table_outputs
from corpuspipe.release.versioning import MANIFEST_NAME, content_hash, manifest_files

_DIGESTS: dict[tuple[str, int, int], str] = {}


class ReleaseDamaged(Exception):
    """A release's file does not match its manifest (one line naming the file)."""


def sha256_cached(path: Path) -> str:
    """The file's sha256, computed once per (path, size, mtime) in this process."""
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = file_sha256(Path(path))
    return _DIGESTS[key]


def file_problem(release_dir: Path, entry: Mapping[str, Any], *, digest: bool = True) -> str | None:
    """What is wrong with one manifest entry's file, or None: missing, another size, another sha256
    (not read without ``digest``: a stat only)."""
    rel = str(entry["path"])
    path = Path(release_dir) / rel
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return f"{rel}: missing"
    except OSError as exc:
        return f"{rel}: unreadable ({exc.strerror or exc})"
    if "bytes" in entry and size != int(entry["bytes"]):
        return f"{rel}: {size:,} bytes, the manifest says {int(entry['bytes']):,} (truncated or replaced)"
    if digest and entry.get("sha256") and sha256_cached(path) != entry["sha256"]:
        return f"{rel}: sha256 differs from the manifest (changed after the release was written)"
    return None


def check_files(release_dir: Path, manifest: Mapping[str, Any], *, tables_only: bool = False,
                digest: bool = True) -> list[str]:
    """Problems of every file the manifest vouches for (only the table parts with ``tables_only``;
    sizes only without ``digest``)."""
    entries = [o for parts in table_outputs(manifest).values() for o in parts] if tables_only \
        else manifest_files(manifest)
    return [p for p in (file_problem(release_dir, e, digest=digest) for e in entries) if p]


def load_manifest(release_dir: Path) -> dict[str, Any]:
    """The manifest, or ReleaseDamaged naming it when it is missing or not a manifest."""
    path = Path(release_dir) / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        outputs = manifest["outputs"]
        if not isinstance(outputs, list) or not all(isinstance(o, dict) and "path" in o for o in outputs):
            raise ValueError("outputs is not a list of files")
    except FileNotFoundError:
        raise ReleaseDamaged(f"{release_dir} is not a release: {MANIFEST_NAME} is missing") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ReleaseDamaged(f"release {release_dir} is damaged: {MANIFEST_NAME} is unreadable ({exc})") from None
    if manifest.get("content_hash") != content_hash(outputs):
        raise ReleaseDamaged(f"release {release_dir} is damaged: {MANIFEST_NAME}'s content_hash does not match "
                             "its outputs list")
    return manifest


class Release:
    """A release opened for reading: its manifest, and its tables' parts, each checked before use."""

    def __init__(self, release_dir: Path, manifest: Mapping[str, Any]):
        self.dir = Path(release_dir)
        self.manifest = manifest
        self.outputs = table_outputs(manifest)

    def _check(self, entries: Sequence[Mapping[str, Any]]) -> None:
        for e in entries:
            problem = file_problem(self.dir, e)
            if problem:
                raise ReleaseDamaged(f"release {self.dir} is damaged: {problem}; "
                                     f"`corpuspipe verify {self.dir}` lists every file")

    def parts(self, table: str) -> list[Path]:
        """The table's part files in row order, each checked (an absent table: no parts)."""
        entries = self.outputs.get(table, [])
        self._check(entries)
        return [self.dir / e["path"] for e in entries]

    def check_all(self) -> None:
        """Every file of the manifest (tables, card, report, ...), for a command that reads them all."""
        self._check(manifest_files(self.manifest))

    def tables(self) -> list[str]:
        return list(self.outputs)


def open_release(release_dir: Path) -> Release:
    """A release to read (its manifest checked; parts are checked as they are asked for)."""
    return Release(Path(release_dir), load_manifest(Path(release_dir)))


def read_schema(release_dir: Path, entry: Mapping[str, Any]):
    """A part's Arrow schema, after a size check; a file Parquet cannot read is ReleaseDamaged."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    problem = file_problem(release_dir, entry, digest=False)
    try:
        if problem is None:
            return pq.read_schema(Path(release_dir) / entry["path"])
    except (pa.ArrowException, OSError) as exc:
        problem = f"{entry['path']}: not a readable Parquet file ({str(exc).splitlines()[0] if str(exc) else exc})"
    raise ReleaseDamaged(f"release {release_dir} is damaged: {problem}")
