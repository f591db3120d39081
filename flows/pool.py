"""The ``process`` runner's pool of worker processes, and the first pass started before the flow.

No Prefect here (this module is imported by the CLI while Prefect's server is still starting):
``flows/release.py`` submits its tasks' work into :data:`POOL`.

Why a plain pool: Prefect's ProcessPoolTaskRunner was measured at 46 s for a 5-file pass (every
task run in a fresh process re-imports Prefect and reconnects); a warm pool of plain processes
costs ~1 s once, and Prefect still sees one task per shard.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from corpuspipe import pipeline
from corpuspipe.core import memory
from corpuspipe.core.config import PipelineConfig

DEFAULT_WORKERS = max(1, min(2, os.cpu_count() or 1))


class Pool:
    """A pool of spawned worker processes that can be replaced by a fresh one (:meth:`fresh`)."""

    def __init__(self, workers: int):
        self._ex = self._new(workers)

    @staticmethod
    def _new(workers: int) -> Any:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")  # never fork a process that runs Prefect's threads
        memory.choose_pool_for_children()  # before the spawn: Arrow reads it at its first allocation
        return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=memory.worker_init)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self._ex.submit(fn, *args)

    def fresh(self, workers: int) -> None:
        """End the current workers (and the heap each kept of its largest shard) and start over with
        ``workers`` new ones, spawned on their first task."""
        self._ex.shutdown(wait=True)
        self._ex = self._new(workers)

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        self._ex.shutdown(wait=wait, cancel_futures=cancel_futures)


# The pool the process runner computes in (None: tasks compute in their own thread or Dask worker).
POOL: Pool | None = None
# First-pass work started by :func:`prefetch_first_pass` before the flow run existed: pass key -> future.
PREFETCHED: dict[str, Any] = {}


def prefetch_first_pass(raw_dir: str | Path, out_dir: str | Path, config_path: str | None,
                        workers: int = DEFAULT_WORKERS) -> int:
    """Start the first pass of every uncached shard in the process pool now; return how many.

    For the CLI, while Prefect's embedded server starts (~9 s on this machine, one core importing
    the server, the other idle): the workers use that time, and the flow's pass tasks then wait for
    these results (``flows.release._pooled``, by pass key: the same config text, raw root, work
    folder and empty facts that the flow's ``_build`` uses) instead of computing them again.
    Prefect still records one task per shard.  The ``process`` runner adopts this pool; if no flow
    runs, :func:`end` stops it."""
    global POOL
    cfg = PipelineConfig.load(config_path)
    cfg_json = cfg.model_dump_json()
    raw_root = str(Path(raw_dir).resolve())
    work = str(Path(out_dir).resolve() / ".work")
    todo = []
    for shard in pipeline.discover(Path(raw_root), cfg).shards:
        key, hit = pipeline.lookup_pass(0, shard, cfg_json, raw_root, work, {})
        if hit is None:
            todo.append((key, shard))
    if not todo:
        return 0
    if POOL is None:
        POOL = Pool(workers)
    for key, shard in todo:
        PREFETCHED[key] = POOL.submit(memory.run_trimmed, pipeline.run_pass, 0, shard, cfg_json, raw_root, work, {},
                                      key)
    return len(todo)


def end(wait: bool = True) -> None:
    """Shut the pool down.  ``wait=False`` (a prefetch that no flow adopted, e.g. the server never
    came up): queued shards are dropped, running ones finish into the work folder, where a later
    build finds them."""
    global POOL
    PREFETCHED.clear()
    if POOL is not None:
        POOL.shutdown(wait=wait, cancel_futures=not wait)
        POOL = None
