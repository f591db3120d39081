"""The dataset card (README.md, Hugging Face style) and the Croissant description of a release.

Both are derived from MANIFEST.json and the release's statistics after the Parquet parts exist, so
they can never describe different data from what is shipped (sha256 values and row counts come from
the manifest, features from the release contract, ``core.schemas``, which every part is checked
against).  A table is a folder of parts (``documents/part-00000.parquet``...): each config and record
set names the folder's glob, which Hugging Face ``datasets``, DuckDB and Spark all load as one table.

A table without rows gets no config: ``load_dataset`` of a config whose files hold no row fails
("Instruction 'train' corresponds to no data!"), so the card only lists configs that load.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from corpuspipe.core import schemas
from corpuspipe.release.layout import table_glob, table_outputs
from corpuspipe.release.report import FLAG_MEANINGS, _stage_rows, _version_line
from corpuspipe.release.stats import collect_stats
from corpuspipe.release.versioning import atomic_write_text, read_manifest

CARD_NAME = "README.md"
CROISSANT_NAME = "croissant.json"
DEFAULT_TABLE = "documents"

TABLE_DESCRIPTIONS: dict[str, str] = {t.name: t.description for t in schemas.RELEASE_TABLES}

COLUMN_DESCRIPTIONS: dict[str, dict[str, str]] = {
    "documents": {
        "doc_id": "Stable document id.",
        "text": "Cleaned essay text (Simplified script when conversion is on).",
        "text_sha256": "sha256 of `text` (UTF-8).",
        "script": "Script of the source text: simplified, traditional or mixed.",
        "trad_ratio": "Share of Traditional-only characters among script-specific characters in the source.",
        "cluster_id": "Near-duplicate cluster; every document belongs to exactly one.",
        "duplicate_of": "doc_id of the cluster's kept document, or null for the kept one.",
        "flags": "Quality flags such as mojibake; the text is kept but may be damaged.",
        "date": "Date from the essay's byline (date32), null when there is none.",
        "crawled_at": "The crawler's time (UTC timestamp, ms); a time without an offset is read as UTC; null "
                      "when absent or unreadable (then flagged `unparsed_crawled_at`).",
        "cluster_size": "Members of the document's near-duplicate cluster (1 = no copy found).",
    },
    "sections": {"level": "Outline depth, 1 = top level.", "path": "Dotted position in the outline."},
}

_HF_DTYPES = {
    "string": "string", "large_string": "string", "int8": "int8", "int16": "int16", "int32": "int32",
    "int64": "int64", "uint8": "uint8", "uint16": "uint16", "uint32": "uint32", "uint64": "uint64",
    "float": "float32", "float16": "float16", "double": "float64", "bool": "bool",
}


def _tables(manifest: Mapping[str, Any]) -> dict[str, list[dict]]:
    """The release's tables (their parts' manifest entries) in a stable order: documents first, then by name."""
    found = table_outputs(manifest)
    return {k: found[k] for k in sorted(found, key=lambda n: (n != DEFAULT_TABLE, n))}


def _schema(name: str, parts: list[dict], release_dir: Path) -> pa.Schema:
    """A table's schema: the contract's (every part is checked against it), else its first part's."""
    if name in schemas.TABLES:
        return schemas.TABLES[name]
    return pq.read_schema(Path(release_dir) / parts[0]["path"])


def _data_files(name: str, parts: list[dict]) -> str:
    """What loads the table: its folder's glob (a 2.x release: its one file)."""
    return table_glob(name) if "/" in str(parts[0]["path"]) else str(parts[0]["path"])


def _release_cfg(manifest: Mapping[str, Any]) -> dict[str, Any]:
    return dict((manifest.get("config") or {}).get("release") or {})


# --------------------------------------------------------------------------- Hugging Face card


def hf_feature(field: pa.Field) -> dict[str, Any]:
    """One `dataset_info.features` entry in the Hub's YAML dialect."""
    t = field.type
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner = _HF_DTYPES.get(str(t.value_type), "string")
        return {"name": field.name, "sequence": inner}
    if pa.types.is_date32(t):
        return {"name": field.name, "dtype": "date32"}
    if pa.types.is_timestamp(t):  # the Hub's spelling: timestamp[ms, tz=UTC]
        return {"name": field.name, "dtype": f"timestamp[{t.unit}" + (f", tz={t.tz}]" if t.tz else "]")}
    return {"name": field.name, "dtype": _HF_DTYPES.get(str(t), "string")}


