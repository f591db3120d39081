"""`corpuspipe release --runner dask` gives the same bytes as the default runner.

Each build runs the CLI in a subprocess with its own fresh Prefect home, so no build can reuse
another's cached task results: both really compute every stage.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import prefect_env, run_cli
from tests.helpers.seed_release import data_files


def _cli(api: str, home: Path, *args: str) -> subprocess.CompletedProcess:
    """``corpuspipe`` in a subprocess on the suite's shared Prefect server (conftest ``prefect_api``):
    the runners differ in where tasks compute, not in how the flow reaches its server."""
    return run_cli(*args, env=prefect_env(api, home), timeout=900)


def _release(api: str, tmp_path: Path, raw: Path, name: str, *extra: str) -> Path:
    out = tmp_path / name
    proc = _cli(api, tmp_path / f"home-{name}", "release", str(raw), "--out", str(out), "--version", "1.0.0", *extra)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out / "1.0.0"


def test_runner_selection():
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    from corpuspipe.orchestrate.flow import build_release, release_flow

    assert isinstance(build_release.task_runner, ThreadPoolTaskRunner)  # deployments: threads feeding a pool
    assert isinstance(release_flow(runner="thread").task_runner, ThreadPoolTaskRunner)
    assert release_flow(runner="process", workers=3).task_runner._max_workers == 3
    local = release_flow(runner="dask").task_runner
    assert isinstance(local, DaskTaskRunner) and local.address is None
    assert local.cluster_kwargs["n_workers"] == 2 and local.cluster_kwargs["processes"] is True
    remote = release_flow(runner="dask", dask_address="tcp://10.0.0.5:8786").task_runner
    assert isinstance(remote, DaskTaskRunner) and remote.address == "tcp://10.0.0.5:8786"
    with pytest.raises(ValueError, match="unknown task runner"):
        release_flow(runner="ray")


def test_cli_rejects_unknown_runner(tmp_path, raw_dir, prefect_api):
    proc = _cli(prefect_api, tmp_path / "home", "release", str(raw_dir), "--out", str(tmp_path / "out"), "--runner", "ray")
    assert proc.returncode == 2 and "unknown --runner 'ray'" in proc.stderr


@pytest.fixture(scope="module")
def default_release(tmp_path_factory, raw_dir, prefect_api) -> Path:
    return _release(prefect_api, tmp_path_factory.mktemp("default"), raw_dir, "default")


@pytest.mark.slow
def test_dask_local_cluster_gives_byte_identical_parquet(default_release, tmp_path, raw_dir, prefect_api):
    default = default_release
    out = tmp_path / "dask"
    proc = _cli(prefect_api, tmp_path / "home-dask", "release", str(raw_dir), "--out", str(out), "--version", "1.0.0",
                "--runner", "dask")
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Dask's own logs (INFO lines, the nanny's worker-kill warning at close) only with --verbose
    assert "distributed." not in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]
    dask = out / "1.0.0"
    assert data_files(dask) == data_files(default)
    for fname in data_files(dask):
        assert (dask / fname).read_bytes() == (default / fname).read_bytes(), fname


@pytest.mark.slow
def test_thread_runner_gives_byte_identical_parquet(default_release, tmp_path, raw_dir, prefect_api):
    thread = _release(prefect_api, tmp_path, raw_dir, "thread", "--runner", "thread")
    assert data_files(thread) == data_files(default_release)
    for fname in data_files(thread):
        assert (thread / fname).read_bytes() == (default_release / fname).read_bytes(), fname


@pytest.mark.slow
def test_a_cluster_started_with_the_dask_commands_gives_byte_identical_parquet(default_release, tmp_path, raw_dir,
                                                                              prefect_api):
    """Issue 21: an existing cluster as an operator starts one -- `dask scheduler` and `dask worker
    --nthreads 1` as separate processes -- runs the release's tasks (passes, dedup and writer
    steps) and gives the default runner's bytes."""
    import json as _json
    import time as _time

    from tests.helpers.procs import kill_group

    dask = Path(sys.executable).with_name("dask")
    sched_file = tmp_path / "scheduler.json"
    env = {**os.environ, "DASK_LOGGING__DISTRIBUTED": "warning"}
    procs = [subprocess.Popen([str(dask), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(sched_file)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)]
    try:
        deadline = _time.monotonic() + 120
        while not sched_file.is_file() and _time.monotonic() < deadline:
            _time.sleep(0.2)
        address = _json.loads(sched_file.read_text())["address"]
        for _ in range(2):
            procs.append(subprocess.Popen([str(dask), "worker", address, "--nthreads", "1", "--nworkers", "1",
                                           "--no-dashboard"], env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, start_new_session=True))
        from distributed import Client

        with Client(address) as client:
            client.wait_for_workers(2, timeout=120)
            remote = _release(prefect_api, tmp_path, raw_dir, "cli-cluster", "--dask-address", address)
            ran = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.transition_log))
    finally:
        for p in procs:
            kill_group(p)
    assert ran > 0
    for fname in data_files(default_release):
        assert (remote / fname).read_bytes() == (default_release / fname).read_bytes(), fname
