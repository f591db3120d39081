"""The release contract, checked on the written files: part by part, then a few global checks.

Each part is read back once, by the task that wrote it (:func:`read_back`): its schema and
version, every section's text against its document's slice, every edit's ``after`` against the
clean text, ids sorted within their document, ``a_id < b_id`` -- and, in the same walk, the
part's statistics (:class:`corpuspipe.release.stats.PartStats`).  Documents, sections and edits
of a part are in the same document order, so the three files are walked in step: memory is one
row group of each.

What needs the whole release is checked in the assembling process on compact arrays the parts
return: ``doc_id`` unique, and every ``cluster_id`` a document (:func:`check_ids`): fixed-width
byte arrays, ~20 bytes a document, not Python sets of strings (two sets of every id were most of
validation's +940 MB on the 1.3 GB crawl).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpuspipe.core import schemas
from corpuspipe.release.layout import table_outputs
from corpuspipe.release.stats import DOC_COLUMNS, EDIT_COLUMNS, PAIR_COLUMNS, SECTION_COLUMNS, PartStats
from corpuspipe.release.tables import fixed_bytes
from corpuspipe.release.versioning import MANIFEST_NAME, content_hash, read_manifest


class ReleaseInvalid(Exception):
    """A written release breaks its own contract."""


# -- one part -------------------------------------------------------------------------------------
def _groups(path: Path, columns: Sequence[str]) -> Iterator[pa.Table]:
    """Row groups, decoded one at a time.  ``ParquetFile.iter_batches`` read ahead: iterating the
    1.3 GB crawl's documents (doc_id, text) with it peaked at 550 MB RSS, row group by row group
    at 294 MB (pyarrow 26, jemalloc pool)."""
    pf = pq.ParquetFile(path)
    cols = [c for c in columns if c in pf.schema_arrow.names]
    for i in range(pf.num_row_groups):
        yield pf.read_row_group(i, columns=cols)


def _file_problems(table: str, path: Path, version: str | None) -> list[str]:
    name = path.name if path.parent.name != table else f"{table}/{path.name}"
    if not path.is_file():
        return [f"{name}: missing"]
    schema = pq.read_schema(path)
    problems = []
    if not schema.equals(schemas.TABLES[table], check_metadata=False):
        problems.append(f"{name}: schema differs from schemas.{table.upper()}")
    if version is not None and (schema.metadata or {}).get(b"corpuspipe.version", b"").decode() != version:
        problems.append(f"{name}: version metadata differs from the manifest")
    return problems


VALIDATE_BATCH = 4096  # rows turned into Python values at a time while validating


class _Rows:
    """Rows of one table of a part as tuples, one row group at a time, with one row of look-ahead;
    ``on_group`` sees every row group (the statistics).  Rows become Python values
    ``VALIDATE_BATCH`` at a time: a row group (50,000 sections, or 32 MB of documents) as Python
    strings cost the validating process ~200 MB on the 100 MB crawl."""

    def __init__(self, path: Path | None, columns: Sequence[str], row: Sequence[str], on_group):
        self.row = list(row)
        self.groups = _groups(path, list(dict.fromkeys([*row, *columns]))) if path is not None else iter(())
        self.on_group = on_group
        self.batches: Iterator[pa.RecordBatch] = iter(())
        self.buf: Iterator[tuple] = iter(())
        self.next: tuple | None = None
        self._advance()

    def _advance(self) -> None:
        while True:
            self.next = next(self.buf, None)
            if self.next is not None:
                return
            batch = next(self.batches, None)
            if batch is None:
                t = next(self.groups, None)
                if t is None:
                    return
                self.on_group(t)
                self.batches = iter(t.select(self.row).to_batches(max_chunksize=VALIDATE_BATCH))
                continue
            self.buf = zip(*(batch.column(c).to_pylist() for c in self.row))

    def take(self) -> tuple:
        row = self.next
        self._advance()
        return row


def _walk_documents(files: Mapping[str, Path], st: PartStats) -> tuple[list[str], list[pa.Array], list[pa.Array]]:
    """Sections and edits against their documents' texts, in step; the documents' ids and the
    ids their members name as cluster, for :func:`check_ids`."""
    problems: list[str] = []
    ids: list[pa.Array] = []
    named: list[pa.Array] = []

    def on_docs(t: pa.Table) -> None:
        st.documents(t)
        ids.append(t["doc_id"].combine_chunks())
        member = pc.fill_null(pc.not_equal(t["cluster_id"], t["doc_id"]), False)
        named.append(t["cluster_id"].filter(member).combine_chunks())

    docs = _Rows(files["documents"], DOC_COLUMNS, ("doc_id", "text"), on_docs)
    secs = _Rows(files.get("sections"), SECTION_COLUMNS,
                 ("section_id", "doc_id", "char_start", "char_end", "text"), st.sections)
    edits = _Rows(files.get("edits"), EDIT_COLUMNS, ("doc_id", "clean_start", "clean_end", "after"), st.edit_rows)
    bad_sec = bad_edit = False
    while docs.next is not None:
        did, text = docs.take()
        last_sid = ""
        while secs.next is not None and secs.next[1] == did:
            sid, _, s, e, t = secs.take()
            if not bad_sec and sid <= last_sid:
                problems.append(f"sections: section_id {sid} not unique and sorted within its document")
                bad_sec = True
            elif not bad_sec and text[s:e] != t:
                problems.append(f"sections: text of a section in {did} is not the document slice [{s}:{e}]")
                bad_sec = True
            last_sid = sid
        while edits.next is not None and edits.next[0] == did:
            _, cs, ce, after = edits.take()
            if not bad_edit and text[cs:ce] != after:
                problems.append(f"edits: an edit of {did} does not match the document text at [{cs}:{ce}]")
                bad_edit = True
    if secs.next is not None and not bad_sec:
        problems.append(f"sections: a section of {secs.next[1]} is not in its document's place (or has no document)")
    if edits.next is not None and not bad_edit:
        problems.append(f"edits: an edit of {edits.next[0]} is not in its document's place (or has no document)")
    for rest in (secs, edits):  # the statistics see every row group
        while rest.next is not None:
            rest.take()
    return problems, ids, named


def read_back(files: Mapping[str, Path], version: str | None, wanted: Mapping[str, Sequence[str]] | None = None
              ) -> dict[str, Any]:
    """Check one part (``{table: path}``; documents, sections and edits of one part go together)
    and take its statistics.  Returns ``{"problems", "stats", "ids"}``: ``ids`` are the sorted
    fixed-width ``doc_id`` bytes and the cluster ids members name (for :func:`check_ids`)."""
    problems: list[str] = []
    for table, path in files.items():
        problems += _file_problems(table, Path(path), version)
    st = PartStats(wanted)
    ids = {"doc_id": np.zeros(0, "S1"), "cluster_id": np.zeros(0, "S1")}
    if problems:
        return {"problems": problems, "stats": st.result(), "ids": ids}
    if "documents" in files:
        found, doc_ids, named = _walk_documents({k: Path(v) for k, v in files.items()}, st)
        problems += found
        ids = {"doc_id": _sorted_bytes(doc_ids), "cluster_id": np.unique(_sorted_bytes(named))}
        if len(ids["doc_id"]) > 1 and (ids["doc_id"][1:] == ids["doc_id"][:-1]).any():
            dup = ids["doc_id"][1:][ids["doc_id"][1:] == ids["doc_id"][:-1]][0]
            problems.append(f"documents: doc_id {dup.decode()} not unique")
    if "duplicates" in files:
        for t in _groups(Path(files["duplicates"]), PAIR_COLUMNS):
            st.duplicate_rows(t)
            if not pc.all(pc.less(t["a_id"], t["b_id"])).as_py() and t.num_rows:
                problems.append("duplicates: a_id < b_id violated")
    if "quarantine" in files:
        for t in _groups(Path(files["quarantine"]), ["reason"]):
            st.quarantine_rows(t)
    return {"problems": problems, "stats": st.result(), "ids": ids}


def _sorted_bytes(arrays: Sequence[pa.Array]) -> np.ndarray:
    arr = pa.chunked_array(arrays, pa.string()).combine_chunks() if arrays else pa.array([], pa.string())
    width = int(pc.max(pc.binary_length(arr)).as_py() or 1) if len(arr) else 1
    return np.sort(fixed_bytes(arr, width)[0])


# -- the whole release -----------------------------------------------------------------------------
def _widen(arrays: Sequence[np.ndarray]) -> np.ndarray:
    width = max([1] + [a.dtype.itemsize for a in arrays])
    return np.concatenate([a.astype(f"S{width}") for a in arrays]) if arrays else np.zeros(0, "S1")


def check_ids(reports: Sequence[Mapping[str, Any]]) -> list[str]:
    """doc_id unique over all parts and every cluster_id a doc_id, on the parts' sorted byte arrays."""
    ids = np.sort(_widen([r["ids"]["doc_id"] for r in reports]))
    problems: list[str] = []
    dup = ids[1:][ids[1:] == ids[:-1]]
    if len(dup):
        problems.append(f"documents: doc_id {dup[0].decode()} not unique")
    clusters = np.unique(_widen([r["ids"]["cluster_id"] for r in reports]))
    if len(clusters):
        width = max(ids.dtype.itemsize, clusters.dtype.itemsize)
        ids, clusters = ids.astype(f"S{width}"), clusters.astype(f"S{width}")
        pos = np.minimum(np.searchsorted(ids, clusters), max(len(ids) - 1, 0))
        missing = clusters[ids[pos] != clusters] if len(ids) else clusters
        if len(missing):
            problems.append(f"documents: cluster_id {missing[0].decode()} is not a document")
    return problems


