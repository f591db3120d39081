"""Prefect orchestration of a release: thin tasks over ``corpuspipe.steps``.

Tasks work on shards of files and pass paths.  Their cache keys hash the *contents* of the
files they read (plus task source and config), never the paths, so a re-run over unchanged
raw files reuses earlier work even if the files moved.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from prefect import flow, task
from prefect.cache_policies import TASK_SOURCE, CacheKeyFnPolicy
from prefect.task_runners import ThreadPoolTaskRunner

from corpuspipe.release import locking
from corpuspipe import steps
from corpuspipe.release import versioning
from corpuspipe.core.config import PipelineConfig
from corpuspipe.core.records import QuarantineEntry

# Set by the CLI to draw a progress display: (stage, done, total) -> None
PROGRESS: Callable[[str, int, int], None] | None = None


def _progress(stage: str, done: int, total: int) -> None:
    if PROGRESS is not None:
        PROGRESS(stage, done, total)


_DIGESTS: dict[tuple[str, int, int, int], str] = {}


def _file_digest(path: Path) -> str:
    """sha256 of a file, remembered per (path, inode, size, mtime): each stage's output is hashed
    once per process although the next stage's cache key and the dedup/write keys all read it."""
    st = path.stat()
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = steps.file_sha256(path)
    return _DIGESTS[key]


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """Hash of the corpuspipe package's code and rule files.

    TASK_SOURCE only covers the thin task bodies here; without this a change to a stage module
    would silently reuse results computed by the old code.
    """
    import corpuspipe

    root = Path(corpuspipe.__file__).parent
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix in (".py", ".toml", ".json", ".txt") and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def _digest_value(value: Any, h: "hashlib._Hash") -> None:
    """Hash file contents for path-like values, JSON for the rest."""
    if isinstance(value, (str, Path)) and len(str(value)) < 4096 and Path(value).is_file():
        h.update(b"file:" + _file_digest(Path(value)).encode())
    elif isinstance(value, dict):
        for k in sorted(value):
            h.update(str(k).encode())
            _digest_value(value[k], h)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _digest_value(v, h)
    else:
        h.update(json.dumps(value, sort_keys=True, default=str).encode())


def content_cache_key(context: Any, parameters: dict[str, Any]) -> str:
    """Cache key from the contents of every file a task reads, and its other arguments."""
    h = hashlib.sha256(code_fingerprint().encode())
    for name in sorted(parameters):
        # where outputs go does not change what they contain; a build's clock and timings neither
        if name in ("work", "created_at", "stage_seconds"):
            continue
        h.update(name.encode())
        value = parameters[name]
        if name == "raw_root" and "rel_paths" in parameters:
            for rel in parameters["rel_paths"]:
                _digest_value(str(Path(value) / rel), h)
            continue
        _digest_value(value, h)
    return h.hexdigest()


CACHED = dict(
    cache_policy=TASK_SOURCE + CacheKeyFnPolicy(cache_key_fn=content_cache_key),
    persist_result=True,
)


@task(name="discover-sources")
def discover_task(raw_root: str, cfg_json: str) -> tuple[list[str], list[QuarantineEntry]]:
    return steps.discover(Path(raw_root), PipelineConfig.model_validate_json(cfg_json))


@task(name="ingest-shard", **CACHED)
def ingest_task(rel_paths: list[str], raw_root: str, cfg_json: str, work: str) -> str:
    return str(steps.ingest_step(Path(raw_root), rel_paths, PipelineConfig.model_validate_json(cfg_json), Path(work)))


@task(name="boilerplate-stats", **CACHED)
def stats_task(shard_path: str, cfg_json: str, work: str) -> str:
    return str(steps.boilerplate_stats_step(Path(shard_path), PipelineConfig.model_validate_json(cfg_json), Path(work)))


@task(name="select-boilerplate", **CACHED)
def select_task(stats_paths: list[str], cfg_json: str) -> list[str]:
    return steps.select_boilerplate([Path(p) for p in stats_paths], PipelineConfig.model_validate_json(cfg_json))


@task(name="remove-watermarks", **CACHED)
def watermark_task(shard_path: str, boilerplate: list[str], cfg_json: str, work: str) -> str:
    cfg = PipelineConfig.model_validate_json(cfg_json)
    return str(steps.watermark_step(Path(shard_path), boilerplate, cfg, Path(work)))


@task(name="normalize-script", **CACHED)
def normalize_task(shard_path: str, cfg_json: str, work: str) -> str:
    return str(steps.normalize_step(Path(shard_path), PipelineConfig.model_validate_json(cfg_json), Path(work)))


@task(name="section", **CACHED)
def section_task(shard_path: str, cfg_json: str, work: str) -> dict[str, str]:
    return steps.section_step(Path(shard_path), PipelineConfig.model_validate_json(cfg_json), Path(work))


