"""``corpuspipe export``: a release turned into training-ready shards.

A release keeps everything (duplicates, parents and children, flagged text) and records decisions
as columns; a trainer wants one copy of each text and nothing twice.  Export makes that selection,
deterministically, and writes shards that the usual readers take without options:

* **documents** — ``duplicate_of IS NULL`` (one document per near-duplicate cluster), minus
  documents with an excluded flag, outside the script/length bounds or the signal bounds.
* **sections** — the *leaf* sections (no other section names them as ``parent_id``: a parent's
  text contains its children's, so exporting both would train on it twice), with
  ``duplicate_of IS NULL``, of the documents the document filter keeps.  Leaves are computed
  here from ``parent_id`` so the export does not depend on a release having an ``is_leaf`` column.

Shards: ``parquet/part-00000.parquet`` (zstd) and/or ``jsonl/part-00000.jsonl.zst``, one folder per
format (datatrove's readers read every file of the folder they are given), rows in the release's
order (deterministic: shard by shard, by id within a shard), a new
shard every ``shard_rows`` rows, with columns ``id`` and ``text`` first (datatrove's readers'
default ``id_key``/``text_key``; Hugging Face and data-juicer read ``text``), then the metadata.
``manifest.json`` and ``README.md`` name the release version and content hash the shards came from,
the filters, and every shard's rows and sha256.  Same release + same options = same bytes.

``best_containment`` (the largest share of this text found in one other document or section,
from ``duplicates.parquet``'s ``containment_ab``/``containment_ba``) is computed here, not stored
in the release: it needs the corpus-level pairs, which the streaming writer does not hold.  Memory:
one row group of the table being exported, the ids named in ``duplicates.parquet`` (one float
each), and for sections the set of parent ids.
"""

from __future__ import annotations

import glob
import hashlib
import json
import math
import os
import secrets
import shutil
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpuspipe.core import schemas
from corpuspipe.core.io import atomic_write_text, file_sha256, pid_alive
from corpuspipe.release.verify import Release, open_release

EXPORT_MANIFEST = "manifest.json"
LEVELS = ("document", "section")
FORMATS = ("parquet", "jsonl")
#: a document's ``script`` (stages/normalize/chars.py script_ratio)
SCRIPTS = ("simplified", "traditional", "mixed", "unknown")
#: columns a --min/--max bound may name (documents)
BOUNDABLE = ("char_count", "cluster_size", "trad_ratio", "best_containment", *schemas.SIGNAL_COLUMNS)

_DOC_META = ("title", "source_path", "url", "date", "crawled_at", "script", "trad_ratio", "char_count",
             "cluster_id", "cluster_size", "flags", *schemas.SIGNAL_COLUMNS)
_SEC_META = ("doc_id", "path", "level", "marker", "heading", "char_start", "char_end", "cluster_id")


def export_schema(level: str, columns: Sequence[str]) -> pa.Schema:
    """The explicit schema of every part of an export (``columns``: those the rows have, in order):
    each column typed as in the release contract, so no part's types depend on its values.  A
    reader that infers types from values (Hugging Face ``datasets`` on JSON types every part by the
    first: a first part whose ``date`` is empty throughout types it ``null`` and the next part fails
    "Couldn't cast array of type string to null") gets them from the export's README instead
    (:func:`hf_features`; how, in :func:`_loading`)."""
    source = schemas.DOCUMENTS if level == "document" else schemas.SECTIONS
    key = "doc_id" if level == "document" else "section_id"
    types = {f.name: f for f in source}
    fields = []
    for c in columns:
        if c == "id":
            fields.append(pa.field("id", pa.string(), nullable=False))
        elif c == "best_containment":
            fields.append(pa.field(c, pa.float32(), nullable=False))
        else:
            fields.append(types[key if c == "id" else c])
    return pa.schema(fields)


def hf_features(schema: pa.Schema) -> list[dict]:
    """The schema as the Hub's ``dataset_info.features`` (the release card's dialect)."""
    from corpuspipe.release.card import hf_feature

    return [hf_feature(f) for f in schema]


