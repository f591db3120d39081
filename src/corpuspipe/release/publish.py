"""Copy a finished release to any fsspec URL (local path, file://, s3://, gs://) without ever
exposing a half-copied or altered release.

Order of events: verify the local files against MANIFEST.json (nothing is written to the target if
that fails), upload under a temporary name, re-read and verify every uploaded file, then move it to
`<target>/<version>/` with MANIFEST.json last (the manifest is the commit marker on object stores,
where a directory rename does not exist), then update the target's index.json and latest.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from corpuspipe.release.versioning import (
    INDEX_NAME,
    LATEST_NAME,
    MANIFEST_NAME,
    VersionError,
    content_hash,
    dumps_index,
    merge_index,
    parse_version,
)

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

    Catches a file edited after the manifest was written, a missing file, and a manifest whose
    content_hash does not match its own outputs list.
    """
    release_dir = Path(release_dir)
    mpath = release_dir / MANIFEST_NAME
    if not mpath.is_file():
        raise PublishError(f"{release_dir} is not a release: {MANIFEST_NAME} is missing")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
        version = str(manifest["version"])
        outputs = list(manifest["outputs"])
        parse_version(version)
    except (ValueError, KeyError, TypeError) as exc:
        raise PublishError(f"{mpath}: unreadable manifest ({exc})") from exc
    if not outputs:
        raise PublishError(f"{mpath}: lists no output files")
    problems = []
    for o in outputs:
        path = release_dir / str(o["path"])
        if not path.is_file():
            problems.append(f"{o['path']}: missing")
        elif path.stat().st_size != int(o.get("bytes", path.stat().st_size)):
            problems.append(f"{o['path']}: size {path.stat().st_size} differs from the manifest's {o['bytes']}")
        elif _sha256_local(path) != o["sha256"]:
            problems.append(f"{o['path']}: sha256 differs from the manifest (file changed after the release was "
                            "written)")
    if manifest.get("content_hash") != content_hash(outputs):
        problems.append("MANIFEST.json: content_hash does not match its outputs list")
    if problems:
        raise PublishError(f"refusing to publish {release_dir}: " + "; ".join(problems))
    return manifest


def _release_files(release_dir: Path) -> list[str]:
    """Files to copy, manifest last; hidden files and leftovers of atomic writes are not part of a release."""
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


def _update_index(fs: fsspec.AbstractFileSystem, root: str, version: str, manifest: Mapping[str, Any]) -> None:
    index_path = _join(root, INDEX_NAME)
    current = _read_json(fs, index_path) if fs.exists(index_path) else None
    try:
        merged = merge_index(current, version, manifest)
    except VersionError as exc:
        raise PublishError(f"{index_path}: {exc}") from exc
    text = dumps_index(merged)
    if current is None or dumps_index(current) != text:
        _write_text(fs, index_path, text)
    latest_path = _join(root, LATEST_NAME)
    latest = f"{merged['latest']}\n"
    if not fs.exists(latest_path) or fs.cat_file(latest_path).decode("utf-8") != latest:
        _write_text(fs, latest_path, latest)


def publish(release_dir: Path, target: str) -> str:
    """Publish a release to `<target>/<version>/` and return that URL.

    Identical content already there is a successful no-op (the index is repaired if needed);
    different content under the same version raises PublishError, as does any sha256 mismatch.
    """
    release_dir = Path(release_dir)
    manifest = verify_release(release_dir)
    version = str(manifest["version"])
    local_sums = {rel: _sha256_local(release_dir / rel) for rel in _release_files(release_dir)}
    expected = {str(o["path"]): str(o["sha256"]) for o in manifest["outputs"]}
    for rel, digest in expected.items():  # the file could change between verification and now
        if local_sums.get(rel) != digest:
            raise PublishError(f"refusing to publish {release_dir}: {rel} changed while publishing")

    fs, root = fsspec.core.url_to_fs(target)
    root = root.rstrip("/") or "/"
    url = f"{target.rstrip('/')}/{version}"
    final = _join(root, version)
    remote_manifest = _join(final, MANIFEST_NAME)
    if fs.exists(remote_manifest):
        existing = _read_json(fs, remote_manifest)
        if existing.get("content_hash") != manifest.get("content_hash"):
            raise PublishError(
                f"{url} already holds release {version} with content_hash {existing.get('content_hash')}; "
                f"this release has {manifest.get('content_hash')}. Releases are immutable: build a new version."
            )
        _update_index(fs, root, version, existing)
        return url
    if fs.exists(final):
        raise PublishError(f"{url} exists without {MANIFEST_NAME} (an interrupted publish?); "
                           "inspect and remove it, then publish again")

    fs.makedirs(root, exist_ok=True)
    tmp = _join(root, f".tmp-{version}-{uuid.uuid4().hex[:12]}")
    try:
        fs.makedirs(tmp, exist_ok=True)
        for rel in local_sums:
            fs.put_file(str(release_dir / rel), _join(tmp, rel))
        bad = [rel for rel, digest in local_sums.items() if _sha256_remote(fs, _join(tmp, rel)) != digest]
        if bad:
            raise PublishError(f"upload to {target} corrupted {', '.join(bad)} (sha256 differs after copy); "
                               "nothing was published")
        if isinstance(fs, LocalFileSystem):
            try:
                os.rename(tmp, final)  # one atomic step; fails if another publisher got there first
            except OSError as exc:
                raise PublishError(f"could not move the upload into {url}: {exc}") from exc
        else:
            for rel in local_sums:  # MANIFEST.json last: its presence means the release is complete
                fs.mv(_join(tmp, rel), _join(final, rel))
    except BaseException:
        if fs.exists(tmp):
            fs.rm(tmp, recursive=True)
        raise
    if fs.exists(tmp):
        fs.rm(tmp, recursive=True)
    _update_index(fs, root, version, manifest)
    return url
