"""Where a release keeps its tables, for the writer and every reader.

Layout (schema 3.0): every table is a folder of parts, ``<table>/part-NNNNN.parquet``, numbered
from 0 in row order, so one glob loads a table (``read_parquet('documents/*.parquet')`` in DuckDB,
``load_dataset("parquet", data_files="documents/*.parquet")``, Spark's ``read.parquet("documents")``).
The manifest's ``outputs`` list every part (path, table, part number, rows, bytes, sha256 and the
part's row digest).  Releases of schema 2.x had one ``<table>.parquet`` per table; every reader
still takes them (:func:`table_outputs`), so a new release can be compared with an old one.
"""

from __future__ import annotations

from typing import Any, Mapping


def part_path(table: str, index: int) -> str:
    """A part's path inside the release (``documents/part-00003.parquet``)."""
    return f"{table}/part-{index:05d}.parquet"


def table_glob(table: str) -> str:
    """The pattern that loads one table whole (the card's ``data_files``, DuckDB, Spark)."""
    return f"{table}/*.parquet"


def table_of(path: str) -> str | None:
    """The table a manifest output belongs to: ``documents/part-00000.parquet`` (3.x) or
    ``documents.parquet`` (2.x) -> ``documents``; anything else None."""
    if not path.endswith(".parquet"):
        return None
    head, sep, _tail = path.partition("/")
    return head if sep else path[: -len(".parquet")]


def table_outputs(manifest: Mapping[str, Any]) -> dict[str, list[dict]]:
    """table -> its parts' manifest entries, in part order (a 2.x release: one entry per table)."""
    out: dict[str, list[dict]] = {}
    for o in manifest.get("outputs", []):
        name = o.get("table") or table_of(str(o.get("path", "")))
        if name:
            out.setdefault(name, []).append(dict(o))
    for parts in out.values():
        parts.sort(key=lambda o: (int(o.get("part", 0)), str(o["path"])))
    return dict(sorted(out.items()))


def table_rows(manifest: Mapping[str, Any]) -> dict[str, int]:
    """Rows per table, summed over its parts."""
    return {name: sum(int(o.get("rows", 0)) for o in parts) for name, parts in table_outputs(manifest).items()}
