"""Prefect orchestration of a release: one loop over the pipeline's plan.

The flow knows nothing about stages.  It asks :func:`corpuspipe.pipeline.plan` for the passes and
runs, for each pass, one task per shard (all of that pass's fused stages, in a worker process
by default) and one task per corpus-level reduce; then the release writer assembles in this process
(``_write_release``) while its parts are written by tasks on the same runner.  Tasks pass
small dicts of paths; caching is the pipeline's own content-addressed work folder (one mechanism
for the flow, the tests and the bench), so Prefect's result cache is off.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from corpuspipe import pipeline
from corpuspipe.core import memory
from corpuspipe.core.config import PipelineConfig
from corpuspipe.release import locking, versioning
from flows import pool

# Set by the CLI to draw a progress display: (step, done, total, unit, documents) -> None, where unit is
# "bytes" for the passes (done/total are raw MB of the shards finished, so the display can show
# MB, rate and ETA) and "steps" for the rest.
PROGRESS: Callable[..., None] | None = None
# Set by the CLI: what the last build did (written | unchanged)
LAST_STATUS: dict[str, Any] = {}


def _progress(step: str, done: int, total: int, unit: str = "steps", documents: int | None = None) -> None:
    if PROGRESS is not None:
        PROGRESS(step, done, total, unit, documents)


# The pool of worker processes the "process" runner computes in is ``pool.POOL`` (None: compute in
# the task's own thread or Dask worker); flows/pool.py says why a plain pool and not Prefect's.
_Pool = pool.Pool  # the name the tests know
DEFAULT_WORKERS = pool.DEFAULT_WORKERS


def _pool_run(fn: Callable[..., dict], *args: Any) -> dict:
    return pool.POOL.submit(memory.run_trimmed, fn, *args).result()  # back to baseline between tasks


def _pooled(lookup: Callable[..., tuple[str, dict | None]], run: Callable[..., dict], *args: Any) -> dict:
    """``run(*args)``; with a pool, the cache is asked here first (``lookup``), so a hit never
    reaches a worker (an unchanged re-run spawns none) and a miss goes with its key -- or, when
    :func:`pool.prefetch_first_pass` already started that very work (same key), waits for it."""
    if pool.POOL is None:
        return run(*args)
    key, hit = lookup(*args)
    started = pool.PREFETCHED.pop(key, None)  # first, even if done: its result says it was computed
    if started is not None:
        return started.result()
    return hit if hit is not None else _pool_run(run, *args, key)


@task(name="pass", cache_policy=NO_CACHE)
def pass_task(index: int, shard: Any, cfg_json: str, raw_root: str, work: str, facts: dict) -> dict:
    return _pooled(pipeline.lookup_pass, pipeline.run_pass, index, shard, cfg_json, raw_root, work, facts)


@task(name="reduce", cache_policy=NO_CACHE)
def reduce_task(stage: str, results: list[dict], cfg_json: str, work: str) -> dict:
    return _pooled(pipeline.lookup_reduce, pipeline.run_reduce, stage, results, cfg_json, work)


@task(name="release-part", cache_policy=NO_CACHE)
def release_part_task(fn: Callable[..., Any], args: tuple) -> Any:
    """One task of a release-writing step (a part written and checked, a changelog partition)."""
    return fn(*args)


def _release_runner() -> Callable[[Any], list]:
    """How the writer's parallel steps run (``core.stage.Tasks``): each task in the worker pool the
    passes used (process runner), else as a Prefect task on the flow's runner (threads, Dask)."""
    q = _quoter()

    def run(step: Any) -> list:
        n = len(step.args)
        _progress(step.label, 0, n)
        if pool.POOL is not None:
            futures = [pool.POOL.submit(memory.run_trimmed, step.fn, *a) for a in step.args]
        else:
            futures = [release_part_task.submit(step.fn, q(a)) for a in step.args]
        out = []
        for i, f in enumerate(futures, 1):
            out.append(f.result())
            _progress(step.label, i, n)
        return out

    return run


def _write_release(build: pipeline.BuildResult, cfg: PipelineConfig, out_root: Path, version: str | None,
                   created_at: str, allow_empty: bool) -> dict:
    """The release written from ``build``: this process assembles, the runner writes the parts."""
    from corpuspipe.release.assemble import EmptyRelease, ReleaseExists, write_release
    from corpuspipe.release.verify import ReleaseDamaged
    from corpuspipe.release.versioning import VersionError

    try:
        done = write_release(build, cfg, out_root, version, created_at, build.wall, allow_empty=allow_empty,
                             run_tasks=_release_runner())
    except (EmptyRelease, ReleaseExists, VersionError, ReleaseDamaged) as exc:
        # a user's error, not a crash: returned (Prefect would log a failed task with a traceback)
        return {"release_dir": None, "version": version, "status": "refused", "error": str(exc),
                "kind": type(exc).__name__}
    return {"release_dir": str(done.release_dir), "version": done.version, "status": done.status,
            "figures": done.figures}


