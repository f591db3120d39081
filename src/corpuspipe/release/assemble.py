"""Assemble a release from a finished build, streaming: one shard in memory at a time.

The last pass's shard files are read in shard order; each batch becomes rows of ``documents``,
``sections`` and ``edits`` (sorted by id within the batch; one row group holds several batches),
joined with the near-duplicate clusters, and appended to one Parquet file per table while each
table's digest is computed on the fly.  Rows are therefore in a deterministic order — shard by
shard, by id within a shard — without a global sort (which would need the whole corpus or an
external sort).

Versions are decided from content, but the version is also written into every Parquet file's
metadata.  So: an unchanged build (same code, config and inputs: the *build key*) returns the
existing release without writing anything; otherwise the tables are written under the version a
row change would get, and only when the digests then show that no row changed (a metadata-only
change: patch, or nothing at all) are they written again under the right version.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
import shutil
import tempfile
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpuspipe import __version__
from corpuspipe.core import schemas
from corpuspipe.core import memory
from corpuspipe.core.config import PipelineConfig
from corpuspipe.core.io import file_sha256, write_json
from corpuspipe.core.records import QuarantineEntry, SourceInfo
from corpuspipe.release import card, changelog, report, stage_report, versioning
from corpuspipe.release import writer as rel


class ReleaseExists(Exception):
    """The version being written already exists with different content (releases are immutable)."""


class EmptyRelease(Exception):
    """The build found no document to release (refused unless allow_empty)."""


@dataclass
class Assembled:
    release_dir: Path
    version: str
    status: str  # written | unchanged
    figures: dict | None = None  # report.key_figures of a written release (None when unchanged)


def build_key(build: Any, cfg: PipelineConfig) -> str:
    """Everything the release's content depends on: code, config (with rules files), every shard's
    final key and the corpus decisions, and what discovery rejected."""
    from corpuspipe.pipeline import code_fingerprint

    h = hashlib.sha256(f"{code_fingerprint()}\0{cfg.config_hash()}\0".encode())
    for r in build.passes[-1]:
        h.update(r["key"].encode() + b"\0")
    for name in sorted(build.reduces):
        h.update(f"{name}:{build.reduces[name]['key']}\0".encode())
    h.update(json.dumps([q.__dict__ for q in build.quarantine], sort_keys=True, default=str).encode())
    return h.hexdigest()


# Build keys whose tables came out identical to an existing release (a code or config change that
# changed no row): the release's manifest keeps the key it was built with, so without this every
# later re-run wrote all tables again only to find the same digests (8 s at 100 MB).  Beside the
# releases, not in them; a missing or unreadable file only costs that one rewrite.
_SAME_AS = ".same-builds.json"
_SAME_AS_KEEP = 32


def _same_builds(out_root: Path) -> dict[str, str]:
    """build key -> release directory name, oldest first."""
    try:
        rows = json.loads((Path(out_root) / _SAME_AS).read_text(encoding="utf-8"))["builds"]
        return {str(k): str(v) for k, v in rows}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _remember_same(out_root: Path, bkey: str, release_dir: Path) -> None:
    d = _same_builds(out_root)
    d.pop(bkey, None)
    d[bkey] = Path(release_dir).name
    write_json(Path(out_root) / _SAME_AS, {"builds": [[k, v] for k, v in d.items()][-_SAME_AS_KEEP:]})


def _latest(out_root: Path) -> tuple[Path | None, dict | None]:
    """The latest release's directory and manifest (None, None before the first)."""
    previous_dir = versioning.latest_release(Path(out_root))
    return previous_dir, (versioning.read_manifest(previous_dir) if previous_dir else None)


def _same_as(previous_dir: Path | None, previous: dict | None, bkey: str, out_root: Path,
             version: str | None) -> Assembled | None:
    """``previous`` as the answer when it was built from ``bkey`` (same code, config, inputs and
    corpus decisions) or ``bkey`` already gave its tables, and ``version`` asks for no other."""
    if previous is None or version not in (None, previous["version"]):
        return None
    if previous.get("build_key") == bkey or _same_builds(out_root).get(bkey) == previous_dir.name:
        return Assembled(previous_dir, previous["version"], "unchanged")
    return None


def unchanged_release(build: Any, cfg: PipelineConfig, out_root: Path, version: str | None) -> Assembled | None:
    """The latest release under ``out_root`` when this build would write nothing new (``_same_as``)."""
    return _same_as(*_latest(out_root), build_key(build, cfg), out_root, version)


