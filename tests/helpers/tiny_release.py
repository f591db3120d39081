"""Tiny releases in the documented layout (``<table>/part-NNNNN.parquet``), for the release-trust tests
(versioning, changelog, card, report, publish).  Built with pyarrow and schemas.py only, so these tests
do not depend on the flow; ``parts`` cuts a table into several parts, as the writer does."""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pyarrow.parquet as pq

from corpuspipe.core import schemas
from corpuspipe.config import PipelineConfig
from corpuspipe.release import digest
from corpuspipe.release.layout import part_path
from corpuspipe.release.versioning import (
    content_hash,
    metadata_digest,
    register_release,
    schema_fingerprint,
)

TEXTS = [
    "第一章 总则。我们要坚持以人民为中心的发展思想，推进各项工作。",
    "关于加强学习的几点体会：一是理论学习，二是实践锻炼。",
    "第一章 总则。我们要坚持以人民为中心的发展思想，推进各项工作！",
    "這是一篇繁體的文章，講述了學習的重要性。",
    "乱码示例：?A不牢，地动山摇。",
]


def _sha(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


def make_tables(
    n_docs: int = 4, titles: dict[int, str] | None = None, texts: dict[int, str] | None = None
) -> dict[str, pa.Table]:
    """Tables conforming to schemas.TABLES: doc 2 duplicates doc 0, doc 4 (if any) is mojibake-flagged."""
    titles = titles or {}
    texts = texts or {}
    docs: list[dict[str, Any]] = []
    for i in range(n_docs):
        text = texts.get(i, TEXTS[i % len(TEXTS)] + ("" if i < len(TEXTS) else f"（{i}）"))
        trad = i % len(TEXTS) == 3
        cluster = "d0000" if i in (0, 2) else f"d{i:04d}"  # a cluster is named by its kept document
        docs.append(
            {
                "doc_id": f"d{i:04d}",
                "source_path": f"{i:03d}_x.txt",
                "source_sha256": _sha(f"src{i}"),
                "essay_index": 0,
                "title": titles.get(i, f"标题{i}"),
                "author": None if i % 2 else "作者",
                "date": datetime.date(2024, 1, 1),
                "url": None,
                "crawled_at": None,
                "text": text,
                "text_sha256": _sha(text),
                "script": "traditional" if trad else "simplified",
                "trad_ratio": 0.9 if trad else 0.0,
                "char_count": len(text),
                "section_count": 2,
                "edit_count": 1,
                "cluster_id": cluster,
                "cluster_size": 2 if i in (0, 2) else 1,
                "duplicate_of": "d0000" if i == 2 else None,
                "flags": ["mojibake"] if i % len(TEXTS) == 4 else [],
                **{name: 0.5 for name in schemas.SIGNAL_COLUMNS},
            }
        )
    sections = []
    for d in docs:
        half = len(d["text"]) // 2
        for j, (a, b, level) in enumerate([(0, half, 1), (half, len(d["text"]), 2)]):
            sections.append(
                {
                    "section_id": f"{d['doc_id']}-s{j}",
                    "doc_id": d["doc_id"],
                    "path": f"{j + 1}",
                    "level": level,
                    "ordinal": j + 1,
                    "marker": "一、" if level == 1 else "（一）",
                    "marker_family": "cn_num" if level == 1 else "cn_paren",
                    "heading": None,
                    "text": d["text"][a:b],
                    "char_start": a,
                    "char_end": b,
                    "parent_id": None if level == 1 else f"{d['doc_id']}-s0",
                    "is_leaf": level == 2,  # s0 is s1's parent
                    "cluster_id": d["cluster_id"] + f"-s{j}",
                    "duplicate_of": None,
                }
            )
    duplicates = [
        {
            "level": "document",
            "a_id": "d0000",
            "b_id": "d0002",
            "jaccard": 0.9,
            "jaccard_exact": 0.93,
            "containment_ab": 0.95,
            "containment_ba": 0.95,
            "relation": "near_duplicate",
        }
    ] if n_docs > 2 else []
    edits = [
        {
            "doc_id": d["doc_id"],
            "source_path": d["source_path"],
            "essay_index": 0,
            "stage": "watermark",
            "rule": "watermark.source_bracket" if k % 2 == 0 else "normalize.punct",
            "raw_start": 10,
            "raw_end": 20,
            "clean_start": 10,
            "clean_end": 10,
            "before": "【来源：某网】",
            "after": "",
        }
        for k, d in enumerate(docs)
    ]
    quarantine = [
        {"path": "bad.bin", "line": None, "reason": "binary", "detail": "NUL bytes", "bytes": 12, "sha256": _sha("b")}
    ]
    raw = {"documents": docs, "sections": sections, "duplicates": duplicates, "edits": edits,
           "quarantine": quarantine}
    out = {}
    for name, rows in raw.items():
        t = pa.Table.from_pylist(rows, schema=schemas.TABLES[name])
        out[name] = t.sort_by([(k, "ascending") for k in schemas.SORT_KEYS[name]])
    return out


def _pieces(name: str, t: pa.Table, tables: dict[str, pa.Table], parts: dict[str, int]) -> list[pa.Table]:
    """The table cut into parts: documents into ``parts["documents"]`` runs of rows, and sections and
    edits along the same documents (as the writer cuts them: a part's rows are those of its shards)."""
    docs = tables.get("documents")
    n = max(1, min(parts.get("documents" if name in ("sections", "edits") else name, 1), t.num_rows))
    if name in ("sections", "edits") and docs is not None and docs.num_rows and "doc_id" in t.column_names:
        cuts = [round(i * docs.num_rows / n) for i in range(n + 1)]
        part_of: dict[str, int] = {}
        for i in range(n):
            for d in docs["doc_id"].slice(cuts[i], cuts[i + 1] - cuts[i]).to_pylist():
                part_of.setdefault(d, i)
        where = [part_of.get(d, n - 1) for d in t["doc_id"].to_pylist()]  # a row without its document: last
        return [t.filter(pa.array([w == i for w in where])) for i in range(n)]
    cuts = [round(i * t.num_rows / n) for i in range(n + 1)]
    return [t.slice(cuts[i], cuts[i + 1] - cuts[i]) for i in range(n)]


def _file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_release(
    releases_root: Path,
    tables: dict[str, pa.Table],
    version: str,
    *,
    config: PipelineConfig | None = None,
    pipeline_version: str = "0.1.0",
    created_at: str = "2025-01-01T00:00:00Z",
    previous_version: str | None = None,
    register: bool = True,
    parts: dict[str, int] | None = None,
) -> Path:
    """Write releases/<version>/ with zstd Parquet parts, sorted metadata keys and MANIFEST.json
    (``parts``: table -> how many parts; documents in 2 by default, every other table in 1)."""
    parts = {"documents": 2, **(parts or {})}
    cfg = config or PipelineConfig()
    rdir = Path(releases_root) / version
    rdir.mkdir(parents=True)
    outputs = []
    digests = {}
    for name in sorted(tables):
        meta = {
            "corpuspipe.config_hash": cfg.config_hash(),
            "corpuspipe.dataset": cfg.release.dataset,
            "corpuspipe.pipeline_version": pipeline_version,
            "corpuspipe.schema_version": schemas.SCHEMA_VERSION,
            "corpuspipe.table": name,
            "corpuspipe.version": version,
        }
        t = tables[name].replace_schema_metadata({k: meta[k] for k in sorted(meta)})
        entries = []
        for i, piece in enumerate(_pieces(name, t, tables, parts)):
            path = rdir / part_path(name, i)
            path.parent.mkdir(exist_ok=True)
            pq.write_table(piece, path, compression="zstd")
            entries.append({"path": part_path(name, i), "table": name, "part": i, "bytes": path.stat().st_size,
                            "rows": piece.num_rows, "sha256": _file_sha(path), "digest": digest.table_digest(piece)})
        outputs += entries
        digests[name] = digest.combine([(e["rows"], e["digest"]) for e in entries])
    inputs = [{"path": "000_x.txt", "bytes": 100, "sha256": _sha("in"), "encoding": "utf-8", "essays": 1}]
    n_docs = tables["documents"].num_rows if "documents" in tables else 0
    n_pairs = tables["duplicates"].num_rows if "duplicates" in tables else 0
    nq = tables["quarantine"].num_rows if "quarantine" in tables else 0
    manifest = {
        "dataset": cfg.release.dataset,
        "version": version,
        "content_hash": content_hash(outputs),
        "created_at": created_at,
        "pipeline": {"version": pipeline_version, "git_commit": "abc123"},
        "schema_version": schemas.SCHEMA_VERSION,
        "schema_fingerprint": schema_fingerprint({n: t.schema for n, t in tables.items()}),
        "table_digests": dict(sorted(digests.items())),
        "metadata_digest": metadata_digest(cfg.model_dump(mode="json"), pipeline_version, inputs),
        "libraries": {"pyarrow": pa.__version__},
        "config": cfg.model_dump(mode="json"),
        "config_hash": cfg.config_hash(),
        "inputs": inputs,
        "outputs": outputs,
        "stages": {"ingest": {"seconds": 0.1, "counts": {"files": 1, "essays": n_docs}},
                   "dedup": {"seconds": 0.2, "counts": {"pairs": n_pairs}}},
        "quarantine": {"count": nq, "by_reason": {"binary": nq} if nq else {}},
        "dedup": {"shingle": "char", "ngram": 5, "num_perm": 128, "threshold": 0.5, "bands": 16,
                  "rows": 8},
        "removals_per_rule": {"watermark.source_bracket": 3, "normalize.punct": 2},
        "redactions": {"pii_student_id": 1},
        "version_bump": "initial" if previous_version is None else "minor",
        "previous_version": previous_version,
    }
    (rdir / "MANIFEST.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True),
                                        encoding="utf-8")
    if register:
        register_release(Path(releases_root), version, manifest)
    return rdir
