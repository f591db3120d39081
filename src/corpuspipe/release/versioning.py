"""Semantic versions for releases, decided from content rather than from a person's memory.

The version is written into every Parquet file's metadata, so it must be decided before the files
exist: everything here works from in-memory Arrow tables plus the previous release's MANIFEST.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from corpuspipe.release.digest import logical_type, table_digest  # noqa: F401  (table_digest: re-exported)

MANIFEST_NAME = "MANIFEST.json"
INDEX_NAME = "index.json"
LATEST_NAME = "latest"
FIRST_VERSION = "1.0.0"

_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
_BUMP_RANK = {"none": 0, "patch": 1, "minor": 2, "major": 3, "initial": 3}


class VersionError(ValueError):
    """A version string or a release registration that would break the release history."""


# --------------------------------------------------------------------------- version strings


def parse_version(version: str) -> tuple[int, int, int]:
    """Strict MAJOR.MINOR.PATCH: pre-release tags would make directory names sort ambiguously."""
    m = _SEMVER.match(version)
    if m is None:
        raise VersionError(f"not a MAJOR.MINOR.PATCH version: {version!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def bump_version(version: str, bump: str) -> str:
    major, minor, patch = parse_version(version)
    if bump == "major":
        return f"{major + 1}.0.0"
    if bump == "minor":
        return f"{major}.{minor + 1}.0"
    if bump == "patch":
        return f"{major}.{minor}.{patch + 1}"
    if bump == "none":
        return version
    raise VersionError(f"unknown bump {bump!r}")


def _bump_between(old: str, new: str) -> str:
    o, n = parse_version(old), parse_version(new)
    if n <= o:
        return "none"
    if n[0] > o[0]:
        return "major"
    if n[1] > o[1]:
        return "minor"
    return "patch"


# --------------------------------------------------------------------------- digests


def schema_fingerprint(schemas: Mapping[str, pa.Schema], schema_version: str | None = None) -> str:
    """sha256 of the schema version, table names, column names, types and nullability; schema
    metadata is ignored.  The schema version counts because it also names the release layout (3.0:
    tables as folders of parts): a reader's paths break as surely as its columns, so a layout change
    is a major version like a column change."""
    from corpuspipe.core.schemas import SCHEMA_VERSION

    canon = {
        table: [[f.name, logical_type(f.type), bool(f.nullable)] for f in schema]
        for table, schema in sorted(schemas.items())
    }
    canon = {"schema_version": schema_version or SCHEMA_VERSION, "tables": canon}
    return hashlib.sha256(_canonical_json(canon).encode()).hexdigest()


def metadata_digest(config: Mapping[str, Any], pipeline_version: str, inputs: Sequence[Mapping[str, Any]]) -> str:
    """What a patch release is about: config, pipeline version and the input files.

    The git commit is deliberately left out: a commit that changes neither output nor the pipeline
    version should not mint a release.
    """
    canon_inputs = sorted(
        ({k: v for k, v in dict(i).items()} for i in inputs), key=lambda i: (str(i.get("path")), _canonical_json(i))
    )
    payload = {"config": dict(config), "pipeline_version": pipeline_version, "inputs": canon_inputs}
    return hashlib.sha256(_canonical_json(payload).encode()).hexdigest()


def manifest_metadata_digest(manifest: Mapping[str, Any]) -> str:
    """The metadata digest of an existing release (stored one if present, else recomputed)."""
    stored = manifest.get("metadata_digest")
    if isinstance(stored, str) and stored:
        return stored
    return metadata_digest(
        manifest.get("config", {}), str(manifest.get("pipeline", {}).get("version", "")), manifest.get("inputs", [])
    )


def content_hash(outputs: Sequence[Mapping[str, Any]]) -> str:
    """sha256 over the data files' sorted (name, sha256) pairs, as recorded in MANIFEST.json."""
    h = hashlib.sha256()
    for o in sorted(outputs, key=lambda o: str(o["path"])):
        h.update(f"{o['path']}\0{o['sha256']}\n".encode())
    return h.hexdigest()


def _canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


# --------------------------------------------------------------------------- deciding


def classify_change(
    previous_manifest: Mapping[str, Any] | None,
    schema_fp: str,
    table_digests: Mapping[str, str],
    metadata_digest_: str,
) -> str:
    """'initial', 'major' (schema), 'minor' (rows), 'patch' (metadata only) or 'none'."""
    if previous_manifest is None:
        return "initial"
    if previous_manifest.get("schema_fingerprint") != schema_fp:
        return "major"
    if dict(previous_manifest.get("table_digests") or {}) != dict(table_digests):
        return "minor"
    if manifest_metadata_digest(previous_manifest) != metadata_digest_:
        return "patch"
    return "none"


