"""Assemble a release from a finished build: parallel parts, then a small assembly.

The tables are written as parts (``<table>/part-NNNNN.parquet``) by tasks
(:func:`corpuspipe.release.tables.write_part`): one per group of the last pass's shard files for
documents, sections and edits, one per file a stage wrote for its rows (duplicates), one for the
quarantine.  Each task writes, reads back, validates and summarizes its part; this module only
plans the tasks and assembles their results (manifest, table digests combined from the parts',
statistics merged from the parts', card, Croissant, report, changelog, rename).  Rows are in a
deterministic order -- parts in shard order, shard by shard within a part, by id within a shard's
row group -- without a global sort (which would need the whole corpus or an external sort).

:func:`write_steps` is a generator that yields :class:`corpuspipe.core.stage.Tasks` and returns
the :class:`Assembled` release; the release loop (``release/steps.py``) yields its steps like the
build's, so the flow runs them on its runner (worker pool, Prefect tasks, Dask) and this process
only assembles; :func:`write_release` drives it alone (serially by default: tests, tools).  Every runner gives
the same bytes: a task's output depends only on its argument.

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
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generator, Mapping

from corpuspipe import __version__
from corpuspipe.core import memory, schemas
from corpuspipe.config import PipelineConfig
from corpuspipe.core.io import file_sha256, write_json
from corpuspipe.core.records import QuarantineEntry, SourceInfo
from corpuspipe.core.stage import Tasks, drive, serial_tasks
from corpuspipe.release import card, changelog, digest, report, stage_report, stats, tables, validate, versioning
from corpuspipe.release import manifest as rel
from corpuspipe.release.layout import table_outputs
from corpuspipe.release.validate import ReleaseInvalid


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
    from corpuspipe.release.verify import load_manifest

    previous_dir = versioning.latest_release(Path(out_root))
    return previous_dir, (load_manifest(previous_dir) if previous_dir else None)  # unreadable: ReleaseDamaged


def _same_as(previous_dir: Path | None, previous: dict | None, bkey: str, out_root: Path,
             version: str | None) -> Assembled | None:
    """``previous`` as the answer when it was built from ``bkey`` (same code, config, inputs and
    corpus decisions) or ``bkey`` already gave its tables, and ``version`` asks for no other."""
    if previous is None or version not in (None, previous["version"]):
        return None
    if previous.get("build_key") == bkey or _same_builds(out_root).get(bkey) == previous_dir.name:
        from corpuspipe.release.verify import ReleaseDamaged, check_files

        # the answer is that release: its files must still be what its manifest says (sizes only:
        # a stat per file keeps an unchanged re-run instant; a new release's changelog reads and
        # checks every byte of it)
        problems = check_files(previous_dir, previous, digest=False)
        if problems:
            raise ReleaseDamaged(f"release {previous_dir} is damaged: {problems[0]}; "
                                 f"`corpuspipe verify {previous_dir}` lists every file")
        return Assembled(previous_dir, previous["version"], "unchanged")
    return None


def unchanged_release(build: Any, cfg: PipelineConfig, out_root: Path, version: str | None) -> Assembled | None:
    """The latest release under ``out_root`` when this build would write nothing new (``_same_as``)."""
    return _same_as(*_latest(out_root), build_key(build, cfg), out_root, version)


# -- the tables: parts written by tasks ----------------------------------------------------------------
def release_inputs(build: Any) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(joins, rows): table -> files, what every corpus stage contributes to the release tables
    (``CorpusStage.release_inputs``), in the pipeline's stage order; no stage is known by name."""
    from corpuspipe.core.stage import CorpusStage

    joins: dict[str, list[str]] = {}
    rows: dict[str, list[str]] = {}
    for st in build.stages:
        if isinstance(st, CorpusStage):
            given = st.release_inputs((build.reduces.get(st.name) or {}).get("fact"))
            for out, part in ((joins, given.joins), (rows, given.rows)):
                for table, files in part.items():
                    out.setdefault(table, []).extend(str(f) for f in files)
    return joins, rows


def plan_parts(build: Any, quarantine: list[QuarantineEntry]) -> list[dict]:
    """One job per part (:func:`tables.write_part`'s argument, less the folder and options), in the
    order of :data:`schemas.RELEASE_TABLES`: shard tables by groups of the last pass's shard files,
    a stage table by the files its stages wrote, the quarantine as one part."""
    joins, rows = release_inputs(build)
    wanted = validate.first_pairs([Path(p) for p in rows.get("duplicates", []) if Path(p).is_file()])
    jobs: list[dict] = []
    shard_tables = [t.name for t in schemas.RELEASE_TABLES if t.origin == schemas.FROM_SHARDS]
    groups = tables.shard_groups([r["essays"] for r in build.passes[-1]])
    jobs += [{"origin": schemas.FROM_SHARDS, "tables": shard_tables, "index": i, "shards": g, "wanted": wanted,
              "joins": {t: joins.get(t, []) for t in shard_tables}} for i, g in enumerate(groups)]
    for t in schemas.RELEASE_TABLES:
        if t.origin == schemas.FROM_STAGES:
            files = rows.get(t.name) or [None]
            jobs += [{"origin": schemas.FROM_STAGES, "tables": [t.name], "index": i, "files": [f] if f else []}
                     for i, f in enumerate(files)]
    jobs.append({"origin": schemas.FROM_QUARANTINE, "tables": ["quarantine"], "index": 0,
                 "rows": [q.__dict__ for q in quarantine]})
    return jobs


