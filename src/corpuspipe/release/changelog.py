"""What changed between two releases, row by row and column by column (CHANGELOG.md).

Rows are matched on each table's natural key with an Arrow hash join, so 100k-row tables diff in
well under a second.  Release tables are never read whole: both releases' rows are cut into parts
by a hash of their key (spilled as Arrow files), long strings are compared through a 64-bit hash,
and one part of each release is joined at a time — memory is a part, not two corpora.  Text is compared through its hash column
where the table has one (documents.text_sha256), otherwise directly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpuspipe.core import schemas
from corpuspipe.release.versioning import MANIFEST_NAME, atomic_write_text

CHANGELOG_NAME = "CHANGELOG.md"

# Natural keys: what identifies "the same row" in two releases.
NATURAL_KEYS: dict[str, list[str]] = {
    "documents": ["doc_id"],
    "sections": ["section_id"],
    "duplicates": ["level", "a_id", "b_id"],
    "edits": ["doc_id", "stage", "rule", "raw_start", "raw_end"],
    "quarantine": ["path", "line", "reason"],
}
# The column whose difference means "the text changed"; others count as metadata changes.
TEXT_COLUMNS: dict[str, str] = {"documents": "text_sha256", "sections": "text"}
# Columns never read because another column stands for them.
SKIP_COLUMNS: dict[str, set[str]] = {"documents": {"text"}}
MAX_EXAMPLES = 10


# --------------------------------------------------------------------------- reading


def _tables_in(release_dir: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(Path(release_dir).glob("*.parquet"))}


def _manifest(release_dir: Path) -> dict[str, Any]:
    path = Path(release_dir) / MANIFEST_NAME
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _schema_diff(sa: pa.Schema, sb: pa.Schema) -> dict[str, Any]:
    a_types = {f.name: f.type for f in sa}
    b_types = {f.name: f.type for f in sb}
    return {
        "added": [n for n in sb.names if n not in a_types],
        "removed": [n for n in sa.names if n not in b_types],
        "type_changed": [
            {"column": n, "from": str(a_types[n]), "to": str(b_types[n])}
            for n in sb.names
            if n in a_types and a_types[n] != b_types[n]
        ],
        "nullability_changed": [
            n for n in sb.names if n in a_types and sa.field(n).nullable != sb.field(n).nullable
        ],
    }


# --------------------------------------------------------------------------- keyed join


def _normalize_keys(t: pa.Table, keys: Sequence[str], key_types: Mapping[str, pa.DataType]) -> pa.Table:
    """Join-ready key columns: common types, and nulls made matchable (SQL joins never match NULL)."""
    cols: dict[str, pa.Array | pa.ChunkedArray] = {}
    for k in keys:
        col = t.column(k)
        if col.type != key_types[k]:
            col = col.cast(key_types[k])
        nulls = pc.is_null(col)
        cols[f"__null_{k}"] = nulls
        typ = col.type
        if pa.types.is_string(typ) or pa.types.is_large_string(typ):
            fill = pa.scalar("", typ)
        elif pa.types.is_integer(typ):
            fill = pa.scalar(0, typ)
        elif pa.types.is_floating(typ):
            fill = pa.scalar(0.0, typ)
        else:
            col = col.cast(pa.large_string())
            fill = pa.scalar("", pa.large_string())
        cols[f"__k_{k}"] = pc.fill_null(col, fill)
    out = pa.table(cols)
    return out.append_column("__occ", _occurrence(out))


def _occurrence(keys: pa.Table) -> pa.Array:
    """0 for the first row with a key, 1 for the second...: makes non-unique keys join one-to-one."""
    n = keys.num_rows
    if n == 0:
        return pa.array([], pa.int64())
    distinct = keys.group_by(keys.column_names).aggregate([]).num_rows
    if distinct == n:
        return pa.array(np.zeros(n, dtype=np.int64))
    order = pc.sort_indices(keys, sort_keys=[(c, "ascending") for c in keys.column_names]).to_numpy()
    srt = keys.take(order)
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for name in srt.column_names:
        col = srt.column(name)
        diff = pc.not_equal(col.slice(1), col.slice(0, n - 1)).to_numpy(zero_copy_only=False)
        change[1:] |= diff
    pos = np.arange(n)
    starts = np.maximum.accumulate(np.where(change, pos, 0))
    occ = np.empty(n, dtype=np.int64)
    occ[order] = pos - starts
    return pa.array(occ)


def _equal_mask(ca: pa.ChunkedArray | pa.Array, cb: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Element-wise equality where null == null; lists compared by length and joined items."""
    na = pc.is_null(ca).to_numpy(zero_copy_only=False)
    nb = pc.is_null(cb).to_numpy(zero_copy_only=False)
    t = ca.type
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        if pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type):
            la = pc.fill_null(pc.list_value_length(ca), 0).to_numpy(zero_copy_only=False)
            lb = pc.fill_null(pc.list_value_length(cb), 0).to_numpy(zero_copy_only=False)
            ja = pc.fill_null(pc.binary_join(ca, "\x1f"), "").to_numpy(zero_copy_only=False)
            jb = pc.fill_null(pc.binary_join(cb, "\x1f"), "").to_numpy(zero_copy_only=False)
            eq = (la == lb) & (ja == jb)
        else:
            eq = np.array([x == y for x, y in zip(ca.to_pylist(), cb.to_pylist())], dtype=bool)
    else:
        try:
            eq = pc.fill_null(pc.equal(ca, cb), False).to_numpy(zero_copy_only=False)
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
            eq = np.array([x == y for x, y in zip(ca.to_pylist(), cb.to_pylist())], dtype=bool)
    return np.where(na | nb, na & nb, eq)