class ExportError(Exception):
    """A user-fixable problem with the export request (one line)."""


@dataclass
class Selection:
    """What to keep.  Defaults: deduplicated documents, mojibake excluded, every script."""

    level: str = "document"
    exclude_flags: list[str] = field(default_factory=lambda: ["mojibake"])
    scripts: list[str] = field(default_factory=list)  # empty: all
    min_chars: int = 1
    max_chars: int | None = None
    min: dict[str, float] = field(default_factory=dict)  # column -> lower bound (inclusive)
    max: dict[str, float] = field(default_factory=dict)  # column -> upper bound (inclusive)

    def check(self) -> None:
        """Every enumerated value is one of its list, named in the message; bounds are numbers."""
        if self.level not in LEVELS:
            raise ExportError(f"unknown level {self.level!r}: use one of {', '.join(LEVELS)}")
        for sc in self.scripts:
            if sc not in SCRIPTS:  # else: accepted, and 0 rows exported without a word (issue 24 #16)
                raise ExportError(f"unknown script {sc!r}: use one of {', '.join(SCRIPTS)}")
        for name, value in (*self.min.items(), *self.max.items()):
            if name not in BOUNDABLE:
                raise ExportError(f"cannot filter on {name!r}: use one of {', '.join(BOUNDABLE)}")
            if math.isnan(value):  # every comparison with NaN is false: 0 rows, rc 0 (issue 24 #16)
                raise ExportError(f"the bound on {name} is NaN: give a number")


def parse_bounds(items: Sequence[str], what: str) -> dict[str, float]:
    """``["han_ratio=0.6", ...]`` -> ``{"han_ratio": 0.6}`` (a user error is one line)."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        try:
            if not sep:
                raise ValueError
            out[name] = float(value)
        except ValueError:
            raise ExportError(f"--{what} takes NAME=NUMBER, e.g. han_ratio=0.6 (got {item!r})") from None
        if math.isnan(out[name]):
            raise ExportError(f"--{what} {item!r}: NaN is not a bound (every comparison with it is false); give a number")
    return out


# ----------------------------------------------------------------------------- selection
def _groups(release: Release, table: str, columns: Sequence[str]) -> Iterator[pa.Table]:
    """The table's row groups in release order, over its parts (each checked against the manifest)."""
    for path in release.parts(table):
        pf = pq.ParquetFile(path)
        cols = [c for c in columns if c in pf.schema_arrow.names]
        for i in range(pf.num_row_groups):
            yield pf.read_row_group(i, columns=cols)


def _release(release_dir: Path | Release) -> Release:
    return release_dir if isinstance(release_dir, Release) else open_release(Path(release_dir))


def best_containment(release_dir: Path | Release, level: str) -> dict[str, float]:
    """id -> the largest share of its shingles found in one other item of ``level``."""
    best: dict[str, float] = {}
    for t in _groups(_release(release_dir), "duplicates",
                     ["level", "a_id", "b_id", "containment_ab", "containment_ba"]):
        t = t.filter(pc.equal(t["level"], level))
        for ids, cont in (("a_id", "containment_ab"), ("b_id", "containment_ba")):
            for k, v in zip(t[ids].to_pylist(), t[cont].to_pylist()):
                if v > best.get(k, -1.0):
                    best[k] = float(v)
    return best