def _write_parts(tmp: Path, jobs: list[dict], cfg: PipelineConfig, version: str
                 ) -> Generator[Tasks, list, tuple[list[dict], dict[str, str], list[dict]]]:
    """Write every part (one task each); (outputs, table digests, the parts' read-back reports)."""
    rc = cfg.release
    opts = {"config_hash": cfg.config_hash(), "dataset": rc.dataset, "version": version,
            "compression": rc.compression, "compression_level": rc.compression_level,
            "row_group_size": rc.row_group_size}
    results = yield Tasks("write: tables", tables.write_part, [({**job, "dir": str(tmp), "opts": opts},)
                                                              for job in jobs])
    outputs = sorted((o for r in results for o in r["outputs"]), key=lambda o: o["path"])
    digests = {name: digest.combine([(int(o["rows"]), o["digest"]) for o in parts])
               for name, parts in table_outputs({"outputs": outputs}).items()}
    reports = [r["report"] for r in results]
    problems = [p for r in reports for p in r["problems"]] + validate.check_ids(reports)
    if problems:
        raise ReleaseInvalid("; ".join(problems))
    return outputs, digests, reports


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
    run_tasks: Callable[[Tasks], list] = serial_tasks,
) -> Assembled:
    """Write the release (:func:`write_steps`), every parallel step run by ``run_tasks``.  A step
    that fails closes the generator, which removes the temporary directory."""
    steps = write_steps(build, cfg, out_root, version, created_at, wall, allow_empty)
    try:
        return drive(steps, run_tasks)
    finally:
        steps.close()


def _timed(steps: Generator[Tasks, list, Any], seconds: dict[str, float]) -> Generator[Tasks, list, Any]:
    """``yield from steps``, adding each step's wall seconds (its tasks, on whatever runner) to
    ``seconds`` by label: the manifest's ``orchestration.release_seconds``."""
    try:
        step = next(steps)
        while True:
            t0 = time.perf_counter()
            result = yield step
            seconds[step.label] = seconds.get(step.label, 0.0) + time.perf_counter() - t0
            step = steps.send(result)
    except StopIteration as stop:
        return stop.value


@dataclass
class _Build:
    """What the assembly needs besides the build: inputs, quarantine, versions and digests."""

    out_root: Path
    inputs: list[dict]
    quarantine: list[QuarantineEntry]
    bkey: str
    previous_dir: Path | None
    previous: dict | None
    schema_fp: str
    metadata_digest: str


def _prepare(build: Any, cfg: PipelineConfig, out_root: Path, allow_empty: bool) -> _Build:
    _returning_memory_pool()
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    inputs, shard_quarantine = _inputs_and_quarantine(build.passes[-1])
    quarantine = list(build.quarantine)
    quarantine.extend(QuarantineEntry(**q) for q in shard_quarantine)
    del shard_quarantine
    quarantine.extend(stage_report.stage_quarantine(build))  # what a corpus decision rejects whole
    quarantine.sort(key=lambda q: (q.path, q.line or 0, q.reason))
    n_docs = sum(r["essay_count"] for r in build.passes[-1])
    if n_docs == 0 and not allow_empty:
        raise EmptyRelease(
            f"no documents to release ({len(quarantine)} inputs quarantined); nothing was written "
            "(pass --allow-empty to write an empty release)")
    previous_dir, previous = _latest(out_root)  # the manifest is read once (34 MB of JSON at 1.3 GB)
    return _Build(out_root, inputs, quarantine, build_key(build, cfg), previous_dir, previous,
                  versioning.schema_fingerprint(schemas.TABLES),
                  versioning.metadata_digest(cfg.model_dump(mode="json"), __version__, inputs))


def _provisional(b: _Build, version: str | None) -> str:
    """The version a row change would get (checked against the digests once the parts exist)."""
    if version is not None:
        return version
    if b.previous is None:
        return versioning.FIRST_VERSION
    prev_fp = b.previous.get("schema_fingerprint")
    return versioning.bump_version(b.previous["version"], "major" if prev_fp != b.schema_fp else "minor")


