"""Prefect orchestration of a release: the one release generator, its tasks as Prefect task runs.

The flow knows nothing about stages or passes.  It drives
:func:`corpuspipe.release.steps.release_steps` (the pipeline's run loop, then the writer) and
runs every task of every step it yields as one Prefect task run: a shard of a pass, a partition
of a reduce, a part of a table.  Where the task computes depends on the runner:

* ``process`` (the default): Prefect's thread runner submits each task into a warm pool of
  spawned worker processes (:class:`corpuspipe.core.runner.Pool`; Prefect's own
  ProcessPoolTaskRunner re-imports Prefect per task run: 46 s for a 5-file pass);
* ``thread``: in the task's thread (one GIL: for small data and tests);
* ``dask``: on a Dask cluster, local or an existing one (its workers must see the raw and output
  folders at the same paths: tasks pass paths).

All runners give byte-identical releases (tested).  Caching is the pipeline's own verified work
folder, so Prefect's result cache is off.

**Nothing global.**  What a caller wants to see or lend a run -- a progress display, a warning
printer, the config it already validated, a worker pool, a release already started (the CLI takes
the first step while Prefect's server starts) -- goes in a :class:`RunContext` given to
:func:`release_flow`, which returns a flow for that run.  The module-level :data:`build_release`
(``prefect.yaml`` deployments, ``corpuspipe serve``) is the same flow with an empty context.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generator, Sequence

from prefect import Flow, flow, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from corpuspipe.config import PipelineConfig
from corpuspipe.core.runner import DEFAULT_WORKERS, Done, Pool, Progress, Reporter, Step, drive, execute, gather
from corpuspipe.release.steps import Outcome, Refused, release_steps

RUNNERS = ("process", "thread", "dask")
#: Prefect task runs per step (other than a pass's, one per shard) on the process runner.
RUNS_PER_STEP = 4


@dataclass
class Started:
    """A release the caller already started: its generator, the first step it yielded, and that
    step's futures if they are already computing (concurrent futures of :class:`Done`)."""

    steps: Generator[Step, list[Done], Outcome]
    step: Step
    futures: Sequence[Any] | None = None


@dataclass
class RunContext:
    """What a caller lends one flow run (all optional)."""

    progress: Progress | None = None
    warn: Callable[[str], None] | None = None
    cfg: PipelineConfig | None = None  # already loaded and validated: not loaded again
    pool: Pool | None = None  # the process runner's workers (else the flow starts its own)
    started: Started | None = None

    def __getstate__(self) -> dict:
        """What travels when Prefect ships the flow with a task to a Dask worker: nothing.  The
        context is the caller's, used only where the flow runs (a display, a pool, a generator
        cannot and need not cross to a worker)."""
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()


@task(name="task", task_run_name="{label}", cache_policy=NO_CACHE)
def work_task(label: str, fn: Callable[..., Any], args: tuple, pool: Pool | None) -> Done:
    """One task of a step, computed right here: in the task's thread (thread runner) or Dask worker.
    Named by its step in Prefect's records (``task_run_name``: a renamed copy of the task per step,
    ``with_options``, could not be pickled to a Dask worker)."""
    if pool is None:
        return execute(fn, tuple(args))
    return pool.submit(fn, args).result()


@task(name="task", task_run_name="{label}", cache_policy=NO_CACHE)
def adopt_task(label: str, futures: Sequence[Any]) -> list[Done]:
    """Tasks already running in the worker pool: wait for them, so Prefect records them as one run."""
    return [f.result() for f in futures]