def decide_version(
    previous_manifest: dict | None,
    schema_fp: str,
    table_digests: Mapping[str, str],
    metadata_digest: str,
    requested: str | None = None,
) -> tuple[str, str]:
    """(version, bump) for the next release.

    bump is the kind of change found ('initial', 'major', 'minor', 'patch', 'none').  With 'none' the
    previous version is returned: the caller decides whether to refuse or to reuse it.  A requested
    version must be newer than the previous one and at least as big a step as the change needs.
    """
    bump = classify_change(previous_manifest, schema_fp, table_digests, metadata_digest)
    if previous_manifest is None:
        if requested is not None:
            parse_version(requested)
            return requested, bump
        return FIRST_VERSION, bump
    prev = str(previous_manifest["version"])
    parse_version(prev)
    if requested is None:
        return bump_version(prev, bump), bump
    step = _bump_between(prev, requested)
    if step == "none":
        raise VersionError(f"requested version {requested} is not newer than the previous release {prev}")
    if _BUMP_RANK[step] < _BUMP_RANK[bump]:
        raise VersionError(
            f"requested version {requested} is a {step} step from {prev}, but the change needs a {bump} release"
        )
    return requested, bump


# --------------------------------------------------------------------------- the release registry


def _version_key(v: str) -> tuple[int, int, int]:
    try:
        return parse_version(v)
    except VersionError:
        return (-1, -1, -1)


def release_counts(manifest: Mapping[str, Any]) -> dict[str, int]:
    """Rows per table, from the manifest's outputs (summed over a table's parts)."""
    from corpuspipe.release.layout import table_rows

    return dict(sorted(table_rows(manifest).items()))


def index_entry(version: str, manifest: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "version": version,
        "content_hash": manifest.get("content_hash"),
        "created_at": manifest.get("created_at"),
        "counts": release_counts(manifest),
    }