@task(name="minhash-signatures", **CACHED)
def signature_task(sectioned: dict[str, str], cfg_json: str, work: str) -> dict[str, str]:
    return steps.signature_step(sectioned, PipelineConfig.model_validate_json(cfg_json), Path(work))


@task(name="detect-near-duplicates", **CACHED)
def dedup_task(sectioned: list[dict[str, str]], signature_paths: list[dict[str, str]], cfg_json: str, work: str) -> str:
    cfg = PipelineConfig.model_validate_json(cfg_json)
    return str(steps.dedup_step(sectioned, signature_paths, cfg, Path(work)))


@task(name="write-release", **CACHED)
def write_task(
    sectioned: list[dict[str, str]],
    dedup_path: str,
    quarantine: list[QuarantineEntry],
    cfg_json: str,
    out_root: str,
    version: str | None,
    created_at: str,
    stage_seconds: dict[str, float],
) -> str:
    cfg = PipelineConfig.model_validate_json(cfg_json)
    return str(
        steps.write_release_step(
            sectioned, Path(dedup_path), quarantine, cfg, Path(out_root), version, created_at, stage_seconds
        )
    )


@task(name="validate-release")
def validate_task(release_dir: str) -> dict[str, int]:
    from corpuspipe.release.writer import validate_release

    return validate_release(Path(release_dir))


# Tasks whose (cached) results name files under <out>/.work/: ingest/watermark/normalize/section
# return a shard path, section and signatures a dict of paths.
_WORK_OUTPUT_TASKS = {"ingest-shard", "boilerplate-stats", "remove-watermarks", "normalize-script", "section", "minhash-signatures",
                      "detect-near-duplicates"}


def _missing_outputs(task_name: str, result: Any) -> bool:
    """True if a result points at work files that no longer exist (a cache hit after .work/ was cleaned)."""
    if task_name == "write-release":  # reusable only while it is still the output's latest release
        release = Path(result)
        latest = versioning.latest_release(release.parent)
        return latest is None or latest.resolve() != release.resolve()
    if task_name not in _WORK_OUTPUT_TASKS:
        return False
    paths = [str(v) for v in result.values()] if isinstance(result, dict) else [str(result)]
    return not all(Path(p).is_file() for p in paths)


def _checked(fn, *args: Any) -> Any:
    """Run a task once; recompute it if its (cached) result names outputs that are gone."""
    result = fn(*args)
    if _missing_outputs(fn.name, result):
        result = fn.with_options(refresh_cache=True)(*args)
    return result


def _map(fn, stage: str, items: Sequence[Any], **kwargs) -> list[Any]:
    """Submit one task per item, report progress as they finish, return results in order.

    A cached result whose work files were deleted is recomputed with ``refresh_cache`` (which
    also rewrites the cache record), so cleaning ``<out>/.work`` never breaks a later run.
    """
    futures = [fn.submit(item, **kwargs) for item in items]
    done = 0
    _progress(stage, 0, len(futures))
    results: list[Any] = []
    for item, f in zip(items, futures):
        result = f.result()
        if _missing_outputs(fn.name, result):
            result = fn.with_options(refresh_cache=True).submit(item, **kwargs).result()
        results.append(result)
        done += 1
        _progress(stage, done, len(futures))
    return results


def shard(items: Sequence[str], size: int) -> list[list[str]]:
    """Cut the sorted paths after every path whose hash is 0 mod ``size`` (~size files a shard, at most 2x).

    Boundaries depend on the paths, not on positions, so adding or removing a file changes only
    its own shard and every other shard keeps its cache key (fixed-size slices would shift all).
    """
    shards: list[list[str]] = []
    current: list[str] = []
    for p in items:
        current.append(p)
        cut = int.from_bytes(hashlib.sha256(p.encode()).digest()[:8], "big") % max(size, 1) == 0
        if cut or len(current) >= 2 * max(size, 1):
            shards.append(current)
            current = []
    if current:
        shards.append(current)
    return shards