class PrefectRunner:
    """Runs a step as Prefect task runs, results in order, progress as they finish."""

    def __init__(self, pool: Pool | None, progress: Progress | None, quoting: bool):
        self.pool, self.progress = pool, progress
        # Unquoted, Prefect walks every task parameter for futures (shard lists, facts, a reduce's
        # partials): 5.6 of 20 s of the 100 MB crawl's unchanged re-run.  Dask rebuilds the
        # annotation as a plain tuple on the way to its worker, so there the values go as they are.
        self.q: Callable[[Any], Any] = quote if quoting else (lambda v: v)

    def __call__(self, step: Step) -> list[Done]:
        if self.pool is not None:
            # Every task goes to the worker pool at once and each Prefect task run waits for its own:
            # submitted one Prefect task run at a time, the workers idled through each run's
            # bookkeeping (the 100 MB crawl's pass 1: 36 CPU s of tasks took 30.8 s on 2 cores).
            futures = step.submit_to(self.pool)
            return self.adopt(step, futures)
        return gather(step, [work_task.submit(step.label, step.tasks.fn, self.q(tuple(a)), None)
                             for a in step.tasks.args], self.progress)

    def adopt(self, step: Step, futures: Sequence[Any]) -> list[Done]:
        """Prefect task runs for tasks already in the pool: one per shard of a pass (the runs a user
        sees in Prefect's UI), and for any other step at most :data:`RUNS_PER_STEP`, each waiting for
        its share (the dedup reduce's steps have ~16 small tasks each; a Prefect task run per task
        cost the flow ~10 s of bookkeeping at 100 MB)."""
        n = len(futures)
        per = 1 if step.unit == "bytes" else max(1, -(-n // RUNS_PER_STEP))
        groups = [list(range(k, min(k + per, n))) for k in range(0, n, per)]
        runs = [adopt_task.submit(step.label, self.q([futures[i] for i in g])) for g in groups]
        rep = Reporter(step, self.progress)
        out: list[Done] = []
        for g, run in zip(groups, runs):
            for i, d in zip(g, run.result()):
                rep.finished(i, d.value)
                out.append(d)
        return out


def _run_release(ctx: RunContext, runner: str, workers: int, raw_dir: str, out_dir: str, version: str | None,
                 config_path: str | None, lock_timeout: float, publish_target: str | None,
                 allow_empty: bool) -> dict:
    """The body of every ``build_release`` flow: drive the release generator with Prefect tasks."""
    pool, own_pool = ctx.pool, False
    if runner == "process" and pool is None:
        pool, own_pool = Pool(workers), True
    run = PrefectRunner(pool if runner == "process" else None, ctx.progress, quoting=runner != "dask")
    try:
        if ctx.started is not None:
            s = ctx.started
            first = (s.step, run.adopt(s.step, s.futures) if s.futures is not None else run(s.step))
            outcome = drive(s.steps, run, first=first)
        else:
            cfg = ctx.cfg or PipelineConfig.load(config_path)
            outcome = drive(release_steps(raw_dir, cfg, out_dir, version=version, allow_empty=allow_empty,
                                          lock_timeout=lock_timeout, warn=ctx.warn), run)
    except Refused as exc:  # the user's to fix: a result, not a failed flow run with a traceback
        return Outcome(status="refused", version=version, error=str(exc)).to_dict()
    finally:
        if own_pool:
            pool.shutdown(wait=True, cancel_futures=True)  # type: ignore[union-attr]
    if outcome.status == "written":
        report_artifacts_task(outcome.release_dir, outcome.figures or {})
    if publish_target and outcome.release_dir:
        publish_task(outcome.release_dir, publish_target)
    return outcome.to_dict()


@task(name="report-key-figures", cache_policy=NO_CACHE)
def report_artifacts_task(release_dir: str, figures: dict) -> None:
    """The report's key figures (as the writer computed them) and the changelog, as artifacts of the flow run."""
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


def _task_runner(runner: str, dask_address: str | None, workers: int) -> Any:
    if runner in ("process", "thread"):
        return ThreadPoolTaskRunner(max_workers=workers if runner == "process" else max(workers, 2))
    if runner == "dask":
        from prefect_dask import DaskTaskRunner

        if dask_address:
            return DaskTaskRunner(address=dask_address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "processes": True, "threads_per_worker": 1,
                                              "dashboard_address": None})
    raise ValueError(f"unknown task runner {runner!r} (choose one of: {', '.join(RUNNERS)})")


def release_flow(ctx: RunContext | None = None, runner: str = "process", dask_address: str | None = None,
                 workers: int = DEFAULT_WORKERS) -> Flow:
    """``build_release`` for one run: ``ctx`` lends it what the caller has (see :class:`RunContext`).

    The passes are CPU-bound Python: in threads they share one GIL, so ``process`` is the default.
    ``dask`` without an address starts a local cluster of ``workers`` single-threaded processes."""
    if dask_address:
        runner = "dask"
    ctx = ctx or RunContext()
    task_runner = _task_runner(runner, dask_address, workers)

    def build_release(raw_dir: str = "raw", out_dir: str = "releases", version: str | None = None,
                      config_path: str | None = None, lock_timeout: float = 0.0, publish_target: str | None = None,
                      allow_empty: bool = False) -> dict:
        """Build a release (with its CHANGELOG.md against the previous one) while holding ``<out>/.lock``.

        The lock makes concurrent builds (CLI, schedule, serve) into one output wait or fail with the
        holder's pid.  With ``publish_target`` (a path or fsspec URL) the release is then published there.
        Returns what the run did: status (written | unchanged | refused), release_dir, version, error,
        and how many passes and reduces were computed or answered from the work cache."""
        return _run_release(ctx, runner, workers, raw_dir, out_dir, version, config_path, lock_timeout,
                            publish_target, allow_empty)

    return flow(name="build_release", task_runner=task_runner, log_prints=False)(build_release)


#: The flow of deployments (``prefect.yaml`` names ``flows/release.py:build_release``) and of
#: ``corpuspipe serve``: the process runner, a fresh context per run.
@flow(name="build_release", task_runner=ThreadPoolTaskRunner(max_workers=DEFAULT_WORKERS), log_prints=False)
def build_release(raw_dir: str = "raw", out_dir: str = "releases", version: str | None = None,
                  config_path: str | None = None, lock_timeout: float = 0.0, publish_target: str | None = None,
                  allow_empty: bool = False) -> dict:
    """Build a release (see :func:`release_flow`): what a scheduled run or a deployment runs."""
    return _run_release(RunContext(), "process", DEFAULT_WORKERS, raw_dir, out_dir, version, config_path,
                        lock_timeout, publish_target, allow_empty)
