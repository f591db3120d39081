"""Release rows, built from the build's files and written as parts, one task per part.

Which tables exist and where their rows come from is declared once, in
:data:`corpuspipe.core.schemas.RELEASE_TABLES`; this module makes the rows of each origin:

* ``shard`` tables (documents, sections, edits) from the last pass's shard files, one row group of a
  shard at a time (sorted by id within it), with the columns stages supply by join
  (``ReleaseInputs.joins``: the dedup clusters) looked up by id;
* ``stage`` tables (duplicates) copied from the files stages wrote (``ReleaseInputs.rows``);
* the quarantine from the build's entries.

:func:`write_part` is the unit of parallel work (``core.stage.Tasks``): it writes one part of its
tables, reads them back to check them and gather their statistics
(:func:`corpuspipe.release.validate.read_back`), and returns the part's entries for the manifest.
Everything it needs comes in its one argument (paths as strings, options as plain values), so a
pool worker, a Prefect task or a Dask worker runs it the same way, and equal arguments give equal
bytes.  Rows are in a deterministic order without a global sort: parts in shard order, shard by
shard within a part, by id within a shard's row group.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpuspipe.core import schemas
from corpuspipe.core.dates import parse_date, parse_timestamp
from corpuspipe.core.io import file_sha256
from corpuspipe.core.records import QuarantineEntry, text_sha256
from corpuspipe.release.digest import TableDigest
from corpuspipe.release.layout import part_path
from corpuspipe.release.manifest import parquet_metadata

ROW_GROUP_BYTES = 32 << 20  # in-memory size at which pending rows are written as a row group
#: Shard-file bytes (the last pass's essays files) per part of the shard tables.  A part is one task
#: and one file per table: the 100 MB crawl's 25 shards (120 MB of shard files) make 6 parts of
#: ~6 MB of documents each, enough tasks for two workers; 1 GB makes ~50.  Groups are consecutive
#: shards, so an unchanged prefix of shards keeps its parts' bytes.
PART_SHARD_BYTES = 24 << 20
# The shard columns a release row is made of.  Not ``raw`` (the decoded source, as large as the text)
# nor ``stats``/``base``: reading them was half of the writer's Parquet decoding and memory.
SHARD_COLUMNS = ("source_path", "source_sha256", "essay_index", "title", "author", "date", "url", "crawled_at",
                 "script", "trad_ratio", "flags", "signals", "text", "edits", "sections")


# -- grouping ----------------------------------------------------------------------------------
def shard_groups(essays_files: Sequence[str], target: int | None = None) -> list[list[str]]:
    """Consecutive shard files, cut once a group holds ``target`` bytes (:data:`PART_SHARD_BYTES`):
    one group per part.  At least one group (an empty release still has every table, with no rows)."""
    target = PART_SHARD_BYTES if target is None else target
    groups: list[list[str]] = [[]]
    size = 0
    for path in essays_files:
        if groups[-1] and size >= target:
            groups.append([])
            size = 0
        groups[-1].append(path)
        size += os.path.getsize(path)
    return groups


# -- writing one part --------------------------------------------------------------------------
class TableStream:
    """One part written row group by row group, with fixed options (equal rows, equal bytes)."""

    def __init__(self, root: Path, table: str, index: int, opts: Mapping[str, Any]):
        self.name, self.index = table, index
        self.rel = part_path(table, index)
        self.path = Path(root) / self.rel
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.schema = schemas.TABLES[table].with_metadata(
            parquet_metadata(opts["config_hash"], opts["dataset"], opts["version"], table))
        compression = None if opts["compression"] == "none" else opts["compression"]
        self.writer = pq.ParquetWriter(
            self.path, self.schema, compression=compression,
            compression_level=opts["compression_level"] if compression in ("zstd", "gzip") else None,
            use_dictionary=True, write_statistics=True, store_schema=True, data_page_version="2.0", version="2.6",
        )
        self.row_group = opts["row_group_size"]
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
        """The part's manifest entry (its row digest included)."""
        self._flush(final=True)
        self.writer.close()
        return {"path": self.rel, "table": self.name, "part": self.index, "rows": self.rows,
                "bytes": self.path.stat().st_size, "sha256": file_sha256(self.path), "digest": self.digest.hexdigest()}

    def abort(self) -> None:
        try:
            self.writer.close()
        except Exception:  # noqa: BLE001  (already failing; keep the first error)
            pass