def _key_strings(t: pa.Table, keys: Sequence[str], idx: np.ndarray, sort: bool = True) -> list[str]:
    if len(idx) == 0:
        return []
    sub = t.select(list(keys)).take(pa.array(idx))
    rows = zip(*(sub.column(k).to_pylist() for k in keys))
    out = ["/".join("∅" if v is None else str(v) for v in r) for r in rows]
    return sorted(out) if sort else out


def _key_types(keys: Sequence[str], sa: pa.Schema, sb: pa.Schema) -> dict[str, pa.DataType]:
    key_types = {}
    for k in keys:
        ta, tb = sa.field(k).type, sb.field(k).type
        key_types[k] = tb if ta == tb else (pa.large_string() if pa.types.is_string(ta) or pa.types.is_large_string(ta)
                                            else pa.int64() if pa.types.is_integer(ta) and pa.types.is_integer(tb)
                                            else pa.large_string())
    return key_types


def diff_table(name: str, a: pa.Table, b: pa.Table, keys: Sequence[str] | None = None) -> dict[str, Any]:
    """Rows added / removed / changed between two versions of one table, matched on `keys`."""
    keys = [k for k in (keys or NATURAL_KEYS.get(name) or schemas.SORT_KEYS.get(name) or [])
            if k in a.column_names and k in b.column_names]
    result: dict[str, Any] = {"key": keys, "rows_a": a.num_rows, "rows_b": b.num_rows}
    if not keys:  # nothing to match on: whole-table comparison only
        same = a.num_rows == b.num_rows and a.select(sorted(a.column_names)).equals(b.select(sorted(b.column_names)))
        result.update(added=max(0, b.num_rows - a.num_rows), removed=max(0, a.num_rows - b.num_rows),
                      changed=0 if same else min(a.num_rows, b.num_rows), unchanged=a.num_rows if same else 0,
                      matched_by="position", examples={})
        return result
    part = _diff_part(name, a, b, keys, _key_types(keys, a.schema, b.schema),
                      np.arange(a.num_rows, dtype=np.int64), np.arange(b.num_rows, dtype=np.int64))
    return _finish(result, [part])