def _doc_mask(t: pa.Table, sel: Selection, best: dict[str, float]) -> tuple[pa.Array, pa.Array]:
    """Rows of a documents batch that the selection keeps, and their best containment."""
    bc = pa.array([best.get(x, 0.0) for x in t["doc_id"].to_pylist()], pa.float32())
    keep = pc.is_null(t["duplicate_of"])
    keep = pc.and_(keep, pc.greater_equal(t["char_count"], sel.min_chars))
    if sel.max_chars is not None:
        keep = pc.and_(keep, pc.less_equal(t["char_count"], sel.max_chars))
    if sel.scripts:
        keep = pc.and_(keep, pc.is_in(t["script"], value_set=pa.array(sel.scripts, pa.string())))
    if sel.exclude_flags:
        flags = t["flags"].to_pylist()
        bad = set(sel.exclude_flags)
        keep = pc.and_(keep, pa.array([not (bad & set(f or ())) for f in flags]))
    cols = {**{n: t[n] for n in t.column_names}, "best_containment": bc}
    for name, lo in sorted(sel.min.items()):
        keep = pc.and_(keep, pc.greater_equal(cols[name], lo))
    for name, hi in sorted(sel.max.items()):
        keep = pc.and_(keep, pc.less_equal(cols[name], hi))
    return pc.fill_null(keep, False), bc


def _iter_documents(release_dir: Path | Release, sel: Selection, best: dict[str, float]) -> Iterator[pa.Table]:
    for t in _groups(_release(release_dir), "documents", ["doc_id", "text", "duplicate_of", *_DOC_META]):
        mask, bc = _doc_mask(t, sel, best)
        t = t.append_column("best_containment", bc).filter(mask)
        if t.num_rows:
            out = {"id": t["doc_id"], "text": t["text"]}
            out.update({c: t[c] for c in _DOC_META if c in t.column_names})
            out["best_containment"] = t["best_containment"]
            yield pa.table(out)


def kept_documents(release_dir: Path | Release, sel: Selection) -> set[str]:
    release = _release(release_dir)
    best = best_containment(release, "document")
    return {x for t in _iter_documents(release, sel, best) for x in t["id"].to_pylist()}


def leaf_ids_excluded(release_dir: Path | Release) -> set[str]:
    """Every section id some other section names as its parent (so: not a leaf)."""
    parents: set[str] = set()
    for t in _groups(_release(release_dir), "sections", ["parent_id"]):
        parents.update(x for x in pc.unique(t["parent_id"]).to_pylist() if x is not None)
    return parents


def _iter_sections(release_dir: Path | Release, sel: Selection) -> Iterator[pa.Table]:
    release = _release(release_dir)
    docs = kept_documents(release, sel)
    parents = leaf_ids_excluded(release)
    best = best_containment(release, "section")
    for t in _groups(release, "sections", ["section_id", "text", "duplicate_of", *_SEC_META]):
        sids = t["section_id"].to_pylist()
        keep = [s not in parents and d in docs and dup is None and bool(txt and txt.strip())
                for s, d, dup, txt in zip(sids, t["doc_id"].to_pylist(), t["duplicate_of"].to_pylist(),
                                          t["text"].to_pylist())]
        bc = pa.array([best.get(s, 0.0) for s in sids], pa.float32())
        t = t.append_column("best_containment", bc).filter(pa.array(keep, pa.bool_()))
        if t.num_rows:
            out = {"id": t["section_id"], "text": t["text"]}
            out.update({c: t[c] for c in _SEC_META})
            out["best_containment"] = t["best_containment"]
            yield pa.table(out)


# ----------------------------------------------------------------------------- writing
def _jsonable(v: Any) -> Any:
    if hasattr(v, "isoformat"):
        return v.isoformat().replace("+00:00", "Z")
    return v


def _json_values(col: pa.ChunkedArray) -> list:
    """A column's values as the JSON parts spell them.  A ``float32`` is written as the shortest
    decimal that reads back as the same ``float32`` (Arrow's cast to string: ``0.9900859``), so a
    reader given the card's features gets the Parquet part's value.  ``round(v, 6)`` wrote
    ``0.990086``, another ``float32`` (0.99008602 for 0.99008590): the JSON and Parquet loads of
    one export differed in a seed essay's ``trad_ratio``.  Other floats: Python's ``repr``, which
    round-trips."""
    if pa.types.is_float32(col.type):
        return [None if v is None else float(v) for v in pc.cast(col, pa.string()).to_pylist()]
    return [_jsonable(v) for v in col.to_pylist()]