def _write_tables(tmp: Path, build: Any, cfg: PipelineConfig, version: str, quarantine: list[QuarantineEntry]):
    dedup = build.reduces.get("dedup", {}).get("fact") or {}
    doc_cl = rel._Clusters((dedup.get("document") or {}).get("clusters"))
    sec_cl = rel._Clusters((dedup.get("section") or {}).get("clusters"))
    streams = {name: rel.TableStream(tmp / rel.DATA_FILES[name], name, cfg, version) for name in schemas.TABLES}
    flags: dict[str, int] = {}
    levels: dict[str, int] = {}
    try:
        for tables in _shard_tables(build.passes[-1], doc_cl, sec_cl):
            for name, t in tables.items():
                streams[name].add(t)
            for f, n in _value_counts(pc.list_flatten(tables["documents"]["flags"])):
                flags[f] = flags.get(f, 0) + n
            for lv, n in _value_counts(tables["sections"]["level"]):
                levels[str(lv)] = levels.get(str(lv), 0) + n
        for level in ("document", "section"):
            path = (dedup.get(level) or {}).get("pairs")
            if path and Path(path).is_file():
                pf = pq.ParquetFile(path)
                for i in range(pf.num_row_groups):
                    streams["duplicates"].add(pf.read_row_group(i))
        streams["quarantine"].add(rel.quarantine_table(quarantine))
        outputs = [streams[n].close() for n in sorted(streams)]
    except BaseException:
        for s in streams.values():
            try:
                s.writer.close()
            except Exception:  # noqa: BLE001  (already failing; keep the first error)
                pass
        raise
    digests = {n: streams[n].digest.hexdigest() for n in streams}
    return outputs, digests, dict(sorted(flags.items())), dict(sorted(levels.items()))


def _shard_tables(results: list[dict], doc_cl: Any, sec_cl: Any) -> Iterator[dict[str, pa.Table]]:
    """``batch_tables`` of every row group of the last pass's shard files, in order, each computed
    in a helper thread while the caller writes the one before.

    Reading a row group (Parquet decoding of text and nested edit/section lists) and writing the
    release's row groups (encoding, zstd) both run in Arrow's C++ without the GIL; one after the
    other they were ~8 of the writer's ~21 s on the 100 MB crawl.  One group ahead is enough to
    overlap them, and bounds the extra memory to one group's tables.  The order of the yielded
    tables, hence every byte written, is the serial order."""
    jobs = [(r["essays"], i) for r in results for i in range(pq.ParquetFile(r["essays"]).num_row_groups)]

    def make(path: str, i: int) -> dict[str, pa.Table]:
        group = pq.ParquetFile(path).read_row_group(i, columns=list(rel.SHARD_COLUMNS))
        return rel.batch_tables(group, doc_cl, sec_cl)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="release-read") as ex:
        ahead: deque = deque()
        for job in jobs:
            ahead.append(ex.submit(make, *job))
            if len(ahead) > 1:
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()


def _inputs_and_quarantine(results: list[dict]) -> tuple[list[dict], list[dict]]:
    """The manifest's inputs (sorted by path) and the shards' quarantine entries, read from the
    shards' sidecar files one at a time: only the compact input rows the manifest needs stay (a
    SourceInfo per file plus its dict was ~2.5 KB a file in the writer's heap before).  Shards hold
    disjoint paths, so merging the per-shard sorted lists equals sorting all of them."""
    from corpuspipe.pipeline import shard_files

    per_shard: list[list[dict]] = []
    quarantine: list[dict] = []
    for r in results:
        sources, q = shard_files(r)
        per_shard.append(sorted(rel.source_inputs(SourceInfo(**s) for s in sources), key=lambda i: i["path"]))
        quarantine.extend(q)
    return list(heapq.merge(*per_shard, key=lambda i: i["path"])), quarantine


def _value_counts(arr) -> list[tuple[Any, int]]:
    vc = pc.value_counts(arr)
    return list(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist())) if len(vc) else []


def _trim() -> None:
    memory.trim()


def _returning_memory_pool() -> None:
    memory.returning_memory_pool()