@task(name="validate-release", cache_policy=NO_CACHE)
def validate_task(release_dir: str) -> dict[str, int]:
    from corpuspipe.release.validate import validate_release

    return validate_release(Path(release_dir))


def _map(fn, label: str, args: Sequence[tuple], sizes: Sequence[int]) -> list[dict]:
    """One task per item, results in order; progress in raw bytes and documents as shards finish."""
    futures = [fn.submit(*a) for a in args]
    total = sum(sizes)
    _progress(label, 0, total, "bytes", 0)
    results, done, docs = [], 0, 0
    for f, size in zip(futures, sizes):
        r = f.result()
        results.append(r)
        done += size
        docs += r.get("essay_count", 0)
        _progress(label, done, total, "bytes", docs)
    return results


def _quoter() -> Callable[[Any], Any]:
    """``quote`` where the tasks run in this process's threads, else the value itself.

    Unquoted, Prefect walks every task parameter for futures twice (shard lists, the facts and, for
    a reduce, every shard's partials): 5.6 of 20 s of the 100 MB crawl's unchanged re-run.  Dask
    rebuilds the annotation (a named tuple) as a plain tuple on the way to its worker, so there the
    values go as they are."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    runner = getattr(ctx, "task_runner", None)
    return quote if isinstance(runner, ThreadPoolTaskRunner) else (lambda v: v)


def _build(raw_dir: str, out_dir: str, version: str | None, config_path: str | None, allow_empty: bool) -> str:
    cfg = PipelineConfig.load(config_path)
    cfg_json = cfg.model_dump_json()
    raw_root = str(Path(raw_dir).resolve())
    out_root = Path(out_dir).resolve()
    work = out_root / ".work"
    created_at = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    wall: dict[str, float] = {}

    q = _quoter()
    t = time.perf_counter()
    shards, sizes, quarantine = pipeline.discover(Path(raw_root), cfg)
    wall["discover"] = time.perf_counter() - t
    facts: dict[str, Any] = {}
    reduces: dict[str, dict] = {}
    passes: list[list[dict]] = []
    inputs: list[Any] = shards
    plan = pipeline.plan()
    for p in plan:
        t = time.perf_counter()
        label = "pass %d: %s" % (p.index, ", ".join(p.names))
        q_facts = q(facts)
        results = _map(pass_task, label, [(p.index, q(s), cfg_json, raw_root, str(work), q_facts) for s in inputs],
                       sizes)
        wall[f"pass{p.index}"] = time.perf_counter() - t
        passes.append(results)
        if pool.POOL is not None and p.collects and p.index == len(plan) - 1:
            # No pass follows these reduces: they run in one fresh worker, alone.  A warm pass worker
            # keeps the heap of its largest shard, so at 1 GB the dedup reduce grew on top of ~0.6 GB
            # of pass-1 leftovers while the other, idle worker held ~0.45 GB beside it.
            pool.POOL.fresh(1)
        for st in p.collects:
            t = time.perf_counter()
            _progress(f"reduce: {st.name}", 0, 1)
            red = reduce_task(st.name, q(results), cfg_json, str(work))
            _progress(f"reduce: {st.name}", 1, 1)
            wall[f"{st.name}.reduce"] = time.perf_counter() - t
            reduces[st.name] = red
            facts[st.name] = red["fact"]
        # the reduces have their partials: keep only what the next pass and the writer need
        results = [pipeline.slim_result(r, work) for r in results]
        passes[-1] = results
        inputs = results

    if pool.POOL is not None:
        # The passes are done: fresh workers write the release's parts.  Each old one keeps the heap of
        # its largest shard or reduce (0.2-0.9 GB on the 100 MB crawl), and after the last reduce the
        # pool has one worker only.
        pool.POOL.fresh(DEFAULT_WORKERS)
    build = pipeline.BuildResult(quarantine, passes, reduces, wall)
    build_file = work / "build.json"
    from corpuspipe.core.io import write_json

    write_json(build_file, {"quarantine": [q.__dict__ for q in quarantine], "passes": passes, "reduces": reduces,
                            "wall": wall})
    _progress("write", 0, 1)
    done = _write_release(build, cfg, out_root, version, created_at, allow_empty)
    _progress("write", 1, 1)
    LAST_STATUS.clear()
    LAST_STATUS.update(done)
    LAST_STATUS.update(
        passes_run=sum(not r["cached"] for rs in passes for r in rs),
        passes_cached=sum(bool(r["cached"]) for rs in passes for r in rs),
        reduces=len(reduces), reduces_cached=sum(bool(r["cached"]) for r in reduces.values()))
    if done["status"] == "refused":
        return ""
    if done["status"] == "written":
        report_artifacts_task(done["release_dir"], done["figures"])
    keep = pipeline.work_files(build, work) | {build_file}
    pipeline.prune_work(work, keep)
    return done["release_dir"]


@task(name="report-key-figures", cache_policy=NO_CACHE)
def report_artifacts_task(release_dir: str, figures: dict) -> None:
    """The report's key figures (as the writer computed them: reading the release again cost a
    full pass over its documents), and the changelog, as artifacts of the flow run."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    create_table_artifact(
        key="corpuspipe-key-figures",
        table=[{"figure": k, "value": v} for k, v in sorted(figures.items())],
        description=f"Key figures of release {Path(release_dir).name}",
    )
    changelog = Path(release_dir) / "CHANGELOG.md"
    if changelog.is_file():
        create_markdown_artifact(key="corpuspipe-changelog", markdown=changelog.read_text(encoding="utf-8"),
                                 description=f"Changes in release {Path(release_dir).name}")


