"""Intermediate shards as Parquet: a batch of essays (raw slice, edits, clean text, sections).

Between fused passes the engine persists each shard's essays here, content-addressed under
``<out>/.work``.  Parquet, not JSON: columns are built from the edits' tuples without one Python
dict per edit, and a reader can take one row group at a time, so a pass over a huge shard holds
one row group, not the shard.  Writer options: :data:`WRITE_OPTIONS`.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from corpuspipe.core.edits import Edit, TrackedText
from corpuspipe.core.io import temp_name
from corpuspipe.core.records import Essay, SectionRow

EDIT = pa.struct([
    ("raw_start", pa.int64()), ("raw_end", pa.int64()), ("before", pa.string()), ("after", pa.string()),
    ("stage", pa.string()), ("rule", pa.string()), ("clean_start", pa.int64()), ("clean_end", pa.int64()),
])
SECTION = pa.struct([
    ("path", pa.string()), ("level", pa.int8()), ("ordinal", pa.int32()), ("marker", pa.string()),
    ("marker_family", pa.string()), ("heading", pa.string()), ("char_start", pa.int32()), ("char_end", pa.int32()),
    ("parent_path", pa.string()),
])
SCHEMA = pa.schema([
    ("source_path", pa.string()), ("source_sha256", pa.string()), ("essay_index", pa.int32()),
    ("title", pa.string()), ("author", pa.string()), ("date", pa.string()), ("url", pa.string()),
    ("crawled_at", pa.string()), ("script", pa.string()), ("trad_ratio", pa.float64()),
    ("flags", pa.list_(pa.string())), ("stats", pa.string()), ("signals", pa.string()),
    ("raw", pa.large_string()), ("base", pa.int64()), ("text", pa.large_string()),
    ("edits", pa.list_(EDIT)), ("sections", pa.list_(SECTION)),
])
_SCALARS = ("source_path", "source_sha256", "essay_index", "title", "author", "date", "url", "crawled_at", "script",
            "trad_ratio")
_EDIT_FIELDS = Edit._fields
_SECTION_FIELDS = [f.name for f in SECTION]
assert tuple(_SECTION_FIELDS) == SectionRow._fields[1:]
_new_row = tuple.__new__  # a NamedTuple from a tuple without its Python-level __new__
# How the intermediate files are written: these files are written once per pass and read once or
# twice, so what counts is CPU, not size.  Measured on the pass-0 and pass-1 files of the 14.5 MB
# crawl100 slice (6 files, 29 MB of Arrow data; CPU s, best of 5, write / read / size):
#   zstd 1, defaults (before)                      0.244 / 0.100 / 32.3 MB
#   zstd 1, dictionary for small columns, no stats 0.222 / 0.088 / 32.1 MB
#   lz4, dictionary for small columns, no stats    0.171 / 0.052 / 44.9 MB   <- this
#   zstd 1, raw and text uncompressed              0.040 / 0.038 / 66.2 MB
# lz4 takes a third off the files' CPU for 39 % more disk; no compression of the text would take
# four fifths for twice the disk.  No statistics: no reader filters these files by value (min/max
# of every raw text were computed for nothing).  Dictionary pages only for the columns of a few
# repeated values; the text columns would fill a dictionary page before falling back.
_DICTIONARY_COLUMNS = ["source_path", "script", "flags.list.element", "edits.list.element.stage",
                       "edits.list.element.rule", "sections.list.element.path", "sections.list.element.level",
                       "sections.list.element.marker_family", "sections.list.element.parent_path"]
WRITE_OPTIONS = dict(compression="lz4", use_dictionary=_DICTIONARY_COLUMNS, write_statistics=False)
ROW_GROUP = 2048  # essays a row group: a reader's unit of memory
# ...and at most this many raw characters (unless one essay alone is longer).  2,048 essays of a
# compilation of reports are ~33M characters (~0.13 GB as raw and current str, and again as the
# Arrow copy and the watermark collect's rows): the 200 MB single file of issue 11 held all 3,951
# at once.  The cut changes the order of released rows (sorted by id within a row group) only
# where a group passes 8M characters: never for a crawl shard (512-1,024 files of ~7 KB, at most
# ~7 MB, so under 8M characters in any encoding) nor for the 20 MB compilation (6.7M characters).
GROUP_CHARS = 8_000_000


def cut_before(n_essays: int, n_chars: int, next_chars: int) -> bool:
    """Does a new row group start before the next essay?  (after ``ROW_GROUP`` essays, or when
    it would pass ``GROUP_CHARS`` raw characters; never before the first essay of a group).  The
    ingest reader and :class:`EssayWriter` cut by this one rule, so a later pass re-writing a
    group writes it as one row group again."""
    return n_essays > 0 and (n_essays >= ROW_GROUP or n_chars + next_chars > GROUP_CHARS)


def _list_of_structs(rows_per_essay: Sequence[Sequence[tuple]], fields: Sequence[str], struct: pa.StructType) -> pa.Array:
    """Per essay a list of tuples -> list<struct>: the rows transposed by one ``zip`` (in C), not an
    ``append`` per field and row (~6 % of a pass's CPU on the 100 MB crawl: ~400k edits)."""
    offsets = [0, *itertools.accumulate(map(len, rows_per_essay))]
    flat = [row for rows in rows_per_essay for row in rows]
    cols = list(zip(*flat)) if flat else [() for _ in fields]
    children = [pa.array(c, type=struct.field(i).type) for i, c in enumerate(cols)]
    values = pa.StructArray.from_arrays(children, fields=list(struct))
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)


