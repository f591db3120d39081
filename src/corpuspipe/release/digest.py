"""Digests of a release table's rows (``MANIFEST.json``'s ``table_digests``), from which versions
are decided: equal rows in equal order give an equal digest, whatever the file bytes.

A part's digest is computed while the part is written (:class:`TableDigest`, fed batch by batch:
no second read).  A table's digest is :func:`combine` of its parts' digests, in part order, with
the row count: the parts are written in parallel, and a streaming digest cannot be continued from
one process to the next, so the release digest is a digest of digests.  Consequence: the same rows
cut into other parts (a different grouping of shards) count as a row change (a minor version),
never as "unchanged".
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def logical_type(t: pa.DataType) -> str:
    """Type name with the physical width of offsets erased (polars writes large_string, pyarrow string)."""
    if pa.types.is_dictionary(t):
        return logical_type(t.value_type)
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return "binary"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t):
        return f"list<{logical_type(t.value_type)}>"
    if pa.types.is_struct(t):
        inner = ",".join(f"{t.field(i).name}:{logical_type(t.field(i).type)}" for i in range(t.num_fields))
        return f"struct<{inner}>"
    return str(t)


class _ColumnHasher:
    """Digest of one column's logical values, fed batch by batch: equal values in equal order give
    an equal digest however the rows were cut into batches (each kind of buffer goes to its own
    running hash, so no framing depends on batch sizes).  Nulls count, chunking and offset width do not."""

    def __init__(self, t: pa.DataType):
        self.type = t
        self.logical = logical_type(t)
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
        elif pa.types.is_null(t):
            return  # only the validity (all null) counts
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
    """sha256 of a table's rows in row order, computed while it is written (see _ColumnHasher).
    Columns are taken in name order, so reordering columns is not a change; schema metadata never counts."""

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


def table_digest(table: pa.Table) -> str:
    """:class:`TableDigest` of an in-memory table (one part)."""
    d = TableDigest(table.schema)
    d.update(table)
    return d.hexdigest()


def file_digest(path: Path) -> str:
    """:class:`TableDigest` of a written part, read one row group at a time."""
    pf = pq.ParquetFile(path)
    d = TableDigest(pf.schema_arrow)
    for i in range(pf.num_row_groups):
        d.update(pf.read_row_group(i))
    return d.hexdigest()


def combine(parts: Sequence[tuple[int, str]]) -> str:
    """A table's digest from its parts' ``(rows, digest)`` in part order (see the module docstring)."""
    h = hashlib.sha256(f"rows={sum(n for n, _ in parts)}\nparts={len(parts)}\n".encode())
    for n, d in parts:
        h.update(f"{n}\t{d}\n".encode())
    return h.hexdigest()