def write_part(job: Mapping[str, Any]) -> dict:
    """One part of the tables of one origin (see the module docstring), written, read back and
    checked.  Returns ``{"index", "outputs": [manifest entries], "report": validate.PartReport}``."""
    from corpuspipe.release import validate

    index, root, names = int(job["index"]), Path(job["dir"]), list(job["tables"])
    streams = {name: TableStream(root, name, index, job["opts"]) for name in names}
    try:
        for tables in _part_rows(job):
            for name, t in tables.items():
                streams[name].add(t)
        outputs = [streams[n].close() for n in names]
    except BaseException:
        for s in streams.values():
            s.abort()
        raise
    report = validate.read_back({o["table"]: root / o["path"] for o in outputs}, job["opts"]["version"],
                                job.get("wanted") or {})
    return {"index": index, "outputs": outputs, "report": report}


def _part_rows(job: Mapping[str, Any]) -> Iterable[dict[str, pa.Table]]:
    """The part's rows as ``{table: rows}`` batches, in release order."""
    origin = job["origin"]
    if origin == schemas.FROM_SHARDS:
        joins = {name: load_join(files, name) for name, files in (job.get("joins") or {}).items()}
        for path in job["shards"]:
            pf = pq.ParquetFile(path)
            for i in range(pf.num_row_groups):
                yield shard_tables(pf.read_row_group(i, columns=list(SHARD_COLUMNS)), joins)
    elif origin == schemas.FROM_STAGES:
        (name,) = job["tables"]
        for path in job["files"]:
            if Path(path).is_file():
                pf = pq.ParquetFile(path)
                for i in range(pf.num_row_groups):
                    yield {name: pf.read_row_group(i)}
    elif origin == schemas.FROM_QUARANTINE:
        yield {"quarantine": quarantine_table(QuarantineEntry(**q) for q in job["rows"])}
    else:
        raise ValueError(f"unknown table origin {origin!r}")


