"""Giving freed memory back to the OS, so a process's resident size follows what it holds.

Why: glibc keeps freed small blocks of Python objects mapped and pyarrow's default mimalloc pool
keeps freed buffers, so a long-lived process (the release writer, a warm pool worker between
passes) kept the peak of its last step: the writing process held 864 MB after a 100 MB write
although Arrow held 0 bytes (373 MB with jemalloc at decay 0; bench/bench_writer.py), and at
1 GB an idle pass worker sat at 0.4-0.6 GB beside the dedup reduce.  A pool worker after three
pass-0 shards of the 100 MB crawl: 313 MB plain, 293 MB with both (pass 1 not measured yet).
Both are no-ops where the allocator lacks the call.  Nothing here changes any output.
"""

from __future__ import annotations


def trim() -> None:
    """Collect garbage and hand the freed heap back to the OS (glibc ``malloc_trim``)."""
    import gc

    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def returning_memory_pool() -> None:
    """Make Arrow give freed memory back at once (jemalloc with decay 0; the system allocator when
    pyarrow was built without jemalloc).  Process-wide; the CPU cost was within noise.  A process
    that chose its pool through ``POOL_ENV`` keeps it (only the decay is set)."""
    import os

    import pyarrow as pa

    chosen = os.environ.get(POOL_ENV)
    if chosen and pa.default_memory_pool().backend_name == chosen:
        if chosen == "jemalloc":
            pa.jemalloc_set_decay_ms(0)
        return
    try:
        pa.jemalloc_set_decay_ms(0)
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except (NotImplementedError, pa.ArrowNotImplementedError):
        pa.set_memory_pool(pa.system_memory_pool())


# Arrow reads this once, when a process first allocates; a pool switched later with
# ``set_memory_pool`` is only half the story: some of pyarrow's readers and Acero kept allocating
# from the import-time default (mimalloc).  Measured on the 1 GB crawl's watermark reduce: 896 MB
# peak with the runtime switch, 546 MB with jemalloc chosen through the environment.
POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"


def choose_pool_for_children() -> None:
    """Make processes spawned from now on start with Arrow's returning allocator (jemalloc when
    this pyarrow has it, else the system allocator), unless the user chose one.  Call before the
    pool starts; the workers still set jemalloc's decay to 0 (``worker_init``)."""
    import os

    import pyarrow as pa

    backends = pa.supported_memory_backends()
    os.environ.setdefault(POOL_ENV, "jemalloc" if "jemalloc" in backends else "system")


def choose_pool_early() -> None:
    """The same choice for this process, made before pyarrow is imported (Arrow reads the variable
    at its first allocation; after ``import pyarrow`` it is too late).  Without importing pyarrow
    its build cannot be asked, so jemalloc is assumed where PyPI's wheels have it (Linux and
    macOS); the release writer's peak on the 1 GB crawl: 792 MB -> 622 MB."""
    import os
    import sys

    if "pyarrow" in sys.modules:
        choose_pool_for_children()
        return
    os.environ.setdefault(POOL_ENV, "jemalloc" if sys.platform in ("linux", "darwin") else "system")


def worker_init() -> None:
    """Initializer of a pool worker process."""
    returning_memory_pool()


def run_trimmed(fn, *args):
    """``fn(*args)``, then trim: a pool worker goes back to its baseline between tasks."""
    try:
        return fn(*args)
    finally:
        trim()
