"""Copy a finished release to any fsspec URL (local path, file://, s3://, gs://) without ever
exposing a half-copied or altered release.

Order of events: verify the local files against MANIFEST.json (every file of its ``files`` list, or
the Parquet ``outputs`` of older releases; nothing is written to the target if that fails), upload
under a temporary name, re-read and verify every uploaded file, then move it to `<target>/<version>/`
with MANIFEST.json last (the manifest is the commit marker on object stores, where a directory rename
does not exist), then update the target's index.json and latest.

Concurrency (issue 13 #3): 8 parallel publishes into one local target lost versions from index.json
in 2 of 5 trials (read-modify-write without a lock), and 4 publishes of one version raced on
``os.rename`` (``[Errno 39] Directory not empty``).  On local targets the commit step (check, rename,
index) now runs under an flock on ``<target>/.publish.lock``; the index is rebuilt from the listing of
per-version manifests each time, so it is also derivable on object stores, where no lock exists:
:func:`rebuild_index` repairs an index a race left behind.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from corpuspipe.release.versioning import (
    INDEX_NAME,
    LATEST_NAME,
    MANIFEST_NAME,
    ReleaseCheckError,
    VersionError,
    check_release_dir,
    dumps_index,
    index_entry,
    manifest_files,
    parse_version,
    seal_release,
)

PUBLISH_LOCK_NAME = ".publish.lock"
ALREADY_PUBLISHED = "already published"
PUBLISHED = "published"
_CHUNK = 1 << 20


class PublishError(RuntimeError):
    """The release cannot be published as asked; the target was left as it was."""


def _sha256_local(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _sha256_remote(fs: fsspec.AbstractFileSystem, path: str) -> str:
    h = hashlib.sha256()
    with fs.open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *parts])


def verify_release(release_dir: Path) -> dict[str, Any]:
    """Check a local release against its own manifest; return the manifest or raise PublishError.

    Catches a file edited after the manifest was written (README.md, report.html and the other
    derived files too, when the manifest has a ``files`` list), a missing file, and a manifest whose
    content_hash does not match its own outputs list.
    """
    try:
        return check_release_dir(Path(release_dir))
    except ReleaseCheckError as exc:
        msg = str(exc)
        if "is not a release" in msg or "unreadable manifest" in msg or "lists no output" in msg:
            raise PublishError(msg) from None
        raise PublishError(f"refusing to publish {release_dir}: {msg}") from None


def _release_files(release_dir: Path, manifest: Mapping[str, Any]) -> list[str]:
    """Files to copy, manifest last.  With a ``files`` list exactly those (a stray file dropped into
    the directory is not part of the release); older releases: every file but hidden ones and
    leftovers of atomic writes."""
    if isinstance(manifest.get("files"), list) and manifest["files"]:
        files = sorted({str(f["path"]) for f in manifest["files"]} - {MANIFEST_NAME})
        return files + [MANIFEST_NAME]
    files = sorted(
        p.relative_to(release_dir).as_posix()
        for p in release_dir.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(release_dir).parts)
        and not p.name.endswith(".tmp")
    )
    files.remove(MANIFEST_NAME)
    return files + [MANIFEST_NAME]


def _read_json(fs: fsspec.AbstractFileSystem, path: str) -> Any:
    with fs.open(path, "rb") as f:
        return json.loads(f.read().decode("utf-8"))


def _write_text(fs: fsspec.AbstractFileSystem, path: str, text: str) -> None:
    """Temp name then move: a local rename replaces atomically; object stores write whole objects anyway."""
    tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
    fs.pipe_file(tmp, text.encode("utf-8"))
    if isinstance(fs, LocalFileSystem):
        os.replace(tmp, path)
    else:
        fs.mv(tmp, path)


@contextmanager
def _target_lock(fs: fsspec.AbstractFileSystem, root: str, timeout: float) -> Iterator[None]:
    """flock on ``<root>/.publish.lock`` for local targets (the kernel drops it if the holder dies);
    object stores have no lock: their index is rebuilt from the manifests' listing instead."""
    if not isinstance(fs, LocalFileSystem):
        yield
        return
    path = os.path.join(root, PUBLISH_LOCK_NAME)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
            if time.monotonic() >= deadline:
                raise PublishError(f"another publish holds {path} (waited {timeout:g} s); try again later")
            time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _published_manifests(fs: fsspec.AbstractFileSystem, root: str) -> dict[str, dict[str, Any]]:
    """version -> manifest of every complete release under root (a version dir holding MANIFEST.json)."""
    found: dict[str, dict[str, Any]] = {}
    try:
        entries = fs.ls(root, detail=False)
    except FileNotFoundError:
        return found
    for entry in sorted(str(e).rstrip("/") for e in entries):
        name = entry.rsplit("/", 1)[-1]
        try:
            parse_version(name)
        except VersionError:
            continue
        mpath = _join(root, name, MANIFEST_NAME)
        if not fs.exists(mpath):
            continue
        try:
            manifest = _read_json(fs, mpath)
        except (OSError, ValueError):
            continue
        if str(manifest.get("version")) == name:
            found[name] = manifest
    return found