class _Shards:
    """Rows cut into numbered shards of ``shard_rows`` rows, each written in every requested format."""

    def __init__(self, out: Path, formats: Sequence[str], shard_rows: int, level: str = "document"):
        self.out, self.formats, self.shard_rows, self.level = out, list(formats), shard_rows, level
        self.schema: pa.Schema | None = None
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.files: list[dict] = []
        self.rows = 0

    def add(self, t: pa.Table) -> None:
        self.pending.append(t)
        self.pending_rows += t.num_rows
        while self.pending_rows >= self.shard_rows:
            merged = pa.concat_tables(self.pending)
            self._write(merged.slice(0, self.shard_rows))
            rest = merged.slice(self.shard_rows)
            self.pending, self.pending_rows = ([rest] if rest.num_rows else []), rest.num_rows

    def close(self) -> list[dict]:
        if self.pending_rows:
            self._write(pa.concat_tables(self.pending))
        self.pending = []
        return self.files

    def _write(self, t: pa.Table) -> None:
        n = len(self.files) // len(self.formats)
        self.rows += t.num_rows
        if self.schema is None:
            self.schema = export_schema(self.level, t.column_names)
        t = t.cast(self.schema).combine_chunks()
        if "parquet" in self.formats:
            p = self.out / "parquet" / f"part-{n:05d}.parquet"
            p.parent.mkdir(exist_ok=True)
            # no store_schema metadata beyond Arrow's own; fixed options: same rows, same bytes
            pq.write_table(t, p, compression="zstd", compression_level=9, row_group_size=10_000,
                           use_dictionary=True, data_page_version="2.0", version="2.6")
            self.files.append({"path": p.relative_to(self.out).as_posix(), "rows": t.num_rows, "bytes": p.stat().st_size, "sha256": file_sha256(p)})
        if "jsonl" in self.formats:
            p = self.out / "jsonl" / f"part-{n:05d}.jsonl.zst"
            p.parent.mkdir(exist_ok=True)
            cols = {c: _json_values(t[c]) for c in t.column_names}
            with pa.CompressedOutputStream(str(p), "zstd") as f:
                for i in range(t.num_rows):
                    row = {c: cols[c][i] for c in t.column_names}
                    f.write((json.dumps(row, ensure_ascii=False, sort_keys=False) + "\n").encode("utf-8"))
            self.files.append({"path": p.relative_to(self.out).as_posix(), "rows": t.num_rows, "bytes": p.stat().st_size, "sha256": file_sha256(p)})


@dataclass
class ExportResult:
    out: Path
    rows: int
    files: list[dict]
    manifest: dict


def export_release(release_dir: Path, out: Path, sel: Selection | None = None,
                   formats: Sequence[str] = ("parquet", "jsonl"), shard_rows: int = 50_000) -> ExportResult:
    """Write the selection of ``release_dir`` as shards into ``out`` (created; must be empty or absent)."""
    sel = sel or Selection()
    sel.check()
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ExportError(f"unknown format {unknown[0]!r}: use one of {', '.join(FORMATS)}")
    formats = [f for f in FORMATS if f in formats]
    if not formats:
        raise ExportError(f"choose at least one format: {', '.join(FORMATS)}")
    if shard_rows < 1:
        raise ExportError("--shard-rows must be at least 1")
    release, out = open_release(Path(release_dir)), Path(out)
    manifest = release.manifest
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"output exists and is not an empty directory: {out}")
    for table in ("documents", "duplicates", *(("sections",) if sel.level == "section" else ())):
        release.parts(table)  # every file the export reads is checked before anything is written
    with _partial_dir(out) as tmp:
        return _export_into(tmp, out, release, manifest, sel, formats, shard_rows)


_PARTIAL = ".partial-"