def write_steps(build: Any, cfg: PipelineConfig, out_root: Path, version: str | None, created_at: str,
                  wall: Mapping[str, float], allow_empty: bool = False) -> Generator[Tasks, list, Assembled]:
    """Write the release into a temporary directory (its parts by tasks), then rename it into place."""
    t_start = time.perf_counter()
    b = _prepare(build, cfg, out_root, allow_empty)
    same = _same_as(b.previous_dir, b.previous, b.bkey, b.out_root, version)
    if same is not None:
        return same
    provisional = _provisional(b, version)
    jobs = plan_parts(build, b.quarantine)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{provisional}-", dir=b.out_root))
    os.chmod(tmp, 0o755)  # mkdtemp makes 0700; a release is for everyone to read
    try:
        seconds: dict[str, float] = {}
        outputs, digests, reports = yield from _timed(_write_parts(tmp, jobs, cfg, provisional), seconds)
        _trim()
        final_version, bump = versioning.decide_version(b.previous, b.schema_fp, digests, b.metadata_digest,
                                                        requested=version)
        if bump == "none" and b.previous_dir is not None and version is None:
            shutil.rmtree(tmp, ignore_errors=True)
            _remember_same(b.out_root, b.bkey, b.previous_dir)
            return Assembled(b.previous_dir, b.previous["version"], "unchanged")
        if final_version != provisional:  # metadata-only change: the version in the files must change too
            for name in schemas.TABLES:
                shutil.rmtree(tmp / name, ignore_errors=True)
            outputs, digests, reports = yield from _timed(_write_parts(tmp, jobs, cfg, final_version), seconds)
        final = b.out_root / final_version
        if final.exists():
            existing = versioning.read_manifest(final)
            if existing.get("table_digests") == digests and existing.get("schema_fingerprint") == b.schema_fp:
                shutil.rmtree(tmp, ignore_errors=True)
                return Assembled(final, final_version, "unchanged")
            raise ReleaseExists(f"{final}: version {final_version} already exists with different content")
        manifest = _manifest(build, cfg, b, final_version, bump, created_at, wall, outputs, digests, reports)
        figures = yield from _timed(_derived_files(tmp, manifest, reports, b.previous_dir), seconds)
        hashed = {o["path"]: o for o in outputs}  # the parts were hashed as they were closed
        manifest["files"] = [
            {k: v for k, v in hashed[rel_path].items() if k in ("path", "bytes", "sha256")} if rel_path in hashed
            else {"path": rel_path, "bytes": p.stat().st_size, "sha256": file_sha256(p)}
            for p, rel_path in sorted((p, p.relative_to(tmp).as_posix()) for p in tmp.rglob("*") if p.is_file())
            if rel_path != rel.MANIFEST
        ]
        seconds["total"] = time.perf_counter() - t_start  # the rest ran here, in the assembling process
        manifest["orchestration"]["release_seconds"] = {k: round(v, 3) for k, v in sorted(seconds.items())}
        write_json(tmp / rel.MANIFEST, manifest)
        os.replace(tmp, final)
        versioning.seal_release(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    versioning.register_release(b.out_root, final_version, manifest)
    return Assembled(final, final_version, "written", figures)


def _part_counts(reports: list[dict]) -> tuple[dict[str, int], dict[str, int]]:
    """(documents per flag, sections per level) summed over the parts, for the manifest."""
    flags: dict[str, int] = {}
    levels: dict[str, int] = {}
    for r in reports:
        for f, n in r["stats"]["documents"]["flags"].items():
            flags[f] = flags.get(f, 0) + n
        for lv, n in r["stats"]["sections"]["levels"].items():
            levels[str(lv)] = levels.get(str(lv), 0) + n
    return dict(sorted(flags.items())), dict(sorted(levels.items()))


def _manifest(build: Any, cfg: PipelineConfig, b: _Build, final_version: str, bump: str, created_at: str,
              wall: Mapping[str, float], outputs: list[dict], digests: dict[str, str], reports: list[dict]) -> dict:
    flags, _levels = _part_counts(reports)
    inputs, quarantine, bkey, schema_fp, metadata_digest, previous = (
        b.inputs, b.quarantine, b.bkey, b.schema_fp, b.metadata_digest, b.previous)
    stages, stage_entries = stage_report.stage_reports(build, cfg)  # each stage reports its own part
    counts = {name: sum(int(o["rows"]) for o in parts) for name, parts in table_outputs({"outputs": outputs}).items()}
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
                              # every parallel step of the build: tasks, CPU and wall seconds inside them
                              "steps": getattr(build, "steps", [])},  # the writer's own join it as they run
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
    return rel.build_manifest(cfg, final_version, outputs, parts)


def _derived_files(tmp: Path, manifest: dict, reports: list[dict], previous_dir: Path | None
                   ) -> Generator[Tasks, list, dict]:
    """MANIFEST.json, then what is derived from it and the parts' statistics: card, Croissant, report
    (and the key figures the flow shows), and the changelog against the previous release.  They
    are part of the release when it first becomes visible."""
    write_json(tmp / rel.MANIFEST, manifest)
    st = stats.merge([r["stats"] for r in reports], manifest, tmp.name)
    card.write_card(tmp, st)
    card.write_croissant(tmp, manifest)
    report.write_report(tmp, st)
    figures = report.key_figures(tmp, st)
    del st
    _trim()
    if previous_dir is not None:
        yield from changelog.write_changelog_steps(previous_dir, tmp, manifest)
        _trim()
    return figures
