"""Running the engine's steps: what a step is, the runners that execute one, and the loop that drives them.

The pipeline's run loop (``pipeline.build_steps``) and the release writer are generators: they
do the small bookkeeping themselves (cache lookups, keys, a reduce's glue) and ``yield`` a
:class:`Step` whenever there is real work -- one task per shard of a pass, one per partition of a
reduce, one per part of a table -- then receive the tasks' results.  Whoever drives the generator
(:func:`drive`) decides *where* tasks run, through a **runner** (``Step -> list[Done]``):

* :func:`serial` -- in this process, one after the other (tests, small data);
* :class:`ProcessRunner` -- a warm pool of spawned worker processes (``pipeline.build``'s parallel
  mode, and the ``process`` runner of the Prefect flow);
* the Prefect flow's runner (``corpuspipe.orchestrate.flow``) -- one Prefect task run per task, on
  the flow's task runner (threads feeding the worker pool, or a Dask cluster);
* :func:`cached_only` -- refuses any work (:class:`NotCached`): the CLI asks the loop this way
  whether a release can be answered without starting Prefect at all.

So the flow, the tests and the bench run one loop; only the runner differs.  Every task is timed
where it runs (:func:`execute`: CPU and wall seconds), so the manifest can say how much of a build's
CPU ran inside parallel steps and how much did not (the serial share that bounds what more workers
can give).  Nothing here imports Prefect.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Generator, NamedTuple, Sequence

from corpuspipe.core import memory
from corpuspipe.core.stage import Tasks

#: (label, done, total, unit, documents): unit "bytes" for the passes (done/total are raw bytes of
#: the shards finished), "tasks" for every other step.
Progress = Callable[[str, int, int, str, "int | None"], None]


@dataclass(frozen=True)
class Step:
    """One parallel step: its tasks, and what a progress display needs to show it."""

    tasks: Tasks
    unit: str = "tasks"  # "bytes": sizes are the tasks' input bytes
    sizes: Sequence[int] = ()  # per task (unit "bytes")
    done_before: int = 0  # bytes already answered from the cache (unit "bytes")
    docs_before: int = 0  # documents in those cached answers

    @property
    def label(self) -> str:
        return self.tasks.label

    @property
    def total(self) -> int:
        return self.done_before + sum(self.sizes) if self.unit == "bytes" else len(self.tasks.args)

    def amount(self, i: int) -> int:
        return self.sizes[i] if self.unit == "bytes" else 1

    def submit_to(self, pool: "Pool") -> list[Any]:
        """Every task into ``pool``, the largest input first; the futures in task order.  Shards
        are cut where their paths say (cache keys stay put), so their sizes vary (the 100 MB crawl:
        0.2-7.1 MB); in given order a large shard could start last and run alone while the other
        workers idled.  Largest first leaves the small ones for the end."""
        n = len(self.tasks.args)
        order = sorted(range(n), key=lambda i: -self.sizes[i]) if self.unit == "bytes" and len(self.sizes) == n \
            else range(n)
        futures: list[Any] = [None] * n
        for i in order:
            futures[i] = pool.submit(self.tasks.fn, tuple(self.tasks.args[i]))
        return futures


class Done(NamedTuple):
    """A finished task: its value and the CPU and wall seconds it took where it ran."""

    value: Any
    cpu: float
    wall: float


def execute(fn: Callable[..., Any], args: tuple) -> Done:
    """Run one task here and time it (what every runner calls, in whatever process it is)."""
    c0, t0 = time.process_time(), time.perf_counter()
    value = fn(*args)
    return Done(value, time.process_time() - c0, time.perf_counter() - t0)


# A task shorter than this (CPU seconds) is not followed by a trim: a full collection and
# malloc_trim cost a warm worker 5-20 ms, which for the dedup steps' many small tasks (hundreds at
# 10 MB) was more worker CPU than the tasks themselves; a long task is what leaves a large heap.
TRIM_AFTER_CPU = 0.25


def execute_trimmed(fn: Callable[..., Any], args: tuple) -> Done:
    """:func:`execute` in a pool worker, which then gives its freed heap back (``memory.trim``)
    after a long task, so the worker's resident size returns to its baseline between passes."""
    c0 = time.process_time()
    try:
        return execute(fn, args)
    finally:
        if time.process_time() - c0 >= TRIM_AFTER_CPU:
            memory.trim()