def essays_table(essays: Sequence[Essay]) -> pa.Table:
    cols: dict[str, pa.Array] = {}
    for name in _SCALARS:
        cols[name] = pa.array([getattr(e, name) for e in essays], type=SCHEMA.field(name).type)
    cols["flags"] = pa.array([list(e.flags) for e in essays], type=SCHEMA.field("flags").type)
    cols["stats"] = pa.array([json.dumps(e.stats, sort_keys=True) if e.stats else "" for e in essays], pa.string())
    # JSON like stats: a handful of floats per essay; Python's float repr round-trips exactly
    cols["signals"] = pa.array([json.dumps(e.signals, sort_keys=True) if e.signals else "" for e in essays],
                               pa.string())
    cols["raw"] = pa.array([e.body.raw for e in essays], pa.large_string())
    cols["base"] = pa.array([e.body.base for e in essays], pa.int64())
    cols["text"] = pa.array([e.body.text for e in essays], pa.large_string())
    cols["edits"] = _list_of_structs([e.body.edits for e in essays], _EDIT_FIELDS, EDIT)
    secs = [[s[1:] for s in (e.sections or ())] for e in essays]  # a SectionRow's fields after doc_id
    cols["sections"] = _list_of_structs(secs, _SECTION_FIELDS, SECTION)
    sectioned = pa.array([e.sections is not None for e in essays], pa.bool_())
    table = pa.Table.from_arrays([cols[f.name] for f in SCHEMA], schema=SCHEMA)
    return table.append_column("sectioned", sectioned)


def _struct_rows(arr: pa.ListArray, fields: Sequence[str]) -> list[list[tuple]]:
    """list<struct> column -> per row, a list of tuples (column-wise: no dict per value)."""
    flat = arr.flatten()
    child_cols = [flat.field(i).to_pylist() for i in range(len(fields))]
    tuples = list(zip(*child_cols)) if child_cols else []
    offs = arr.offsets.to_pylist()
    return [tuples[offs[i]:offs[i + 1]] for i in range(len(arr))]


def table_essays(table: pa.Table) -> list[Essay]:
    cols = {name: table.column(name).to_pylist() for name in (*_SCALARS, "flags", "stats", "signals", "raw", "base", "text",
                                                               "sectioned")}
    edits = _struct_rows(table.column("edits").combine_chunks(), _EDIT_FIELDS)
    secs = _struct_rows(table.column("sections").combine_chunks(), _SECTION_FIELDS)
    out = []
    for i in range(table.num_rows):
        body = TrackedText(cols["raw"][i], cols["base"][i], [Edit(*t) for t in edits[i]], text=cols["text"][i])
        e = Essay(body=body, **{k: cols[k][i] for k in _SCALARS})
        e.flags = list(cols["flags"][i])
        e.stats = json.loads(cols["stats"][i]) if cols["stats"][i] else {}
        e.signals = json.loads(cols["signals"][i]) if cols["signals"][i] else {}
        if cols["sectioned"][i]:
            head = (e.doc_id,)
            e.sections = [_new_row(SectionRow, head + t) for t in secs[i]]
        out.append(e)
    return out


class EssayWriter:
    """A shard file written group by group (atomically: temp name, renamed on ``close``), so a pass
    never holds more than one group's Arrow copy of its essays.

    Whatever fails -- opening the file, a group, the footer on ``close`` -- the temp file is gone
    afterwards: a full disk (ENOSPC) used to fail ``abort``'s own ``close`` first, so its ``unlink``
    never ran and pass 0's ``.tmp`` kept the disk full (issue 24 #7)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(temp_name(self.path.name))
        try:
            self.writer = pq.ParquetWriter(self.tmp, SCHEMA.append(pa.field("sectioned", pa.bool_())), **WRITE_OPTIONS)
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise
        self.rows = 0

    def write(self, essays: Sequence[Essay]) -> None:
        start = chars = 0
        for i, e in enumerate(essays):
            size = len(e.body.raw)
            if cut_before(i - start, chars, size):
                self._group(essays[start:i])
                start, chars = i, 0
            chars += size
        if len(essays) > start:
            self._group(essays[start:])

    def _group(self, chunk: Sequence[Essay]) -> None:
        self.writer.write_table(essays_table(chunk), row_group_size=ROW_GROUP)
        self.rows += len(chunk)

    def close(self) -> None:
        try:
            self.writer.close()
            self.tmp.replace(self.path)
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise

    def abort(self) -> None:
        """Drop the partial file; never raises for the writer's own failure (the caller is already
        handling the error that made it abort)."""
        try:
            self.writer.close()
        except Exception:  # noqa: BLE001 -- e.g. ENOSPC again while writing the footer
            pass
        finally:
            self.tmp.unlink(missing_ok=True)


def write_essays(path: Path, essays: Sequence[Essay]) -> None:
    """Write a shard's essays, one row group of ``ROW_GROUP`` essays at a time."""
    w = EssayWriter(path)
    try:
        w.write(essays)
    except BaseException:
        w.abort()
        raise
    w.close()


def iter_essays(path: Path) -> Iterator[list[Essay]]:
    """The essays of a shard file, one row group at a time."""
    pf = pq.ParquetFile(path)
    for i in range(pf.num_row_groups):
        yield table_essays(pf.read_row_group(i))


def read_essays(path: Path) -> list[Essay]:
    return [e for group in iter_essays(path) for e in group]