@contextmanager
def _partial_dir(out: Path) -> Iterator[Path]:
    """A hidden folder beside ``out`` (``.<name>.partial-<pid>-<random>``) that becomes ``out`` by one
    rename when the export is complete, and is removed if it fails.

    Issue 24 #15: killed mid-export (kill -9), the shards used to sit in ``out`` looking finished
    (``part-000NN.parquet``, an empty one in 3 of 5 kills) with no manifest, a Hugging Face or
    datatrove reader given the folder read the partial output, and the re-run refused the folder as
    not empty.  Now a kill leaves only the hidden partial folder (readers and globs skip dot names),
    ``out`` does not exist, and the next export of the same ``out`` removes partial folders whose
    process is gone before it starts."""
    parent = out.parent if str(out.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    for old in parent.glob(f".{glob.escape(out.name)}{_PARTIAL}*"):
        pid = old.name[len(out.name) + 1 + len(_PARTIAL):].split("-", 1)[0]
        if old.is_dir() and pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    tmp = parent / f".{out.name}{_PARTIAL}{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        yield tmp
        os.rename(tmp, out)  # onto an absent or empty folder: one step, nothing half-visible
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _export_into(tmp: Path, out: Path, release: Release, manifest: dict, sel: Selection, formats: list[str],
                 shard_rows: int) -> ExportResult:
    shards = _Shards(tmp, formats, shard_rows, sel.level)
    if sel.level == "document":
        source = _iter_documents(release, sel, best_containment(release, "document"))
    else:
        source = _iter_sections(release, sel)
    for t in source:
        shards.add(t)
    files = shards.close()
    em = {
        "dataset": manifest.get("dataset"),
        "release_version": manifest.get("version"),
        "release_content_hash": manifest.get("content_hash"),
        "schema_version": manifest.get("schema_version"),
        "level": sel.level,
        "selection": asdict(sel),
        "formats": formats,
        "shard_rows": shard_rows,
        "rows": shards.rows,
        "files": files,
        "features": hf_features(shards.schema) if shards.schema is not None else [],
    }
    em["export_hash"] = hashlib.sha256(json.dumps(em, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    atomic_write_text(tmp / EXPORT_MANIFEST, json.dumps(em, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
    atomic_write_text(tmp / "README.md", _readme(em))
    return ExportResult(out, shards.rows, files, em)


def _front_matter(em: dict) -> list[str]:
    """The Hub's YAML header: the explicit features and the parts to load, so ``load_dataset(export)``
    types every part alike.  A folder loads with one builder, and Parquet parts carry their types
    (``load_dataset("parquet", data_dir=...)``), so the header names the JSON parts when there are
    any.  No rows: no header (a config without data fails to load)."""
    import yaml

    if not em["rows"] or not em["features"]:
        return []
    fmt = "jsonl" if "jsonl" in em["formats"] else em["formats"][0]
    pattern = {"parquet": "parquet/*.parquet", "jsonl": "jsonl/*.jsonl.zst"}[fmt]
    size = sum(int(f["bytes"]) for f in em["files"] if f["path"].startswith(fmt + "/"))
    head = {"configs": [{"config_name": "default", "data_files": [{"split": "train", "path": pattern}]}],
            "dataset_info": {"features": em["features"],
                             "splits": [{"name": "train", "num_bytes": size, "num_examples": em["rows"]}]}}
    return ["---", yaml.safe_dump(head, sort_keys=False, allow_unicode=True, width=1000).rstrip(), "---", ""]


#: how a reader of the card writes this folder's path in the loading recipe
EXPORT_PLACEHOLDER = "EXPORT"


def _loading(em: dict) -> list[str]:
    """The card's "Loading" section: the loads of Hugging Face ``datasets`` that give every part the
    types of the front matter, for the formats this export has (``EXPORT`` stands for its folder).

    Why JSON needs the features passed (datasets 5.2.0, read in its source): ``load_dataset("json",
    data_dir=...)`` / ``data_files=`` builds the packaged ``json`` module from the data files alone
    (``load.py`` ``PackagedDatasetModuleFactory.get_module``: builder kwargs are ``data_files`` and
    ``dataset_name``; no README, ``dataset_info.json`` or anything else beside the parts is read),
    ``Json._info`` types the dataset by ``config.features`` only, and without them
    ``Json._split_generators`` takes the features of the *first table of the first part*
    (``Features.from_arrow_schema`` of what ``pyarrow.json.read_json`` inferred), to which every
    later part is cast (``_cast_table`` -> ``table.py`` ``array_cast``: "Couldn't cast array of type
    string to null").  JSON spells a missing value ``null`` whatever its column, so a first part
    whose ``date``/``url`` is empty throughout types the column ``null`` (``flags`` all ``[]``:
    ``list<null>``), and JSON numbers and dates come back ``float64``/``int64``/``timestamp``
    whatever the release's ``float32``/``int32``/``date32``.  No spelling of the rows fixes that
    without changing a value, so the recipe passes the card's features (read by the public
    ``load_dataset_builder(EXPORT).info.features``), or loads the folder, whose card ``datasets``
    does read -- but not with ``data_dir=`` (``load.py``: the card's info is dropped when
    ``data_dir`` or ``data_files`` is given).  Parquet parts carry the explicit schema
    (:func:`export_schema`), which ``datasets``' parquet module reads from the first part."""
    if not em["rows"] or not em["features"]:
        return []
    x = EXPORT_PLACEHOLDER
    code = ["from datasets import load_dataset, load_dataset_builder", ""]
    if "jsonl" in em["formats"]:
        code += [f'ds = load_dataset("{x}", split="train")  # the JSON parts, typed by this card',
                 f'features = load_dataset_builder("{x}").info.features  # this card\'s features',
                 f'ds = load_dataset("json", data_files="{x}/jsonl/*.jsonl.zst", features=features, split="train")']
    if "parquet" in em["formats"]:
        code += [f'ds = load_dataset("parquet", data_dir="{x}/parquet", split="train")  # parts carry their types']
    prose = ["## Loading", "",
             f"With Hugging Face `datasets` (`{x}` is this folder):", "", "```python", *code, "```", ""]
    if "jsonl" in em["formats"]:
        prose += ["JSON has no types: without `features=`, `load_dataset(\"json\", ...)` types every part by the "
                  "first one (a first part whose dates are all empty types `date` as `null`, and the next part "
                  "fails: \"Couldn't cast array of type timestamp[s] to null\"), and reads `float32`/`int32`/`date32` "
                  "columns as `float64`/`int64`/`timestamp`. `load_dataset(\"" + x + "\", data_dir=\"jsonl\")` "
                  "ignores this card the same way.", ""]
    return prose


def _readme(em: dict) -> str:
    sel = em["selection"]
    what = ("one document per near-duplicate cluster (`duplicate_of IS NULL`)" if em["level"] == "document" else
            "leaf sections (no section has them as `parent_id`) with `duplicate_of IS NULL`, of the documents "
            "the document filter keeps")
    bounds = [f"`{k}` ≥ {v:g}" for k, v in sorted(sel["min"].items())] + \
             [f"`{k}` ≤ {v:g}" for k, v in sorted(sel["max"].items())]
    lines = [
        *_front_matter(em),
        f"# Export of {em['dataset']} {em['release_version']}",
        "",
        f"From release **{em['release_version']}** (content hash `{em['release_content_hash']}`), "
        f"level **{em['level']}**: {what}.",
        "",
        f"- rows: {em['rows']}",
        f"- excluded flags: {', '.join(sel['exclude_flags']) or 'none'}",
        f"- scripts: {', '.join(sel['scripts']) or 'all'}",
        f"- length: at least {sel['min_chars']} characters"
        + (f", at most {sel['max_chars']}" if sel["max_chars"] is not None else ""),
        f"- signal bounds: {', '.join(bounds) or 'none'}",
        "",
        "Columns `id` and `text` first (datatrove's default keys), then the metadata of the release table. "
        "`best_containment` is the largest share of this text found in one other item (from `duplicates`).",
        "",
        *_loading(em),
        "## Files",
        "",
        "| file | rows | sha256 |",
        "|---|---:|---|",
        *[f"| {f['path']} | {f['rows']} | `{f['sha256']}` |" for f in em["files"]],
        "",
    ]
    return "\n".join(lines)