Runner = Callable[[Step], list[Done]]


def _documents(value: Any) -> int:
    return value.get("essay_count", 0) if isinstance(value, dict) else 0


class Reporter:
    """Progress of one step as its tasks finish, in submission order."""

    def __init__(self, step: Step, progress: Progress | None):
        self.step, self.progress = step, progress
        self.done, self.docs = step.done_before, step.docs_before
        if progress is not None:
            progress(step.label, self.done, step.total, step.unit, self.docs if step.unit == "bytes" else None)

    def finished(self, i: int, value: Any) -> None:
        self.done += self.step.amount(i)
        self.docs += _documents(value)
        if self.progress is not None:
            self.progress(self.step.label, self.done, self.step.total, self.step.unit,
                          self.docs if self.step.unit == "bytes" else None)


def gather(step: Step, futures: Sequence[Any], progress: Progress | None = None) -> list[Done]:
    """The results of a step's futures (anything with ``result()``: a pool's or Prefect's), waited
    for in submission order, with progress as each arrives."""
    rep = Reporter(step, progress)
    out = []
    for i, f in enumerate(futures):
        d = f.result()
        rep.finished(i, d.value)
        out.append(d)
    return out


def serial(step: Step, progress: Progress | None = None) -> list[Done]:
    """Every task of the step in this process, one after the other."""
    rep = Reporter(step, progress)
    out = []
    for i, a in enumerate(step.tasks.args):
        d = execute(step.tasks.fn, tuple(a))
        rep.finished(i, d.value)
        out.append(d)
    return out


class NotCached(Exception):
    """:func:`cached_only` met a step with work to do (a pass or reduce not in the work folder)."""


def cached_only(step: Step) -> list[Done]:
    raise NotCached(step.label)


class Pool:
    """A pool of spawned worker processes that can be replaced by a fresh one (:meth:`fresh`).

    Why a plain pool under the flow: Prefect's ProcessPoolTaskRunner was measured at 46 s for a
    5-file pass (every task run in a fresh process re-imports Prefect and reconnects); a warm pool
    of plain processes costs ~1 s once, and Prefect still records one task run per task."""

    def __init__(self, workers: int):
        self.workers = workers
        self._ex = self._new(workers)

    @staticmethod
    def _new(workers: int) -> Any:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")  # never fork a process that runs Prefect's threads
        memory.choose_pool_for_children()  # before the spawn: Arrow reads it at its first allocation
        return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=memory.worker_init)

    def submit(self, fn: Callable[..., Any], args: tuple) -> Any:
        """A future of ``execute(fn, args)`` in a worker (a concurrent.futures future of a :class:`Done`)."""
        return self._ex.submit(execute_trimmed, fn, tuple(args))

    def fresh(self, workers: int | None = None) -> None:
        """End the current workers (and the heap each kept of its largest task) and start over."""
        self._ex.shutdown(wait=True)
        self._ex = self._new(workers or self.workers)

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        self._ex.shutdown(wait=wait, cancel_futures=cancel_futures)


DEFAULT_WORKERS = max(1, min(2, os.cpu_count() or 1))


@dataclass
class ProcessRunner:
    """A runner over a :class:`Pool` (``with ProcessRunner(2) as run: ...``)."""

    workers: int = DEFAULT_WORKERS
    progress: Progress | None = None
    pool: Pool | None = field(default=None, repr=False)

    def __enter__(self) -> "ProcessRunner":
        if self.pool is None:
            self.pool = Pool(self.workers)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def __call__(self, step: Step) -> list[Done]:
        if self.pool is None:
            raise RuntimeError("ProcessRunner used outside its with-block")
        if len(step.tasks.args) == 1:  # one task: no process hop
            return serial(step, self.progress)
        return gather(step, step.submit_to(self.pool), self.progress)


def drive(steps: Generator[Step, list[Done], Any], run: Runner, first: tuple[Step, list[Done]] | None = None) -> Any:
    """Run a generator of steps to its value: every step it yields goes to ``run``, the results are
    sent back.  ``first``: a step the caller already took from the generator and ran (the CLI starts
    the first step while Prefect's server starts)."""
    try:
        step = steps.send(first[1]) if first is not None else next(steps)
        while True:
            step = steps.send(run(step))
    except StopIteration as stop:
        return stop.value
    finally:
        steps.close()