def merge_index(index: Mapping[str, Any] | None, version: str, manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The index with `version` added; re-adding identical content is allowed, other content is not."""
    parse_version(version)
    entries = {str(e["version"]): dict(e) for e in (index or {}).get("releases", [])}
    new = index_entry(version, manifest)
    old = entries.get(version)
    if old is not None and old.get("content_hash") != new["content_hash"]:
        raise VersionError(
            f"release {version} is already registered with content_hash {old.get('content_hash')}, "
            f"not {new['content_hash']}: releases are immutable, choose a new version"
        )
    entries[version] = new
    ordered = sorted(entries.values(), key=lambda e: _version_key(str(e["version"])))
    return {"latest": ordered[-1]["version"], "releases": ordered}


def dumps_index(index: Mapping[str, Any]) -> str:
    return json.dumps(index, sort_keys=True, ensure_ascii=False, indent=2) + "\n"




from corpuspipe.core.io import atomic_write_text, file_sha256  # noqa: E402  (atomic_write_text re-exported for release modules)


def read_manifest(release_dir: Path) -> dict[str, Any]:
    return json.loads((Path(release_dir) / MANIFEST_NAME).read_text(encoding="utf-8"))


class ReleaseCheckError(ValueError):
    """A release directory does not match its own MANIFEST.json."""


def manifest_files(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every file the manifest vouches for: its ``files`` list (all files but MANIFEST.json, written by
    the writer since issue 13), else ``outputs`` (the Parquet tables only) for older releases."""
    files = manifest.get("files")
    if isinstance(files, list) and files:
        return [dict(f) for f in files]
    return [dict(o) for o in manifest.get("outputs", [])]


def check_release_dir(release_dir: Path, *, hashes: bool = True) -> dict[str, Any]:
    """The manifest of a complete, untouched release, or ReleaseCheckError naming every problem.

    Checks presence, size and (with ``hashes``) sha256 of every file in ``manifest_files`` and that
    ``content_hash`` matches the outputs list.  Read-only: sealed releases (0444) pass.
    """
    release_dir = Path(release_dir)
    mpath = release_dir / MANIFEST_NAME
    if not mpath.is_file():
        raise ReleaseCheckError(f"{release_dir} is not a release: {MANIFEST_NAME} is missing")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
        version = str(manifest["version"])
        outputs = list(manifest["outputs"])
        parse_version(version)
        files = manifest_files(manifest)
        for f in files:
            rel = str(f["path"])
            if rel == MANIFEST_NAME or rel.startswith("/") or ".." in Path(rel).parts:
                raise ValueError(f"bad path {rel!r} in files")
    except (ValueError, KeyError, TypeError) as exc:
        raise ReleaseCheckError(f"{mpath}: unreadable manifest ({exc})") from None
    if not outputs:
        raise ReleaseCheckError(f"{mpath}: lists no output files")
    problems = []
    for f in files:
        rel = str(f["path"])
        path = release_dir / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
            continue
        size = path.stat().st_size
        if "bytes" in f and size != int(f["bytes"]):
            problems.append(f"{rel}: size {size} differs from the manifest's {f['bytes']}")
        elif hashes and file_sha256(path) != f.get("sha256"):
            problems.append(f"{rel}: sha256 differs from the manifest (file changed after the release was written)")
    if manifest.get("content_hash") != content_hash(outputs):
        problems.append("MANIFEST.json: content_hash does not match its outputs list")
    if problems:
        raise ReleaseCheckError("; ".join(problems))
    return manifest


def seal_release(release_dir: Path) -> list[Path]:
    """Make every file of a finished release read-only (0444) so no later command (diff, a user's
    editor, a stray ``>``) can change a release in place; returns the files sealed, sorted.

    Directories keep their mode: removing a whole release stays possible for its owner.
    """
    sealed = []
    for p in sorted(Path(release_dir).rglob("*")):
        if p.is_file() and not p.is_symlink():
            os.chmod(p, 0o444)
            sealed.append(p)
    return sealed


def register_release(releases_root: Path, version: str, manifest: dict) -> bool:
    """Add a release to `releases/index.json` and point `releases/latest` at the newest version.

    Idempotent: registering a release that is already listed with the same content rewrites nothing
    (returns False); a re-run after a crash repairs whichever of index.json and latest is behind.
    Callers serialise registrations with the build lock (locking.release_lock).
    """
    root = Path(releases_root)
    index_path = root / INDEX_NAME
    current = json.loads(index_path.read_text(encoding="utf-8")) if index_path.exists() else None
    merged = merge_index(current, version, manifest)
    changed = False
    text = dumps_index(merged)
    if current is None or dumps_index(current) != text:
        atomic_write_text(index_path, text)
        changed = True
    latest_path = root / LATEST_NAME
    latest = f"{merged['latest']}\n"
    if not latest_path.is_file() or latest_path.read_text(encoding="utf-8") != latest:
        atomic_write_text(latest_path, latest)
        changed = True
    return changed


def reconcile(out_root: Path) -> list[str]:
    """Register complete release directories that index.json or latest do not know about.

    A build that crashes between ``os.replace(tmp, <version>)`` and ``register_release`` leaves a
    complete release that the index does not list and ``latest`` does not name; the next build then
    decides the same version again and fails with ReleaseExists.  The engine calls this at build start
    under the build lock.  A directory is registered only if it is named by a version, its manifest
    names the same version and every file matches the manifest (size and sha256; only unlisted
    directories are hashed, so the cost is paid once, after a crash).  Incomplete or altered
    directories are left alone and not registered.  Returns the versions registered, in version order.
    """
    root = Path(out_root)
    if not root.is_dir():
        return []
    index_path = root / INDEX_NAME
    try:
        index = json.loads(index_path.read_text(encoding="utf-8")) if index_path.exists() else {}
    except ValueError:
        index = {}  # a corrupt index is rebuilt from the release dirs below
    listed = {str(e.get("version")): e for e in index.get("releases", []) if isinstance(e, dict)}
    found: list[tuple[str, dict[str, Any]]] = []
    for p in sorted(root.iterdir(), key=lambda p: _version_key(p.name)):
        if not (p.is_dir() and _SEMVER.match(p.name) and (p / MANIFEST_NAME).is_file()):
            continue
        if p.name in listed:
            continue
        try:
            manifest = check_release_dir(p)
        except ReleaseCheckError:
            continue
        if str(manifest.get("version")) != p.name:
            continue
        found.append((p.name, manifest))
    registered = []
    for version, manifest in found:
        register_release(root, version, manifest)
        registered.append(version)
    if not found and listed:  # index complete; latest may still be behind
        newest = max(listed, key=_version_key)
        manifest = read_manifest(root / newest) if (root / newest / MANIFEST_NAME).is_file() else None
        if manifest is not None and str(manifest.get("version")) == newest:
            register_release(root, newest, manifest)
    return registered


def latest_release(releases_root: Path) -> Path | None:
    """The newest release directory: `latest`, else index.json, else a scan for MANIFEST.json."""
    root = Path(releases_root)
    candidates: list[str] = []
    latest_file = root / LATEST_NAME
    if latest_file.is_file():
        candidates.append(latest_file.read_text(encoding="utf-8").strip())
    index_path = root / INDEX_NAME
    if index_path.is_file():
        index = json.loads(index_path.read_text(encoding="utf-8"))
        candidates.extend(
            str(e["version"]) for e in sorted(index.get("releases", []), key=lambda e: _version_key(str(e["version"])),
                                              reverse=True)
        )
    for v in candidates:
        if v and (root / v / MANIFEST_NAME).is_file():
            return root / v
    if not root.is_dir():
        return None
    found = [p for p in root.iterdir() if p.is_dir() and _SEMVER.match(p.name) and (p / MANIFEST_NAME).is_file()]
    if not found:
        return None
    return max(found, key=lambda p: parse_version(p.name))