def _diff_part(name: str, a: pa.Table, b: pa.Table, keys: Sequence[str], key_types: Mapping[str, pa.DataType],
               ga: np.ndarray, gb: np.ndarray) -> dict[str, Any]:
    """Counts and example candidates of one part of a table (all rows of a key are in the same part).
    ``ga``/``gb``: the rows' numbers in the whole tables (increasing), which choose the examples."""
    ka = _normalize_keys(a, keys, key_types).append_column("__ia", pa.array(np.arange(a.num_rows, dtype=np.int64)))
    kb = _normalize_keys(b, keys, key_types).append_column("__ib", pa.array(np.arange(b.num_rows, dtype=np.int64)))
    join_cols = [c for c in ka.column_names if c != "__ia"]
    joined = ka.join(kb, join_cols, join_type="full outer", coalesce_keys=True, use_threads=True)
    ia = pc.fill_null(joined.column("__ia"), -1).to_numpy(zero_copy_only=False)
    ib = pc.fill_null(joined.column("__ib"), -1).to_numpy(zero_copy_only=False)
    del joined, ka, kb
    has_a, has_b = ia >= 0, ib >= 0  # full outer join: the unmatched side is null
    removed_idx = np.sort(ia[has_a & ~has_b])
    added_idx = np.sort(ib[has_b & ~has_a])
    both = has_a & has_b
    pa_idx, pb_idx = ia[both], ib[both]
    order = np.argsort(pb_idx, kind="stable")
    pa_idx, pb_idx = pa_idx[order], pb_idx[order]

    text_col = TEXT_COLUMNS.get(name)
    value_cols = [c for c in b.column_names if c in a.column_names and c not in keys]
    any_diff = np.zeros(len(pa_idx), dtype=bool)
    text_diff = np.zeros(len(pa_idx), dtype=bool)
    changed_columns: dict[str, int] = {}
    ia_arr, ib_arr = pa.array(pa_idx), pa.array(pb_idx)
    for c in value_cols:
        ca, cb = a.column(c).take(ia_arr), b.column(c).take(ib_arr)
        if ca.type != cb.type:  # a retyped column (reported in the schema diff) still compares by value
            try:
                ca = ca.cast(cb.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue
        neq = ~_equal_mask(ca, cb)
        n = int(neq.sum())
        if n:
            changed_columns[c] = n
        any_diff |= neq
        if c == text_col:
            text_diff = neq
    if text_col is not None and text_col in value_cols:
        changed_mask, meta_mask = text_diff, any_diff & ~text_diff
    else:
        changed_mask, meta_mask = any_diff, np.zeros(len(pa_idx), dtype=bool)

    def candidates(t: pa.Table, g: np.ndarray, idx: np.ndarray) -> list[tuple[int, str]]:
        idx = idx[:MAX_EXAMPLES]  # local order is global order: the first rows of the part
        return list(zip(g[idx].tolist(), _key_strings(t, keys, idx, sort=False)))

    return {"added": int(len(added_idx)), "removed": int(len(removed_idx)), "changed": int(changed_mask.sum()),
            "metadata_changed": int(meta_mask.sum()), "unchanged": int((~any_diff).sum()),
            "changed_columns": changed_columns,
            "candidates": {"added": candidates(b, gb, added_idx), "removed": candidates(a, ga, removed_idx),
                           "changed": candidates(b, gb, pb_idx[changed_mask]),
                           "metadata_changed": candidates(b, gb, pb_idx[meta_mask])}}


def _finish(result: dict[str, Any], parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Sum the parts; each kind's examples are the first MAX_EXAMPLES rows of the whole table (by
    row number), listed sorted, as a diff of the whole tables at once chose them."""
    changed_columns: dict[str, int] = {}
    for p in parts:
        for c, n in p["changed_columns"].items():
            changed_columns[c] = changed_columns.get(c, 0) + n
    examples = {}
    for kind in ("added", "removed", "changed", "metadata_changed"):
        first = sorted(c for p in parts for c in p["candidates"][kind])[:MAX_EXAMPLES]
        examples[kind] = sorted(s for _, s in first)
    result.update(
        matched_by="key",
        **{k: sum(p[k] for p in parts) for k in ("added", "removed", "changed", "metadata_changed", "unchanged")},
        changed_columns=dict(sorted(changed_columns.items())),
        examples=examples,
    )
    return result


# -- streaming: both releases' tables cut into parts by key, one part in memory at a time ------------
PART_ROWS = 200_000  # rows of both releases per part (a part's compact rows: ~40 MB at 200 bytes a row)
HASHED_COLUMNS = {"text", "heading", "title", "before", "after"}  # compared through a 64-bit hash


def _compact(t: pa.Table, hashed: Sequence[str], offset: int) -> pa.Table:
    """A row group with its long strings replaced by their xxh3-64 (nulls stay null) and its row
    numbers in ``__g``: the parts keep what a comparison needs, not the text (a sections table of a
    1.3 GB crawl is ~1 GB of text per release, which the diff read whole, twice)."""
    import xxhash

    for c in hashed:
        vals = t.column(c).to_pylist()
        h = pa.array([None if v is None else xxhash.xxh3_64_intdigest(v.encode("utf-8", "surrogatepass"))
                      for v in vals], pa.uint64())
        t = t.set_column(t.schema.get_field_index(c), c, h)
    return t.append_column("__g", pa.array(np.arange(offset, offset + t.num_rows, dtype=np.int64)))


_MIX = np.uint64(0x9E3779B97F4A7C15)


def _partition_of(col: pa.ChunkedArray, parts: int) -> np.ndarray:
    """A part number per row from its key's first column, without a Python call per row: a string's
    first and last 32 bytes (ids are hex digests; paths differ at their ends) folded into 64 bits.
    Only memory depends on how even the parts are; the diff does not."""
    n = len(col)
    if parts == 1 or n == 0:
        return np.zeros(n, dtype=np.int64)
    from corpuspipe.release.writer import _fixed_bytes

    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        arr = pc.fill_null(arr, "")
        words = [np.frombuffer(_fixed_bytes(x, 32)[0].tobytes(), dtype="<u8").reshape(n, 4)
                 for x in (arr, pc.utf8_reverse(arr))]
        w = np.concatenate(words, axis=1)
    else:
        w = pc.fill_null(arr.cast(pa.int64()), 0).to_numpy(zero_copy_only=False).astype("<u8").reshape(n, 1)
    h = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(w.shape[1]):
            h = (h ^ w[:, j]) * _MIX
            h ^= h >> np.uint64(29)
    return (h % np.uint64(parts)).astype(np.int64)


def _write_parts(path: Path, columns: Sequence[str], hashed: Sequence[str], key0: str, parts: int,
                 tmp: Path, side: str) -> list[Path]:
    pf = pq.ParquetFile(path)
    files = [tmp / f"{side}-{p:04d}.arrow" for p in range(parts)]
    writers: list[Any] = [None] * parts
    offset = 0
    try:
        for i in range(pf.num_row_groups):
            t = _compact(pf.read_row_group(i, columns=list(columns)), hashed, offset)
            offset += t.num_rows
            where = _partition_of(t.column(key0), parts)
            for p in range(parts):
                sub = t if parts == 1 else t.filter(pa.array(where == p))
                if writers[p] is None:
                    writers[p] = pa.ipc.new_file(str(files[p]), t.schema)
                writers[p].write_table(sub)
    finally:
        for w in writers:
            if w is not None:
                w.close()
    return files


def _read_part(path: Path, empty: pa.Table) -> pa.Table:
    if path.exists():
        with pa.ipc.open_file(str(path)) as r:
            return r.read_all()
    return empty  # a table without row groups wrote no part


def diff_table_files(name: str, path_a: Path, path_b: Path, columns_a: Sequence[str], columns_b: Sequence[str],
                     tmp_root: Path | None = None) -> dict[str, Any]:
    """:func:`diff_table` of two Parquet files without reading either whole: rows are cut into parts
    by a hash of their key's first column (every row of a key lands in the same part), long strings
    are compared through a hash, and one part of each release is in memory at a time."""
    import shutil
    import tempfile

    sa, sb = pq.read_schema(path_a), pq.read_schema(path_b)
    na, nb = pq.read_metadata(path_a).num_rows, pq.read_metadata(path_b).num_rows
    keys = [k for k in (NATURAL_KEYS.get(name) or schemas.SORT_KEYS.get(name) or [])
            if k in columns_a and k in columns_b]
    if not keys:
        return diff_table(name, pq.read_table(path_a, columns=list(columns_a)),
                          pq.read_table(path_b, columns=list(columns_b)))
    strings = lambda t: pa.types.is_string(t) or pa.types.is_large_string(t)  # noqa: E731
    hashed = [c for c in columns_b if c in HASHED_COLUMNS and c in columns_a and c not in keys
              and strings(sa.field(c).type) and strings(sb.field(c).type)]
    parts = max(1, -(-(na + nb) // PART_ROWS))
    result: dict[str, Any] = {"key": keys, "rows_a": na, "rows_b": nb}
    key_types = _key_types(keys, sa, sb)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-changelog-", dir=tmp_root))
    try:
        fa = _write_parts(Path(path_a), columns_a, hashed, keys[0], parts, tmp, "a")
        fb = _write_parts(Path(path_b), columns_b, hashed, keys[0], parts, tmp, "b")
        empty_a = _compact(sa.empty_table().select(list(columns_a)), hashed, 0)
        empty_b = _compact(sb.empty_table().select(list(columns_b)), hashed, 0)
        done = []
        for p in range(parts):
            a, b = _read_part(fa[p], empty_a), _read_part(fb[p], empty_b)
            if not (a.num_rows or b.num_rows):
                continue
            ga, gb = (t.column("__g").to_numpy(zero_copy_only=False) for t in (a, b))
            done.append(_diff_part(name, a.drop_columns(["__g"]), b.drop_columns(["__g"]), keys, key_types, ga, gb))
            fa[p].unlink(missing_ok=True)
            fb[p].unlink(missing_ok=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _finish(result, done)


# --------------------------------------------------------------------------- manifest-level


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: obj}


def _manifest_diff(ma: Mapping[str, Any], mb: Mapping[str, Any]) -> dict[str, Any]:
    fa, fb = _flatten(ma.get("config", {})), _flatten(mb.get("config", {}))
    config_changes = [
        {"key": k, "from": fa.get(k), "to": fb.get(k)} for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)
    ]
    ia = {str(i.get("path")): i for i in ma.get("inputs", [])}
    ib = {str(i.get("path")): i for i in mb.get("inputs", [])}
    return {
        "config_changes": config_changes,
        "pipeline_version": [ma.get("pipeline", {}).get("version"), mb.get("pipeline", {}).get("version")],
        "schema_version": [ma.get("schema_version"), mb.get("schema_version")],
        "inputs": {
            "added": sorted(set(ib) - set(ia)),
            "removed": sorted(set(ia) - set(ib)),
            "changed": sorted(p for p in set(ia) & set(ib) if ia[p].get("sha256") != ib[p].get("sha256")),
        },
    }


# --------------------------------------------------------------------------- public


def diff_releases(a_dir: Path, b_dir: Path, tmp_root: Path | None = None) -> dict[str, Any]:
    """Structured difference of release A (older) and B (newer): tables, schemas and manifests.

    Tables are compared part by part (:func:`diff_table_files`): memory is one part of each release,
    not both releases' tables (with their text) at once.  ``tmp_root``: where the parts are spilled
    (default: the system's temporary directory)."""
    a_dir, b_dir = Path(a_dir), Path(b_dir)
    ma, mb = _manifest(a_dir), _manifest(b_dir)
    ta, tb = _tables_in(a_dir), _tables_in(b_dir)
    out: dict[str, Any] = {
        "from": ma.get("version", a_dir.name),
        "to": mb.get("version", b_dir.name),
        "schema": {"tables_added": sorted(set(tb) - set(ta)), "tables_removed": sorted(set(ta) - set(tb)),
                   "columns": {}},
        "tables": {},
        "manifest": _manifest_diff(ma, mb),
    }
    for name in sorted(set(ta) & set(tb)):
        sa, sb = pq.read_schema(ta[name]), pq.read_schema(tb[name])
        sd = _schema_diff(sa, sb)
        if any(sd.values()):
            out["schema"]["columns"][name] = sd
        skip = SKIP_COLUMNS.get(name, set())
        if TEXT_COLUMNS.get(name) not in sa.names or TEXT_COLUMNS.get(name) not in sb.names:
            skip = set()
        out["tables"][name] = diff_table_files(name, ta[name], tb[name], [c for c in sa.names if c not in skip],
                                               [c for c in sb.names if c not in skip], tmp_root)
    for name in out["schema"]["tables_added"]:
        out["tables"][name] = {"key": [], "rows_a": 0, "rows_b": pq.read_metadata(tb[name]).num_rows,
                               "added": pq.read_metadata(tb[name]).num_rows, "removed": 0, "changed": 0}
    for name in out["schema"]["tables_removed"]:
        out["tables"][name] = {"key": [], "rows_a": pq.read_metadata(ta[name]).num_rows, "rows_b": 0,
                               "added": 0, "removed": pq.read_metadata(ta[name]).num_rows, "changed": 0}
    out["tables"] = dict(sorted(out["tables"].items()))
    return out


def _md(value: Any) -> str:
    """Markdown-table-safe cell: corpus ids and config values can contain pipes and newlines."""
    s = "∅" if value is None else str(value)
    return s.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("`", "'")


def render_changelog(diff: Mapping[str, Any]) -> str:
    """CHANGELOG.md text for a diff_releases() result."""
    lines = [f"# Changelog {diff['from']} → {diff['to']}", ""]
    lines += ["## Rows", "", "| table | rows before | rows after | added | removed | changed | metadata only |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for name, t in diff["tables"].items():
        lines.append(f"| {name} | {t['rows_a']} | {t['rows_b']} | {t['added']} | {t['removed']} | "
                     f"{t['changed']} | {t.get('metadata_changed', 0)} |")
    lines.append("")
    lines.append("Rows are matched on their natural key (" + "; ".join(
        f"{n}: {', '.join(t['key'])}" for n, t in diff["tables"].items() if t.get("key")) + "). "
        "For documents and sections *changed* means the text changed; *metadata only* means other columns did.")
    lines.append("")
    schema = diff["schema"]
    lines += ["## Schema", ""]
    if not (schema["tables_added"] or schema["tables_removed"] or schema["columns"]):
        lines.append("No schema changes.")
    for n in schema["tables_added"]:
        lines.append(f"- table added: `{_md(n)}`")
    for n in schema["tables_removed"]:
        lines.append(f"- table removed: `{_md(n)}`")
    for n, sd in schema["columns"].items():
        for c in sd["added"]:
            lines.append(f"- `{n}`: column added `{_md(c)}`")
        for c in sd["removed"]:
            lines.append(f"- `{n}`: column removed `{_md(c)}`")
        for c in sd["type_changed"]:
            lines.append(f"- `{n}`: column `{_md(c['column'])}` type {_md(c['from'])} → {_md(c['to'])}")
        for c in sd["nullability_changed"]:
            lines.append(f"- `{n}`: column `{_md(c)}` nullability changed")
    lines.append("")
    detail = [(n, t) for n, t in diff["tables"].items() if t.get("changed_columns") or t.get("examples")]
    if detail:
        lines += ["## Details", ""]
    for n, t in detail:
        if not any(t.get("examples", {}).values()) and not t.get("changed_columns"):
            continue
        lines.append(f"### {n}")
        lines.append("")
        if t.get("changed_columns"):
            lines.append("Columns that differ in matched rows: " + ", ".join(
                f"`{_md(c)}` ({k})" for c, k in t["changed_columns"].items()))
            lines.append("")
        for kind in ("added", "removed", "changed", "metadata_changed"):
            ex = t.get("examples", {}).get(kind) or []
            total = t.get(kind, 0)
            if ex:
                more = f" (first {len(ex)} of {total})" if total > len(ex) else ""
                lines.append(f"- {kind.replace('_', ' ')}{more}: " + ", ".join(f"`{_md(e)}`" for e in ex))
        lines.append("")
    m = diff["manifest"]
    lines += ["## Pipeline and inputs", ""]
    pv, sv = m["pipeline_version"], m["schema_version"]
    lines.append(f"- pipeline version: {_md(pv[0])} → {_md(pv[1])}" if pv[0] != pv[1] else
                 f"- pipeline version: {_md(pv[1])} (unchanged)")
    lines.append(f"- schema version: {_md(sv[0])} → {_md(sv[1])}" if sv[0] != sv[1] else
                 f"- schema version: {_md(sv[1])} (unchanged)")
    inp = m["inputs"]
    lines.append(f"- input files: {len(inp['added'])} added, {len(inp['removed'])} removed, "
                 f"{len(inp['changed'])} changed")
    for kind in ("added", "removed", "changed"):
        if inp[kind]:
            shown = inp[kind][:MAX_EXAMPLES]
            more = f" (first {len(shown)} of {len(inp[kind])})" if len(inp[kind]) > len(shown) else ""
            lines.append(f"  - {kind}{more}: " + ", ".join(f"`{_md(p)}`" for p in shown))
    if m["config_changes"]:
        lines += ["", "| config key | before | after |", "|---|---|---|"]
        for c in m["config_changes"]:
            lines.append(f"| `{_md(c['key'])}` | {_md(json.dumps(c['from'], ensure_ascii=False))} | "
                         f"{_md(json.dumps(c['to'], ensure_ascii=False))} |")
    else:
        lines.append("- configuration: unchanged")
    lines.append("")
    return "\n".join(lines)


def changelog_text(a_dir: Path, b_dir: Path) -> str:
    """CHANGELOG.md of release B against A, as text: `corpuspipe diff` prints it and never writes into
    a release (finished releases are sealed read-only, issue 13 #10)."""
    return render_changelog(diff_releases(a_dir, b_dir))


def write_changelog(a_dir: Path, b_dir: Path) -> Path:
    """Diff release A against B and write B/CHANGELOG.md (atomically); returns its path.

    Only for the writer, into the release's temporary directory before it is renamed into place and
    sealed; the CLI uses :func:`changelog_text`."""
    path = Path(b_dir) / CHANGELOG_NAME
    # parts spill beside the release being written, as .tmp-*: a crashed build's are cleaned with it
    atomic_write_text(path, render_changelog(diff_releases(a_dir, b_dir, tmp_root=Path(b_dir).parent)))
    return path