def _index_from(manifests: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    entries = [index_entry(v, m) for v, m in manifests.items()]
    ordered = sorted(entries, key=lambda e: parse_version(str(e["version"])))
    return {"latest": ordered[-1]["version"], "releases": ordered}


def rebuild_index(fs: fsspec.AbstractFileSystem, root: str) -> dict[str, Any] | None:
    """Write index.json and latest from the listing of per-version manifests (the source of truth);
    rewrites nothing that is already right.  Returns the index, or None for an empty target."""
    manifests = _published_manifests(fs, root)
    if not manifests:
        return None
    index = _index_from(manifests)
    index_path = _join(root, INDEX_NAME)
    text = dumps_index(index)
    current = fs.cat_file(index_path).decode("utf-8") if fs.exists(index_path) else None
    if current != text:
        _write_text(fs, index_path, text)
    latest_path = _join(root, LATEST_NAME)
    latest = f"{index['latest']}\n"
    if not fs.exists(latest_path) or fs.cat_file(latest_path).decode("utf-8") != latest:
        _write_text(fs, latest_path, latest)
    return index


@dataclass(frozen=True)
class PublishResult:
    url: str
    status: str  # PUBLISHED or ALREADY_PUBLISHED


def _check_existing(fs: fsspec.AbstractFileSystem, url: str, final: str, version: str,
                    manifest: Mapping[str, Any]) -> bool:
    """True if the target already holds this release; PublishError if it holds something else."""
    remote_manifest = _join(final, MANIFEST_NAME)
    if fs.exists(remote_manifest):
        existing = _read_json(fs, remote_manifest)
        if existing.get("content_hash") != manifest.get("content_hash"):
            raise PublishError(
                f"{url} already holds release {version} with content_hash {existing.get('content_hash')}; "
                f"this release has {manifest.get('content_hash')}. Releases are immutable: build a new version."
            )
        return True
    if fs.exists(final):
        raise PublishError(f"{url} exists without {MANIFEST_NAME} (an interrupted publish?); "
                           "inspect and remove it, then publish again")
    return False


def publish(release_dir: Path, target: str) -> str:
    """Publish a release to `<target>/<version>/` and return that URL (see :func:`publish_release`)."""
    return publish_release(release_dir, target).url


def publish_release(release_dir: Path, target: str, lock_timeout: float = 120.0) -> PublishResult:
    """Publish a release to `<target>/<version>/`.

    Identical content already there is a successful no-op with status ``already published`` (the
    index is repaired if needed); different content under the same version raises PublishError, as
    does any sha256 mismatch.  Safe to run in parallel: see the module docstring.
    """
    release_dir = Path(release_dir)
    manifest = verify_release(release_dir)
    version = str(manifest["version"])
    files = _release_files(release_dir, manifest)
    local_sums = {rel: _sha256_local(release_dir / rel) for rel in files}
    expected = {str(f["path"]): str(f["sha256"]) for f in manifest_files(manifest)}
    for rel, digest in expected.items():  # the file could change between verification and now
        if local_sums.get(rel) != digest:
            raise PublishError(f"refusing to publish {release_dir}: {rel} changed while publishing")

    fs, root = fsspec.core.url_to_fs(target)
    root = root.rstrip("/") or "/"
    url = f"{target.rstrip('/')}/{version}"
    final = _join(root, version)
    fs.makedirs(root, exist_ok=True)
    if _check_existing(fs, url, final, version, manifest):  # fast path: no upload
        with _target_lock(fs, root, lock_timeout):
            rebuild_index(fs, root)
        return PublishResult(url, ALREADY_PUBLISHED)

    tmp = _join(root, f".tmp-{version}-{uuid.uuid4().hex[:12]}")
    status = PUBLISHED
    try:
        fs.makedirs(tmp, exist_ok=True)
        for rel in local_sums:
            if "/" in rel:  # a table's parts sit in its folder (documents/part-00000.parquet)
                fs.makedirs(_join(tmp, rel.rsplit("/", 1)[0]), exist_ok=True)
            fs.put_file(str(release_dir / rel), _join(tmp, rel))
        bad = [rel for rel, digest in local_sums.items() if _sha256_remote(fs, _join(tmp, rel)) != digest]
        if bad:
            raise PublishError(f"upload to {target} corrupted {', '.join(bad)} (sha256 differs after copy); "
                               "nothing was published")
        with _target_lock(fs, root, lock_timeout):
            if _check_existing(fs, url, final, version, manifest):  # another publisher got there first
                status = ALREADY_PUBLISHED
            elif isinstance(fs, LocalFileSystem):
                try:
                    os.rename(tmp, final)  # one atomic step
                except OSError as exc:
                    raise PublishError(f"could not move the upload into {url}: {exc.strerror or exc}") from None
                seal_release(Path(final))
            else:
                for rel in local_sums:  # MANIFEST.json last: its presence means the release is complete
                    fs.mv(_join(tmp, rel), _join(final, rel))
            rebuild_index(fs, root)
    finally:
        if fs.exists(tmp):
            fs.rm(tmp, recursive=True)
    return PublishResult(url, status)