# -- joins: columns stages supply by id ---------------------------------------------------------------
def fixed_bytes(arr: pa.Array, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Strings as a numpy ``S<width>`` array (NUL-padded: ids are ASCII, so byte order is the
    strings' order), built from the Arrow buffers without a Python object per value; and a mask of
    the values that fit (a longer string is never equal to a key of that width).

    Filled one byte column at a time: each step holds arrays of ``len(arr)``, never of the total
    bytes.  Scattering all bytes at once (index arrays of int64 per byte) took ~290 MB for a moment
    to key the 424,440 clustered section ids of the 1 GB crawl, in every write task: the largest
    part of a write task's 590 MB peak (now ~300 MB)."""
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
        starts = offs[:-1]
        for col in range(min(width, int(lens.max()))):
            has = np.flatnonzero(lens > col)
            out[has, col] = data[starts[has] + col]
    return out.view(f"S{width}").reshape(n), fits


class Join:
    """Columns of one table that stages supply for some of its rows (``ReleaseInputs.joins``: the
    dedup stage's cluster membership of clustered ids only), looked up by the table's id.

    The ids sit in one sorted numpy ``S<width>`` array and a batch is joined by binary search
    (``np.searchsorted``): O(batch · log rows) per batch.  ``pc.index_in`` (before) built a hash
    set of *all* clustered ids for every batch, O(batches · clusters): quadratic in corpus size.
    Memory is the joined ids only (100 MB crawl: 42,647 section and 6,575 document rows, 4 MB;
    ~10x that at 1 GB), never the corpus.  A row no file names gets the table's
    ``join_defaults`` (its own id as cluster, no duplicate_of, cluster size 1)."""

    def __init__(self, files: Sequence[str], table: str):
        spec = schemas.TABLE_SPECS[table]
        self.defaults = dict(spec.join_defaults)
        types = {f.name: f.type for f in spec.schema}
        parts = []
        for f in files:
            if f and Path(f).is_file():
                cols = [c for c in self.defaults if c in pq.read_schema(f).names]
                if cols:
                    parts.append(pq.read_table(f, columns=["id", *cols]))
        self.columns = [c for c in self.defaults if parts and all(c in p.column_names for p in parts)]
        ids = pa.chunked_array([p["id"].cast(pa.string()) for p in parts], pa.string()).combine_chunks() \
            if parts else pa.array([], pa.string())
        self.width = int(pc.max(pc.binary_length(ids)).as_py() or 1) if len(ids) else 1
        keys, _ = fixed_bytes(ids, self.width)
        order = np.argsort(keys, kind="stable")
        self.keys = keys[order]
        take = pa.array(order, pa.int64())
        self.values = {c: pa.chunked_array([p[c].cast(types[c]) for p in parts], types[c]).combine_chunks().take(take)
                       for c in self.columns}
        self.types = types

    def _default(self, column: str, ids: pa.Array) -> pa.Array:
        value = self.defaults[column]
        if value == schemas.SELF:
            return ids.cast(self.types[column])
        return pa.array([value] * len(ids), self.types[column]) if value is not None \
            else pa.nulls(len(ids), self.types[column])

    def lookup(self, ids: pa.Array) -> dict[str, pa.Array]:
        """Every joinable column for ``ids``, as Arrow arrays in the order of ``ids``."""
        out = {c: self._default(c, ids) for c in self.defaults}
        n = len(ids)
        if not n or not len(self.keys):
            return out
        q, fits = fixed_bytes(ids, self.width)
        pos = np.minimum(np.searchsorted(self.keys, q), len(self.keys) - 1)
        hit = fits & (self.keys[pos] == q)
        if hit.any():
            where, mask = pa.array(pos, pa.int64()), pa.array(hit)
            for c in self.columns:
                out[c] = pc.if_else(mask, self.values[c].take(where), out[c])
        return out


_JOINS: dict[tuple, Join] = {}


def load_join(files: Sequence[str], table: str) -> Join:
    """The :class:`Join` of ``table`` from ``files``, loaded once per process: a pool worker runs
    many parts, and every part of a table looks up the same files (their size and mtime are part
    of the key, so a rewritten file is read again).  The one place a task gets its join rows: to
    hand a task only its shards' rows, change this."""
    key = (table, *((f, *_stamp(f)) for f in files))
    if key not in _JOINS:
        if len(_JOINS) >= 4:
            _JOINS.clear()
        _JOINS[key] = Join(files, table)
    return _JOINS[key]


def _stamp(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
        return st.st_size, st.st_mtime_ns
    except OSError:
        return -1, -1


# -- rows of the shard tables ------------------------------------------------------------------------
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


def _in_schema(schema: pa.Schema, cols: Mapping[str, Any]) -> pa.Table:
    return pa.Table.from_arrays([cols[f.name].cast(f.type) for f in schema], schema=schema)


def _documents(shard: pa.Table, id_arr: pa.Array, texts: list[str], join: Join | None) -> pa.Table:
    text_col = shard["text"].cast(pa.string())
    joined = (join or _NO_JOIN["documents"]).lookup(id_arr)
    docs = {
        "doc_id": id_arr,
        **{k: shard[k] for k in ("source_path", "source_sha256", "essay_index", "title", "author", "url", "script")},
        "date": pa.array([parse_date(x) for x in shard["date"].to_pylist()], pa.date32()),
        "crawled_at": pa.array([parse_timestamp(x) for x in shard["crawled_at"].to_pylist()],
                               pa.timestamp("ms", tz="UTC")),
        "text": text_col,
        "text_sha256": pa.array([text_sha256(x) for x in texts], pa.string()),
        "trad_ratio": shard["trad_ratio"],
        "char_count": pc.utf8_length(text_col),
        "section_count": pc.list_value_length(shard["sections"]),
        "edit_count": pc.list_value_length(shard["edits"]),
        **joined,
        "flags": pa.array([sorted(f) for f in shard["flags"].to_pylist()], pa.list_(pa.string())),
        **_signal_columns(shard),
    }
    return _in_schema(schemas.DOCUMENTS, docs)


def _edits(shard: pa.Table, id_arr: pa.Array) -> pa.Table:
    edits_col = shard["edits"].combine_chunks()
    parent = pc.list_parent_indices(edits_col)
    flat = edits_col.flatten()
    ed = {
        "doc_id": id_arr.take(parent), "source_path": shard["source_path"].combine_chunks().take(parent),
        "essay_index": shard["essay_index"].combine_chunks().take(parent),
        **{k: flat.field(k) for k in ("stage", "rule", "raw_start", "raw_end", "clean_start", "clean_end", "before",
                                       "after")},
    }
    edits = _in_schema(schemas.EDITS, ed)
    return edits.sort_by([("doc_id", "ascending"), ("raw_start", "ascending"), ("raw_end", "ascending")])


def _sections(shard: pa.Table, id_arr: pa.Array, texts: list[str], join: Join | None) -> pa.Table:
    secs_col = shard["sections"].combine_chunks()
    sparent_arr = pc.list_parent_indices(secs_col)
    sflat = secs_col.flatten()
    starts = sflat.field("char_start").to_pylist()
    ends = sflat.field("char_end").to_pylist()
    sec_doc = id_arr.take(sparent_arr)
    sid_arr = section_ids(sec_doc, sflat.field("path"))
    parent_path = sflat.field("parent_path")
    parent_path = pc.if_else(pc.equal(parent_path, ""), pa.nulls(len(parent_path), pa.string()), parent_path)
    parent_ids = section_ids(sec_doc, parent_path)
    sec = {
        "section_id": sid_arr,
        "doc_id": sec_doc,
        **{k: sflat.field(k) for k in ("path", "level", "ordinal", "marker", "marker_family", "heading", "char_start",
                                       "char_end")},
        "text": pa.array([texts[d][a:b] for d, a, b in zip(sparent_arr.to_pylist(), starts, ends)], pa.string()),
        "parent_id": parent_ids,
        # a leaf is nobody's parent in its document (ids carry the document, so one batch-wide set)
        "is_leaf": pc.invert(pc.is_in(sid_arr, value_set=pc.drop_null(parent_ids))),
        **(join or _NO_JOIN["sections"]).lookup(sid_arr),
    }
    return _in_schema(schemas.SECTIONS, sec).sort_by([("section_id", "ascending")])


def shard_tables(shard: pa.Table, joins: Mapping[str, Join]) -> dict[str, pa.Table]:
    """The documents, sections and edits rows of one row group of a shard file, in release order
    (by id within the batch).  Columnar: edits (tens per document) never become Python objects."""
    from corpuspipe.core.records import make_doc_id

    ids = [make_doc_id(s, i) for s, i in zip(shard["source_sha256"].to_pylist(), shard["essay_index"].to_pylist())]
    order = sorted(range(len(ids)), key=ids.__getitem__)
    shard = shard.take(pa.array(order, pa.int64()))
    id_arr = pa.array([ids[i] for i in order], pa.string())
    texts = shard["text"].to_pylist()
    return {"documents": _documents(shard, id_arr, texts, joins.get("documents")),
            "sections": _sections(shard, id_arr, texts, joins.get("sections")),
            "edits": _edits(shard, id_arr)}


_NO_JOIN = {name: Join([], name) for name in ("documents", "sections")}


def quarantine_table(entries: Iterable[QuarantineEntry]) -> pa.Table:
    rows = sorted(entries, key=lambda q: (q.path, q.line or 0, q.reason))
    cols = {f.name: pa.array([getattr(q, f.name) for q in rows], f.type) for f in schemas.QUARANTINE}
    return pa.Table.from_arrays([cols[f.name] for f in schemas.QUARANTINE], schema=schemas.QUARANTINE)