def part_files(release_dir: Path, manifest: Mapping[str, Any]) -> list[dict[str, Path]]:
    """The release's parts as :func:`read_back` takes them: the shard tables' parts of one number
    together (they cover the same shards), every other part alone; in part order."""
    outs = table_outputs(manifest)
    shard = [t.name for t in schemas.RELEASE_TABLES if t.origin == schemas.FROM_SHARDS]
    groups: dict[int, dict[str, Path]] = {}
    for name in shard:
        for o in outs.get(name, []):
            groups.setdefault(int(o.get("part", 0)), {})[name] = Path(release_dir) / o["path"]
    rest = [{name: Path(release_dir) / o["path"]} for name, parts in outs.items() if name not in shard for o in parts]
    return [groups[i] for i in sorted(groups)] + rest


def first_pairs(paths: Sequence[Path]) -> dict[str, list[str]]:
    """The ids of the first pairs of each level in ``duplicates`` (the report shows their texts)."""
    from corpuspipe.release.stats import CLUSTER_PAIRS_SHOWN, LEVELS

    st = PartStats()
    for p in paths:
        for t in _groups(Path(p), PAIR_COLUMNS):
            st.duplicate_rows(t)
            if all(len(st.pairs["first"][lv]) >= CLUSTER_PAIRS_SHOWN for lv in LEVELS):
                break
    return {lv: sorted({i for r in rows for i in (r["a_id"], r["b_id"])}) for lv, rows in st.pairs["first"].items()}


