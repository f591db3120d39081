"""What changed between two releases, row by row and column by column (rendered as CHANGELOG.md
by :mod:`corpuspipe.release.changelog`).

Rows are matched on each table's natural key (``schemas.RELEASE_TABLES``) with an Arrow hash join.
Release tables are never read whole, nor in the process that assembles a release:

1. A part whose row digest (in the manifests) is the same in both releases holds the same rows:
   it is counted unchanged without being read (only checked against its sha256).  Parts partition
   a table's keys -- a document's sections and edits are in its document's part, and ids are
   unique -- so a skipped part never holds a key another part could match.  An incremental release
   (a few input files added) therefore reads only the parts whose shards changed.
2. Every other part is read by a task (:func:`spill_part`): checked against the manifest, its long
   strings replaced by a 64-bit hash, its rows cut into partitions by a hash of their key (spilled
   as Arrow files beside the release).
3. One task per partition joins the two releases' rows (:func:`diff_partition`); the assembling
   process sums the partitions' counts and picks the examples.

Memory is one partition, not two corpora.  Text is compared through its hash column where the
table has one (documents.text_sha256), otherwise through the 64-bit hash of the text.  Measured on
the 100 MB crawl (two releases of the same rows): 6.6 s in one process before, all of it reading and
hashing both releases' text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable, Generator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpuspipe.core import schemas
from corpuspipe.core.stage import Tasks, drive, serial_tasks
from corpuspipe.release.layout import table_outputs

# Natural keys: what identifies "the same row" in two releases (declared with the tables).
NATURAL_KEYS: dict[str, list[str]] = {t.name: list(t.key) for t in schemas.RELEASE_TABLES}
# The column whose difference means "the text changed"; others count as metadata changes.
TEXT_COLUMNS: dict[str, str] = {t.name: t.text_column for t in schemas.RELEASE_TABLES if t.text_column}
# Columns never read because another column stands for them.
SKIP_COLUMNS: dict[str, set[str]] = {t.name: set(t.changelog_skip) for t in schemas.RELEASE_TABLES
                                     if t.changelog_skip}
MAX_EXAMPLES = 10


# --------------------------------------------------------------------------- reading


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
    from corpuspipe.release.tables import fixed_bytes as _fixed_bytes

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


def _spill_name(side: str, index: int, partition: int) -> str:
    return f"{side}-{index:05d}-{partition:04d}.arrow"


def spill_part(job: Mapping[str, Any]) -> dict[str, Any]:
    """One part of one release (a task): checked against its manifest entry when ``check``, and,
    unless the same part is in the other release (``spill`` false), its rows compacted
    (:func:`_compact`) and cut by key hash into ``parts`` Arrow files under ``dir``.  Returns the
    problem found (one line) or the partitions written."""
    from corpuspipe.release.verify import file_problem

    release_dir, entry = Path(job["release"]), job["entry"]
    if job["check"]:
        problem = file_problem(release_dir, entry)
        if problem:
            return {"problem": f"release {release_dir} is damaged: {problem}", "written": []}
    if not job["spill"]:
        return {"problem": None, "written": []}
    pf = pq.ParquetFile(release_dir / entry["path"])
    parts, written = int(job["parts"]), {}
    writers: dict[int, Any] = {}
    offset = int(job["offset"])
    try:
        for i in range(pf.num_row_groups):
            t = _compact(pf.read_row_group(i, columns=list(job["columns"])), job["hashed"], offset)
            offset += t.num_rows
            where = _partition_of(t.column(job["key0"]), parts)
            for p in range(parts):
                sub = t if parts == 1 else t.filter(pa.array(where == p))
                if not sub.num_rows:
                    continue
                if p not in writers:
                    written[p] = str(Path(job["dir"]) / _spill_name(job["side"], int(entry.get("part", 0)), p))
                    writers[p] = pa.ipc.new_file(written[p], t.schema)
                writers[p].write_table(sub)
    finally:
        for w in writers.values():
            w.close()
    return {"problem": None, "written": sorted(written.items())}


def _read_parts(paths: Sequence[str], empty: pa.Table) -> pa.Table:
    tables = []
    for path in paths:
        with pa.ipc.open_file(str(path)) as r:
            tables.append(r.read_all())
    return pa.concat_tables(tables) if tables else empty


def diff_partition(job: Mapping[str, Any]) -> dict[str, Any]:
    """One partition of one table, both releases' rows joined on the key (a task); the spilled
    files are removed once read."""
    empty_a = _compact(job["schema_a"].empty_table(), job["hashed"], 0)
    empty_b = _compact(job["schema_b"].empty_table(), job["hashed"], 0)
    a, b = _read_parts(job["files_a"], empty_a), _read_parts(job["files_b"], empty_b)
    ga, gb = (t.column("__g").to_numpy(zero_copy_only=False) for t in (a, b))
    out = _diff_part(job["name"], a.drop_columns(["__g"]), b.drop_columns(["__g"]), job["keys"], job["key_types"],
                     ga, gb)
    for f in (*job["files_a"], *job["files_b"]):
        Path(f).unlink(missing_ok=True)
    return out


def _same_parts(pa_: Sequence[Mapping[str, Any]], pb: Sequence[Mapping[str, Any]]) -> tuple[set[int], set[int]]:
    """Parts of A and of B (positions) holding the same rows in both releases, by their row digests."""
    by_digest: dict[tuple, list[int]] = {}
    for i, o in enumerate(pa_):
        if o.get("digest"):
            by_digest.setdefault((o["digest"], int(o.get("rows", -1))), []).append(i)
    same_a, same_b = set(), set()
    for j, o in enumerate(pb):
        hit = by_digest.get((o.get("digest"), int(o.get("rows", -1)))) if o.get("digest") else None
        if hit:
            same_a.add(hit.pop(0))
            same_b.add(j)
    return same_a, same_b


def _table_plan(name: str, sides: Mapping[str, tuple[Path, list[dict], bool]], spill_dir: Path) -> dict[str, Any]:
    """The spill jobs of one table of both releases, and what the diff jobs need."""
    from corpuspipe.release.verify import read_schema

    (a_dir, pa_, _), (b_dir, pb, _) = sides["a"], sides["b"]
    sa, sb = read_schema(a_dir, pa_[0]), read_schema(b_dir, pb[0])
    skip = SKIP_COLUMNS.get(name, set())
    if TEXT_COLUMNS.get(name) not in sa.names or TEXT_COLUMNS.get(name) not in sb.names:
        skip = set()
    cols_a, cols_b = [c for c in sa.names if c not in skip], [c for c in sb.names if c not in skip]
    keys = [k for k in (NATURAL_KEYS.get(name) or schemas.SORT_KEYS.get(name) or []) if k in cols_a and k in cols_b]
    strings = lambda t: pa.types.is_string(t) or pa.types.is_large_string(t)  # noqa: E731
    hashed = [c for c in cols_b if c in HASHED_COLUMNS and c in cols_a and c not in keys
              and strings(sa.field(c).type) and strings(sb.field(c).type)]
    same_a, same_b = _same_parts(pa_, pb) if keys else (set(), set())
    changed = sum(int(o.get("rows", 0)) for i, o in enumerate(pa_) if i not in same_a) + \
        sum(int(o.get("rows", 0)) for j, o in enumerate(pb) if j not in same_b)
    parts = max(1, -(-changed // PART_ROWS))
    jobs = []
    for side, (rdir, entries, check), same, cols in (("a", sides["a"], same_a, cols_a), ("b", sides["b"], same_b, cols_b)):
        offset = 0
        for i, e in enumerate(entries):
            jobs.append({"release": str(rdir), "entry": e, "check": check, "spill": bool(keys) and i not in same,
                         "columns": cols, "hashed": hashed, "key0": keys[0] if keys else "", "parts": parts,
                         "offset": offset, "dir": str(spill_dir / name), "side": side})
            offset += int(e.get("rows", 0))
    (spill_dir / name).mkdir(parents=True, exist_ok=True)
    return {"name": name, "keys": keys, "cols": (cols_a, cols_b), "schemas": (sa, sb), "hashed": hashed,
            "parts": parts, "jobs": jobs, "unchanged": sum(int(pb[j].get("rows", 0)) for j in same_b),
            "rows": (sum(int(o.get("rows", 0)) for o in pa_), sum(int(o.get("rows", 0)) for o in pb))}


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


def diff_steps(a_dir: Path, b_dir: Path, tmp_root: Path | None = None, b_manifest: Mapping[str, Any] | None = None
               ) -> Generator[Tasks, list, dict[str, Any]]:
    """Structured difference of release A (older) and B (newer): tables, schemas and manifests, as
    a generator of :class:`Tasks` (see the module docstring).  Every part of A is checked against
    A's manifest (a damaged release is :class:`ReleaseDamaged`, one line); B's too unless
    ``b_manifest`` is given (the writer's own, of the release it is writing).  ``tmp_root``: where
    the partitions are spilled (default: the system's temporary directory)."""
    import shutil
    import tempfile

    from corpuspipe.release.verify import ReleaseDamaged, load_manifest

    a_dir, b_dir = Path(a_dir), Path(b_dir)
    ma = load_manifest(a_dir)
    mb = dict(b_manifest) if b_manifest is not None else load_manifest(b_dir)
    ta, tb = table_outputs(ma), table_outputs(mb)
    out: dict[str, Any] = {
        "from": ma.get("version", a_dir.name), "to": mb.get("version", b_dir.name),
        "schema": {"tables_added": sorted(set(tb) - set(ta)), "tables_removed": sorted(set(ta) - set(tb)),
                   "columns": {}},
        "tables": {}, "manifest": _manifest_diff(ma, mb),
    }
    spill = Path(tempfile.mkdtemp(prefix=".tmp-changelog-", dir=tmp_root))
    try:
        plans = [_table_plan(name, {"a": (a_dir, ta[name], True), "b": (b_dir, tb[name], b_manifest is None)}, spill)
                 for name in sorted(set(ta) & set(tb))]
        # the parts of a table only one release has are checked too (their rows count as added or removed)
        lone = [{"release": str(d), "entry": e, "check": check, "spill": False}
                for d, outs, names, check in ((a_dir, ta, set(ta) - set(tb), True),
                                              (b_dir, tb, set(tb) - set(ta), b_manifest is None))
                for n in sorted(names) for e in outs[n]]
        jobs = [j for p in plans for j in p["jobs"]] + lone
        spilled = yield Tasks("changelog: read", spill_part, [(j,) for j in jobs])
        problems = [r["problem"] for r in spilled if r["problem"]]
        if problems:
            raise ReleaseDamaged(problems[0])
        results = iter(spilled)
        diff_jobs, owners = [], []
        for p in plans:
            files: dict[str, dict[int, list[str]]] = {"a": {}, "b": {}}
            for j in p["jobs"]:
                for part, path in next(results)["written"]:
                    files[j["side"]].setdefault(part, []).append(path)
            sa, sb = p["schemas"]
            key_types = _key_types(p["keys"], sa, sb)
            for part in sorted(set(files["a"]) | set(files["b"])):
                diff_jobs.append(({"name": p["name"], "keys": p["keys"], "key_types": key_types, "hashed": p["hashed"],
                                   "schema_a": pa.schema([sa.field(c) for c in p["cols"][0]]),
                                   "schema_b": pa.schema([sb.field(c) for c in p["cols"][1]]),
                                   "files_a": files["a"].get(part, []), "files_b": files["b"].get(part, [])},))
                owners.append(p["name"])
        diffs = yield Tasks("changelog: diff", diff_partition, diff_jobs)
    finally:
        shutil.rmtree(spill, ignore_errors=True)
    for p in plans:
        sa, sb = p["schemas"]
        sd = _schema_diff(sa, sb)
        if any(sd.values()):
            out["schema"]["columns"][p["name"]] = sd
        result = _finish({"key": p["keys"], "rows_a": p["rows"][0], "rows_b": p["rows"][1]},
                         [d for d, o in zip(diffs, owners) if o == p["name"]])
        result["unchanged"] += p["unchanged"]
        out["tables"][p["name"]] = result
    for name in out["schema"]["tables_added"]:
        n = sum(int(o.get("rows", 0)) for o in tb[name])
        out["tables"][name] = {"key": [], "rows_a": 0, "rows_b": n, "added": n, "removed": 0, "changed": 0}
    for name in out["schema"]["tables_removed"]:
        n = sum(int(o.get("rows", 0)) for o in ta[name])
        out["tables"][name] = {"key": [], "rows_a": n, "rows_b": 0, "added": 0, "removed": n, "changed": 0}
    out["tables"] = dict(sorted(out["tables"].items()))
    return out


def diff_releases(a_dir: Path, b_dir: Path, tmp_root: Path | None = None,
                  run_tasks: Callable[[Tasks], list] = serial_tasks) -> dict[str, Any]:
    """:func:`diff_steps` run to its end by ``run_tasks`` (default: in this process)."""
    return drive(diff_steps(a_dir, b_dir, tmp_root), run_tasks)