def write_release(
    build: Any,
    cfg: PipelineConfig,
    out_root: Path,
    version: str | None,
    created_at: str,
    wall: Mapping[str, float],
    allow_empty: bool = False,
) -> Assembled:
    """Write the release into a temporary directory, validate it, then rename it into place."""
    _returning_memory_pool()
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    inputs, shard_quarantine = _inputs_and_quarantine(build.passes[-1])
    quarantine = list(build.quarantine)
    quarantine.extend(QuarantineEntry(**q) for q in shard_quarantine)
    del shard_quarantine
    quarantine.extend(stage_report.stage_quarantine(build))
    quarantine.sort(key=lambda q: (q.path, q.line or 0, q.reason))
    n_docs = sum(r["essay_count"] for r in build.passes[-1])
    if n_docs == 0 and not allow_empty:
        raise EmptyRelease(
            f"no documents to release ({len(quarantine)} inputs quarantined); nothing was written "
            "(pass --allow-empty to write an empty release)")

    bkey = build_key(build, cfg)
    previous_dir, previous = _latest(out_root)  # the manifest is read once (34 MB of JSON at 1.3 GB)
    same = _same_as(previous_dir, previous, bkey, out_root, version)
    if same is not None:
        return same
    schema_fp = versioning.schema_fingerprint(schemas.TABLES)
    metadata_digest = versioning.metadata_digest(cfg.model_dump(mode="json"), __version__, inputs)

    # provisional: the version a row change would get (checked against the digests below)
    if version is not None:
        provisional = version
    elif previous is None:
        provisional = versioning.FIRST_VERSION
    else:
        prev_fp = previous.get("schema_fingerprint")
        provisional = versioning.bump_version(previous["version"], "major" if prev_fp != schema_fp else "minor")

    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{provisional}-", dir=out_root))
    os.chmod(tmp, 0o755)  # mkdtemp makes 0700; a release is for everyone to read
    try:
        outputs, digests, flags, levels = _write_tables(tmp, build, cfg, provisional, quarantine)
        _trim()
        final_version, bump = versioning.decide_version(previous, schema_fp, digests, metadata_digest,
                                                        requested=version)
        if bump == "none" and previous_dir is not None and version is None:
            shutil.rmtree(tmp, ignore_errors=True)
            _remember_same(out_root, bkey, previous_dir)
            return Assembled(previous_dir, previous["version"], "unchanged")
        if final_version != provisional:  # metadata-only change: the version in the files must change too
            for p in tmp.glob("*.parquet"):
                p.unlink()
            outputs, digests, flags, levels = _write_tables(tmp, build, cfg, final_version, quarantine)
        final = out_root / final_version
        if final.exists():
            existing = versioning.read_manifest(final)
            if existing.get("table_digests") == digests and existing.get("schema_fingerprint") == schema_fp:
                shutil.rmtree(tmp, ignore_errors=True)
                return Assembled(final, final_version, "unchanged")
            raise ReleaseExists(f"{final}: version {final_version} already exists with different content")

        stages, stage_entries = stage_report.stage_reports(build, cfg)
        counts = {o["path"].removesuffix(".parquet"): o["rows"] for o in outputs}
        parts = rel.ManifestParts(
            created_at=created_at,
            inputs=inputs,
            stages=stages,
            quarantine=quarantine,
            extra={
                "build_key": bkey,
                "orchestration": {"wall_seconds": {k: round(v, 3) for k, v in sorted(wall.items())},
                                  "shards": len(build.passes[-1]),
                                  "passes": len(build.passes),
                                  # every parallel step that ran: tasks, CPU and wall seconds inside them
                                  "steps": list(getattr(build, "steps", []))},
                "schema_fingerprint": schema_fp,
                "table_digests": digests,
                "metadata_digest": metadata_digest,
                "version_bump": bump,
                "previous_version": previous["version"] if previous else None,
                **stage_entries,  # dedup, removals_per_rule, normalize, redactions: each stage's own
                "flags": flags,
                "counts": counts,
            },
        )
        manifest = rel.build_manifest(cfg, final_version, outputs, parts)
        write_json(tmp / rel.MANIFEST, manifest)
        rel.validate_release(tmp)
        _trim()
        # The card, Croissant, report and changelog are part of the release when it first becomes visible.
        stats = report.collect_stats(tmp, manifest)  # once, for the card, the report and the flow's key figures
        card.write_card(tmp, stats)
        card.write_croissant(tmp, manifest)
        report.write_report(tmp, stats)
        figures = report.key_figures(tmp, stats)
        del stats
        _trim()
        if previous_dir is not None:
            changelog.write_changelog(previous_dir, tmp)
            _trim()
        hashed = {o["path"]: o for o in outputs}  # the tables were hashed as they were closed
        manifest["files"] = [
            {k: v for k, v in hashed[p.name].items() if k != "rows"} if p.name in hashed
            else {"path": p.name, "bytes": p.stat().st_size, "sha256": file_sha256(p)}
            for p in sorted(tmp.iterdir()) if p.is_file() and p.name != rel.MANIFEST
        ]
        write_json(tmp / rel.MANIFEST, manifest)
        os.replace(tmp, final)
        versioning.seal_release(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    versioning.register_release(out_root, final_version, manifest)
    return Assembled(final, final_version, "written", figures)