def read_release(release_dir: Path, manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """:func:`read_back` of every part of a finished release, one after the other."""
    release_dir = Path(release_dir)
    dup = [release_dir / o["path"] for o in table_outputs(manifest).get("duplicates", [])]
    wanted = first_pairs([p for p in dup if p.is_file()])
    return [read_back(files, manifest.get("version"), wanted) for files in part_files(release_dir, manifest)]


def validate_release(release_dir: Path) -> dict[str, int]:
    """Re-read a release and check its contract part by part; return row counts per table or raise."""
    from corpuspipe.release.verify import check_files

    release_dir = Path(release_dir)
    if not (release_dir / MANIFEST_NAME).exists():
        raise ReleaseInvalid(f"{release_dir / MANIFEST_NAME}: missing")
    manifest = read_manifest(release_dir)
    problems = check_files(release_dir, manifest, tables_only=True)
    outs = table_outputs(manifest)
    for t in schemas.RELEASE_TABLES:
        if t.name not in outs:
            problems.append(f"{t.name}: missing from the manifest")
    for parts in outs.values():
        for o in parts:
            path = release_dir / o["path"]
            if path.is_file() and pq.read_metadata(path).num_rows != o.get("rows"):
                problems.append(f"{o['path']}: row count differs from the manifest")
    if manifest.get("content_hash") != content_hash(manifest["outputs"]):
        problems.append("MANIFEST.json: content_hash does not match outputs")
    if not problems:
        reports = read_release(release_dir, manifest)
        problems = [p for r in reports for p in r["problems"]] + check_ids(reports)
    if problems:
        raise ReleaseInvalid("; ".join(problems))
    return {name: sum(int(o["rows"]) for o in parts) for name, parts in outs.items()}