@task(name="publish-release", cache_policy=NO_CACHE)
def publish_task(release_dir: str, target: str) -> str:
    from corpuspipe.release.publish import publish

    return publish(Path(release_dir), target)


@flow(name="build_release", task_runner=ThreadPoolTaskRunner(max_workers=DEFAULT_WORKERS), log_prints=False)
def build_release(
    raw_dir: str = "raw",
    out_dir: str = "releases",
    version: str | None = None,
    config_path: str | None = None,
    lock_timeout: float = 0.0,
    publish_target: str | None = None,
    allow_empty: bool = False,
) -> str:
    """Build a release (with its CHANGELOG.md against the previous one) while holding ``<out>/.lock``.

    The lock makes concurrent builds (CLI, schedule, serve) into one output wait or fail with the
    holder's pid; holding it also makes any ``.tmp-*`` dir a crashed build's leftover, safe to delete.
    With ``publish_target`` (a path or fsspec URL) the release is then published there.
    """
    out_root = Path(out_dir).resolve()
    with locking.release_lock(out_root, timeout=lock_timeout):
        locking.clean_stale_tmp(out_root)
        reconcile = getattr(versioning, "reconcile", None)
        if reconcile is not None:  # a crash between the rename and the index update is repaired here
            reconcile(out_root)
        release_dir = _build(raw_dir, out_dir, version, config_path, allow_empty)
    if publish_target and release_dir:
        publish_task(release_dir, publish_target)
    return release_dir


class _ProcessPool:
    """``build_release`` with its passes computed in a warm pool of worker processes."""

    def __init__(self, workers: int):
        self.workers = workers

    def __call__(self, **kwargs: Any) -> str:
        if pool.POOL is None:  # else the pool a prefetch started (pool.prefetch_first_pass), with its work
            pool.POOL = pool.Pool(self.workers)
        try:
            return build_release(**kwargs)
        finally:
            pool.end()


def with_runner(runner: str = "process", dask_address: str | None = None, workers: int = DEFAULT_WORKERS):
    """``build_release`` on the chosen runner: process (default), thread, or dask.

    The passes are CPU-bound Python: in threads they share one GIL, so ``process`` (Prefect's
    thread runner submitting into a pool of ``workers`` processes) is the default.  dask without an
    address starts a local cluster of ``workers`` single-threaded processes; with an address, the
    workers of that cluster must see raw/ and the output directory at the same paths (tasks pass
    paths).  All runners give byte-identical releases (tested).
    """
    if runner == "thread":
        return build_release
    if runner == "process":
        return _ProcessPool(workers)
    if runner == "dask":
        from prefect_dask import DaskTaskRunner

        if dask_address:
            return build_release.with_options(task_runner=DaskTaskRunner(address=dask_address))
        cluster = {"n_workers": workers, "processes": True, "threads_per_worker": 1, "dashboard_address": None}
        return build_release.with_options(task_runner=DaskTaskRunner(cluster_kwargs=cluster))
    raise ValueError(f"unknown task runner {runner!r} (process, thread or dask)")
