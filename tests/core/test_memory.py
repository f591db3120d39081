"""The pool workers' allocators (core/memory.py): what they are is invisible in every output, so
it is checked directly."""

from __future__ import annotations

import os

import pyarrow as pa

from corpuspipe.core import memory


def test_pool_workers_start_with_a_returning_arrow_allocator(monkeypatch):
    """A worker's Arrow pool is chosen through the environment before it starts (a pool switched
    at run time left part of pyarrow on mimalloc: the 1 GB watermark reduce peaked at 896 MB
    instead of 546), and jemalloc gives freed memory back at once (decay 0)."""
    from corpuspipe.core.runner import Pool

    monkeypatch.delenv(memory.POOL_ENV, raising=False)
    pool = Pool(1)
    try:
        want = "jemalloc" if "jemalloc" in pa.supported_memory_backends() else "system"
        assert os.environ[memory.POOL_ENV] == want
        probe = "__import__('pyarrow').default_memory_pool().backend_name"
        assert pool.submit(eval, (probe,)).result().value == want
    finally:
        pool.shutdown()


def test_a_users_allocator_choice_is_kept(monkeypatch):
    monkeypatch.setenv(memory.POOL_ENV, "system")
    memory.choose_pool_for_children()
    assert os.environ[memory.POOL_ENV] == "system"


def test_the_cli_process_chooses_its_allocator_before_pyarrow_is_imported():
    """The release writer runs in the CLI's process: 792 MB -> 622 MB peak at 1 GB with jemalloc
    chosen at start.  Checked in a fresh interpreter (this one imported pyarrow long ago)."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != memory.POOL_ENV}
    code = ("from corpuspipe.cli import _main; _main(version=False, quiet=True, verbose=False); "
            "import pyarrow; print(pyarrow.default_memory_pool().backend_name)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ("jemalloc" if sys.platform in ("linux", "darwin") else "system")
    assert out.stderr == ""  # no allocator warning