def size_category(n: int) -> str:
    """The Hub's size_categories bucket for n rows."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]
    for bound, label in bounds:
        if n < bound:
            return label
    return "1B<n<10B"


def card_header(release_dir: Path, stats: Mapping[str, Any] | None = None) -> dict[str, Any]:
    release_dir = Path(release_dir)
    stats = stats or collect_stats(release_dir)
    m = stats["manifest"]
    rc = _release_cfg(m)
    license_ = str(rc.get("license") or "other")
    header: dict[str, Any] = {
        "license": license_,
        "language": ["zh"],
        "pretty_name": str(rc.get("pretty_name") or m.get("dataset") or release_dir.name),
        "task_categories": list(rc.get("task_categories") or ["text-generation"]),
        "size_categories": [size_category(int(stats["documents"]["rows"]))],
        "tags": ["chinese", "essays", "deduplicated", "corpuspipe"],
    }
    if license_ == "other" and rc.get("license_name"):
        header["license_name"] = str(rc["license_name"])
        if rc.get("license_link"):
            header["license_link"] = str(rc["license_link"])
    configs, infos = [], []
    for name, parts in _tables(m).items():
        rows = sum(int(o.get("rows", 0)) for o in parts)
        if not rows:  # a config without rows fails to load ("corresponds to no data"): not listed
            continue
        cfg: dict[str, Any] = {"config_name": name, "data_files": [{"split": "train", "path": _data_files(name, parts)}]}
        if name == DEFAULT_TABLE:
            cfg["default"] = True
        configs.append(cfg)
        size = sum(int(o.get("bytes", 0)) for o in parts)
        infos.append({
            "config_name": name,
            "features": [hf_feature(f) for f in _schema(name, parts, release_dir)],
            "splits": [{"name": "train", "num_bytes": size, "num_examples": rows}],
            "download_size": size,
            "dataset_size": size,
        })
    header["configs"] = configs
    header["dataset_info"] = infos
    return header


def _n(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _md(s: Any) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def render_card(release_dir: Path, stats: Mapping[str, Any] | None = None) -> str:
    """README.md text: YAML header, then what a user must know before training on the data."""
    release_dir = Path(release_dir)
    stats = stats or collect_stats(release_dir)
    m = stats["manifest"]
    d = stats["documents"]
    header = card_header(release_dir, stats)
    rc = _release_cfg(m)
    lines = ["---", yaml.safe_dump(header, sort_keys=False, allow_unicode=True, width=1000).rstrip(), "---", ""]
    lines += [f"# {header['pretty_name']}", ""]
    if rc.get("description"):
        lines += [str(rc["description"]), ""]
    lines += [
        f"Release **{m.get('version')}** of `{m.get('dataset')}`: {_n(d['rows'], 'Chinese essay')} "
        f"({d['rows'] - d['duplicates']:,} after removing near-duplicates), cleaned and split into sections, "
        f"with every edit recorded. Built by corpuspipe {m.get('pipeline', {}).get('version', '?')} "
        f"(commit `{m.get('pipeline', {}).get('git_commit', '?')}`) on {m.get('created_at', '?')}.",
        "",
    ]
    for section in (_card_tables, _card_sources, _card_signals, _card_dedup, _card_caveats, _card_provenance):
        lines += section(stats)
    return "\n".join(lines)


def _card_tables(stats: Mapping[str, Any]) -> list[str]:
    lines = ["## Tables", "", "| table | files | rows | bytes | what it holds |", "|---|---|---:|---:|---|"]
    for name, parts in _tables(stats["manifest"]).items():
        rows = sum(int(o.get("rows", 0)) for o in parts)
        size = sum(int(o.get("bytes", 0)) for o in parts)
        files = f"`{_data_files(name, parts)}` ({_n(len(parts), 'part')})" if len(parts) > 1 or "/" in parts[0]["path"] \
            else f"`{parts[0]['path']}`"
        lines.append(f"| `{name}` | {files} | {rows:,} | {size:,} | {TABLE_DESCRIPTIONS.get(name, '')}"
                     + ("" if rows else " (no rows: no config)") + " |")
    lines += ["", "Every file's sha256 is in `MANIFEST.json`; `corpuspipe verify` checks them all."]
    lines += ["", "Columns of `documents` worth knowing:", ""]
    for col, desc in COLUMN_DESCRIPTIONS["documents"].items():
        lines.append(f"- `{col}`: {desc}")
    return lines + [
        "", "## Using it", "",
        "The deduplicated view keeps one document per near-duplicate cluster:", "",
        "```sql", "SELECT * FROM read_parquet('documents/*.parquet') WHERE duplicate_of IS NULL;", "```", "",
        "```python", "from datasets import load_dataset",
        "docs = load_dataset(\"parquet\", data_files=\"documents/*.parquet\", split=\"train\")",
        "docs = docs.filter(lambda r: r[\"duplicate_of\"] is None)", "```", "",
        "From the Hub, `load_dataset(REPO)` loads `documents` and `load_dataset(REPO, \"sections\")` another "
        "table (the configs above).", "",
    ]


def _card_sources(stats: Mapping[str, Any]) -> list[str]:
    inputs = stats["inputs"]  # collect_stats's summary (the manifest it keeps has no inputs list)
    lines = [
        "## Sources", "",
        f"{inputs['files']:,} input files, {inputs['bytes']:,} bytes, "
        f"{inputs['essays']:,} essays found. Encodings: "
        + (", ".join(f"{_md(k)} ({v})" for k, v in sorted(inputs["encodings"].items())) or "n/a") + ". "
        "Every input's path, size and sha256 is listed in MANIFEST.json; every document keeps "
        "`source_path`, `source_sha256` and `essay_index`.",
        "",
        "## Cleaning steps", "",
        "| stage | seconds | counts |", "|---|---:|---|",
    ]
    timing, counters = _stage_rows(stats["manifest"].get("stages") or {})
    for stage, seconds, _mb, _rate in timing:
        counts = ", ".join(f"{k} {c:,}" if isinstance(c, int) else f"{k} {c}" for st, k, c in counters if st == stage)
        lines.append(f"| {_md(stage)} | {seconds:.2f} | {_md(counts) or '–'} |")
    return lines


def _card_signals(stats: Mapping[str, Any]) -> list[str]:
    from corpuspipe.stages.quality import SIGNALS

    lines = ["", "## Quality signals", "",
             "Measured per document on the clean text and stored as float32 columns; nothing is removed for them "
             "(`corpuspipe export --min NAME=X --max NAME=Y` filters on them).", "",
             "| column | meaning (range) | min | median | max |", "|---|---|---:|---:|---:|"]
    observed = {r["signal"]: r for r in stats.get("signals") or []}
    for name, meaning in SIGNALS.items():
        o = observed.get(name)
        nums = (f"{o['min']:.3f} | {o['median']:.3f} | {o['max']:.3f}" if o else "– | – | –")
        lines.append(f"| `{name}` | {_md(meaning)} | {nums} |")
    lines += ["| `cluster_size` | documents in the near-duplicate cluster (≥ 1) | | | |",
              "| `best_containment` | largest share of this document's 5-grams found in one other document "
              "(0–1); computed by `corpuspipe export` and `show` from `duplicates`, not a column here "
              "| | | |"]
    lines += ["", "Removals per rule (characters or spans removed; see `edits` for each one):", ""]
    for rule, n in list(stats["removals_per_rule"].items())[:25] or [("none", 0)]:
        lines.append(f"- `{_md(rule)}`: {int(n):,}")
    if stats["redactions"]:
        lines += ["", "Personal data redacted: " + ", ".join(f"{_md(k)} {int(v):,}" for k, v in
                                                            stats["redactions"].items()) + "."]
    return lines


def _card_dedup(stats: Mapping[str, Any]) -> list[str]:
    m, d = stats["manifest"], stats["documents"]
    dd = {**((m.get("config") or {}).get("dedup") or {}), **(m.get("dedup") or {})}
    lines = [
        "", "## Deduplication", "",
        f"MinHash over {dd.get('shingle', '?')} {dd.get('ngram', '?')}-grams, {dd.get('num_perm', '?')} "
        f"permutations, threshold {dd.get('threshold', '?')}"
        + (f", {dd.get('bands')} bands × {dd.get('rows')} rows" if dd.get("bands") else "")
        + f". {_n(d['clusters'], 'cluster')}, {d['multi_clusters']:,} with more than one member; "
        f"`duplicate_of` names the kept document for {_n(d['duplicates'], 'other document')}. Pairs with "
        "their Jaccard and containment scores are in `duplicates`.",
        "",
        "## Script mix", "",
    ]
    return lines + [f"- {_md(script)}: {n:,}" for script, n in d["scripts"].items()]


def _card_caveats(stats: Mapping[str, Any]) -> list[str]:
    cfg = stats["manifest"].get("config") or {}
    flags = stats["documents"]["flags"]
    lines = ["", "## Caveats", "",
             f"- **Mojibake**: {_n(flags.get('mojibake', 0), 'document')} flagged `mojibake` (text that was decoded "
             "with the wrong encoding upstream and cannot be repaired). They are kept; filter on `flags` to drop them."]
    for flag, n in flags.items():
        if flag != "mojibake":
            lines.append(f"- `{_md(flag)}` flag: {_n(n, 'document')}. {_md(FLAG_MEANINGS.get(flag, ''))}".rstrip())
    q = stats["quarantine"]
    lines.append(f"- **Quarantine**: {q['count']:,} input files or lines were not converted ("
                 + (", ".join(f"{_md(r)}: {n}" for r, n in q["by_reason"].items()) or "none") + ").")
    if (cfg.get("normalize") or {}).get("convert_traditional", True):
        lines.append("- Traditional-script essays were converted to Simplified; `script` and `trad_ratio` "
                     "describe the source, not the output.")
    else:
        lines.append("- Traditional-script essays were kept in Traditional script; see `script`.")
    lines.append("- Near-duplicates are marked, not removed: use the deduplicated view above for training.")
    lines.append("- Personal data is redacted by patterns; patterns miss things. Review before redistribution.")
    return lines


def _card_provenance(stats: Mapping[str, Any]) -> list[str]:
    m = stats["manifest"]
    return [
        "", "## Provenance", "",
        f"- version: {m.get('version')} ({_version_line(m)})",
        f"- content hash: `{m.get('content_hash')}`",
        f"- schema: {m.get('schema_version')} (fingerprint `{str(m.get('schema_fingerprint'))[:16]}…`)",
        f"- config hash: `{m.get('config_hash')}`",
        "- `MANIFEST.json` holds the full configuration, library versions, inputs and outputs; "
        "`croissant.json` describes the files in Croissant; `CHANGELOG.md` lists the changes from the "
        "previous release (for a first release: what it contains); `report.html` shows examples of every rule, "
        "flag and the largest clusters.",
        "",
    ]


def initial_changelog(release_dir: Path, stats: Mapping[str, Any] | None = None) -> str:
    """CHANGELOG.md of a first release: there is nothing to compare with, so it says what is in it
    (the README promises a changelog in every release)."""
    stats = stats or collect_stats(release_dir)
    m = stats["manifest"]
    lines = [f"# Changelog — {m.get('dataset')} {m.get('version')}", "",
             "First release: no previous release to compare with. It holds:", ""]
    for name, n in sorted(stats["rows"].items()):
        lines.append(f"- `{name}`: {n:,} rows")
    lines += ["", f"Schema {m.get('schema_version')}, content hash `{m.get('content_hash')}`.", ""]
    return "\n".join(lines)


def write_card(release_dir: Path, stats: Mapping[str, Any] | None = None) -> Path:
    """Write <release>/README.md and return its path; a first release also gets its CHANGELOG.md
    here (a later one gets the diff from ``changelog.write_changelog``, which runs after this).

    ``stats``: :func:`collect_stats` of this release, when the caller already has them (the writer
    computes them once for the card, the changelog, the report and the flow's key figures: they
    were computed four times, each a full read of the documents table)."""
    path = Path(release_dir) / CARD_NAME
    stats = stats or collect_stats(release_dir)
    atomic_write_text(path, render_card(release_dir, stats))
    m = stats["manifest"]  # as read by collect_stats ({} without a manifest)
    if not m.get("previous_version") and not (Path(release_dir) / "CHANGELOG.md").exists():
        atomic_write_text(Path(release_dir) / "CHANGELOG.md", initial_changelog(release_dir, stats))
    return path


# --------------------------------------------------------------------------- Croissant


def _croissant_type(t: pa.DataType) -> tuple[Any, bool]:
    """(Croissant data type, is_array) for an Arrow type."""
    import mlcroissant as mlc

    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner, _ = _croissant_type(t.value_type)
        return inner, True
    if pa.types.is_date(t):
        return mlc.DataType.DATE, False
    if pa.types.is_timestamp(t):
        return mlc.DataType.DATETIME, False
    table = {
        "string": mlc.DataType.TEXT, "large_string": mlc.DataType.TEXT, "bool": mlc.DataType.BOOL,
        "int8": mlc.DataType.INT8, "int16": mlc.DataType.INT16, "int32": mlc.DataType.INT32,
        "int64": mlc.DataType.INT64, "uint8": mlc.DataType.UINT8, "uint16": mlc.DataType.UINT16,
        "uint32": mlc.DataType.UINT32, "uint64": mlc.DataType.UINT64, "float": mlc.DataType.FLOAT32,
        "double": mlc.DataType.FLOAT64, "halffloat": mlc.DataType.FLOAT16,
    }
    return table.get(str(t), mlc.DataType.TEXT), False


def build_croissant(release_dir: Path, manifest: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Croissant 1.1 JSON-LD for the release, built with mlcroissant so it validates by construction.
    Every part is a ``FileObject`` with its sha256 and size; each table is a ``FileSet`` (its folder's
    glob) that its record set reads, so mlcroissant loads the parts as one table, in order.
    ``manifest``: the release's manifest if the caller holds it (34 MB of JSON at 1.3 GB of input)."""
    import mlcroissant as mlc  # heavy import (rdflib, networkx): only when asked

    release_dir = Path(release_dir)
    m = manifest if manifest is not None else read_manifest(release_dir)
    rc = _release_cfg(m)
    ctx = mlc.Context(conforms_to="http://mlcommons.org/croissant/1.1")
    distribution, record_sets = [], []
    for name, parts in _tables(m).items():
        for out in parts:
            distribution.append(mlc.FileObject(
                ctx=ctx, id=str(out["path"]), name=str(out["path"]), content_url=str(out["path"]),
                encoding_formats=[mlc.EncodingFormat.PARQUET], sha256=str(out["sha256"]),
                content_size=f"{int(out['bytes'])} B", description=f"part {int(out.get('part', 0))} of {name}",
            ))
        files = f"{name}-parts"
        distribution.append(mlc.FileSet(ctx=ctx, id=files, name=files, includes=[_data_files(name, parts)],
                                        encoding_formats=[mlc.EncodingFormat.PARQUET],
                                        description=TABLE_DESCRIPTIONS.get(name)))
        fields = []
        for f in _schema(name, parts, release_dir):
            dtype, is_array = _croissant_type(f.type)
            extra: dict[str, Any] = {"is_array": True, "array_shape": "-1"} if is_array else {}
            fields.append(mlc.Field(
                ctx=ctx, id=f"{name}/{f.name}", name=f.name, data_types=[dtype],
                description=COLUMN_DESCRIPTIONS.get(name, {}).get(f.name),
                source=mlc.Source(ctx=ctx, file_set=files, extract=mlc.Extract(ctx=ctx, column=f.name)),
                **extra,
            ))
        record_sets.append(mlc.RecordSet(ctx=ctx, id=name, name=name, description=TABLE_DESCRIPTIONS.get(name),
                                         fields=fields))
    created = m.get("created_at")
    published = dt.datetime.fromisoformat(str(created).replace("Z", "+00:00")) if created else None
    description = str(rc.get("description") or
                      f"Cleaned, deduplicated Chinese essays with sections, edits and duplicate pairs "
                      f"(release {m.get('version')}, content hash {m.get('content_hash')}).")
    metadata = mlc.Metadata(
        ctx=ctx,
        name=str(m.get("dataset") or release_dir.name),
        description=description,
        license=[str(rc.get("license_link") or rc.get("license") or "other")],
        url=str(rc.get("homepage") or "") or None,
        version=str(m.get("version")),
        date_published=published,
        in_language=["zh"],
        cite_as=str(rc.get("citation") or f"{m.get('dataset')} {m.get('version')} (corpuspipe release)"),
        keywords=["Chinese", "essays", "deduplication", "text corpus"],
        distribution=distribution,
        record_sets=record_sets,
    )
    errors = metadata.ctx.issues.errors
    if errors:
        raise ValueError("Croissant metadata does not validate:\n" + metadata.ctx.issues.report())
    return metadata.to_json()


def write_croissant(release_dir: Path, manifest: Mapping[str, Any] | None = None) -> Path:
    """Write <release>/croissant.json and return its path."""
    path = Path(release_dir) / CROISSANT_NAME
    jsonld = build_croissant(release_dir, manifest)
    atomic_write_text(path, json.dumps(jsonld, ensure_ascii=False, indent=2) + "\n")
    return path