def _build(
    raw_dir: str = "raw",
    out_dir: str = "releases",
    version: str | None = None,
    config_path: str | None = None,
) -> str:
    """discover -> ingest -> watermarks -> normalize -> section -> near-duplicates -> write -> validate."""
    cfg = PipelineConfig.load(config_path)
    cfg_json = cfg.model_dump_json()
    raw_root = str(Path(raw_dir).resolve())
    out_root = Path(out_dir).resolve()
    work = str(out_root / ".work")
    created_at = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    seconds: dict[str, float] = {}

    t = time.perf_counter()
    rel_paths, quarantine = discover_task(raw_root, cfg_json)
    seconds["discover"] = time.perf_counter() - t
    shards = shard(rel_paths, cfg.release.shard_files)

    t = time.perf_counter()
    ingested = _map(ingest_task, "ingest", shards, raw_root=raw_root, cfg_json=cfg_json, work=work)
    seconds["ingest"] = time.perf_counter() - t

    t = time.perf_counter()
    stats = _map(stats_task, "boilerplate statistics", ingested, cfg_json=cfg_json, work=work)
    boilerplate = select_task(stats, cfg_json)
    cleaned = _map(watermark_task, "watermarks", ingested, boilerplate=boilerplate, cfg_json=cfg_json, work=work)
    seconds["watermark"] = time.perf_counter() - t

    t = time.perf_counter()
    normalized = _map(normalize_task, "normalize", cleaned, cfg_json=cfg_json, work=work)
    seconds["normalize"] = time.perf_counter() - t

    t = time.perf_counter()
    sectioned = _map(section_task, "section", normalized, cfg_json=cfg_json, work=work)
    seconds["section"] = time.perf_counter() - t

    t = time.perf_counter()
    signatures = _map(signature_task, "signatures", sectioned, cfg_json=cfg_json, work=work)
    dedup_path = _checked(dedup_task, sectioned, signatures, cfg_json, work)
    seconds["dedup"] = time.perf_counter() - t

    t = time.perf_counter()
    _progress("write", 0, 1)
    release_dir = _checked(write_task, sectioned, dedup_path, quarantine, cfg_json, str(out_root), version, created_at,
                           seconds)
    validate_task(release_dir)
    _progress("write", 1, 1)
    report_artifacts_task(release_dir)
    used = [*ingested, *stats, *cleaned, *normalized, dedup_path]
    used += [p for outputs in (*sectioned, *signatures) for p in outputs.values()]
    steps.prune_work(Path(work), map(Path, used))
    return release_dir


@task(name="report-key-figures")
def report_artifacts_task(release_dir: str) -> None:
    """The report's key figures, and the changelog, as artifacts of the flow run."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    from corpuspipe.release import report

    figures = report.key_figures(Path(release_dir))
    create_table_artifact(
        key="corpuspipe-key-figures",
        table=[{"figure": k, "value": v} for k, v in sorted(figures.items())],
        description=f"Key figures of release {Path(release_dir).name}",
    )
    changelog = Path(release_dir) / "CHANGELOG.md"
    if changelog.is_file():
        create_markdown_artifact(key="corpuspipe-changelog", markdown=changelog.read_text(encoding="utf-8"),
                                 description=f"Changes in release {Path(release_dir).name}")


@task(name="publish-release")
def publish_task(release_dir: str, target: str) -> str:
    from corpuspipe.release.publish import publish

    return publish(Path(release_dir), target)


@flow(name="build_release", task_runner=ThreadPoolTaskRunner(max_workers=2), log_prints=False)
def build_release(
    raw_dir: str = "raw",
    out_dir: str = "releases",
    version: str | None = None,
    config_path: str | None = None,
    lock_timeout: float = 0.0,
    publish_target: str | None = None,
) -> str:
    """Build a release (with its CHANGELOG.md against the previous one) while holding ``<out>/.lock``.

    The lock makes concurrent builds (CLI, schedule, serve) into one output wait or fail with the
    holder's pid; holding it also makes any ``.tmp-*`` dir a crashed build's leftover, safe to delete.
    With ``publish_target`` (a path or fsspec URL) the release is then published there.
    """
    out_root = Path(out_dir).resolve()
    with locking.release_lock(out_root, timeout=lock_timeout):
        locking.clean_stale_tmp(out_root)
        release_dir = _build(raw_dir=raw_dir, out_dir=out_dir, version=version, config_path=config_path)
    if publish_target:
        publish_task(release_dir, publish_target)
    return release_dir


def with_runner(runner: str = "thread", dask_address: str | None = None, workers: int = 2):
    """``build_release`` on the chosen task runner: thread (default), process, or dask.

    dask without an address starts a local cluster of ``workers`` single-threaded processes
    (the stages are CPU-bound Python; threads would share the GIL).  Tasks pass paths, so the
    workers of an existing cluster must see raw/ and the output directory at the same paths.
    """
    if runner == "thread":
        return build_release
    if runner == "process":
        from prefect.task_runners import ProcessPoolTaskRunner

        return build_release.with_options(task_runner=ProcessPoolTaskRunner(max_workers=workers))
    if runner == "dask":
        from prefect_dask import DaskTaskRunner

        if dask_address:
            return build_release.with_options(task_runner=DaskTaskRunner(address=dask_address))
        cluster = {"n_workers": workers, "processes": True, "threads_per_worker": 1, "dashboard_address": None}
        return build_release.with_options(task_runner=DaskTaskRunner(cluster_kwargs=cluster))
    raise ValueError(f"unknown task runner {runner!r} (thread, process or dask)")
