"""Scheduled builds against a real `prefect server start`: prefect.yaml + worker, and `corpuspipe serve`.

The server runs on a free localhost port with SQLite under a temporary PREFECT_HOME; every
subprocess (server, worker, serve) is killed with its process group in teardown.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from tests.helpers.paths import REPO
from tests.helpers.procs import kill_group

from corpuspipe.release.validate import validate_release

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
CRON = "0 3 * * *"
RUN_TIMEOUT = 300.0  # bounded wait for one flow run on a busy 2-core machine


@dataclass
class Server:
    url: str
    env: dict[str, str]
    home: Path
    procs: list[subprocess.Popen] = field(default_factory=list)

    def start(self, args: list[str], log: str, cwd: Path = REPO) -> subprocess.Popen:
        out = open(self.home / log, "w")
        proc = subprocess.Popen(args, env=self.env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        return (self.home / name).read_text(errors="replace")[-4000:]

    def api(self, method: str, path: str, **kwargs) -> httpx.Response:
        """One API call; a 503 (SQLite busy under the serve process, worker and test at once) is
        retried a few times, as Prefect's own client does."""
        for attempt in range(5):
            r = httpx.request(method, self.url + path, timeout=30, **kwargs)
            if r.status_code != 503:
                return r
            time.sleep(0.5 * (attempt + 1))
        return r


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout: float, what: str, diagnostics=lambda: ""):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{diagnostics()}")
        time.sleep(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect-server")
    port = _free_port()
    env = dict(os.environ)
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_WORKER_QUERY_SECONDS="2",
        PREFECT_RUNNER_POLL_FREQUENCY="2",
        PWD=str(REPO),  # prefect.yaml's {{ $PWD }}: deploy as if run from the repository root
    )
    srv = Server(url=env["PREFECT_API_URL"], env=env, home=home)
    srv.start([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
              "server.log")

    def healthy() -> bool:
        try:
            return srv.api("GET", "/health").status_code == 200
        except httpx.HTTPError:
            return False

    try:
        _wait(healthy, 180, "prefect server start", lambda: srv.log("server.log"))
        yield srv
    finally:
        for proc in reversed(srv.procs):
            kill_group(proc)


def _deployment(server: Server, name: str) -> dict | None:
    r = server.api("GET", f"/deployments/name/build_release/{name}")
    return r.json() if r.status_code == 200 else None


def _run_and_wait(server: Server, deployment: dict, parameters: dict, log: str) -> dict:
    r = server.api("POST", f"/deployments/{deployment['id']}/create_flow_run", json={"parameters": parameters})
    assert r.status_code in (200, 201), r.text
    run_id = r.json()["id"]

    def final():
        run = server.api("GET", f"/flow_runs/{run_id}").json()
        return run if run["state"] and run["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") else None

    run = _wait(final, RUN_TIMEOUT, f"flow run {run_id}", lambda: server.log(log))
    assert run["state"]["type"] == "COMPLETED", (run["state"], server.log(log))
    return run


def _crons(deployment: dict) -> list[str]:
    return [s["schedule"].get("cron") for s in deployment["schedules"]]


def test_prefect_yaml_deployment_runs_on_a_process_worker(server, raw_dir, tmp_path):
    pool = subprocess.run([str(BIN / "prefect"), "work-pool", "create", "local", "--type", "process"],
                          env=server.env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert pool.returncode == 0, pool.stdout + pool.stderr
    deploy = subprocess.run([str(BIN / "prefect"), "--no-prompt", "deploy", "--all"],
                            env=server.env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]

    dep = _deployment(server, "corpuspipe-nightly")
    assert dep is not None
    assert _crons(dep) == [CRON]
    assert dep["work_pool_name"] == "local"
    assert dep["parameters"]["raw_dir"] == "raw" and dep["parameters"]["out_dir"] == "releases"

    server.start([str(BIN / "prefect"), "worker", "start", "--pool", "local"], "worker.log")
    out = tmp_path / "releases"
    _run_and_wait(server, dep, {"raw_dir": str(raw_dir), "out_dir": str(out), "lock_timeout": 60}, "worker.log")
    latest = (out / "latest").read_text().strip()
    assert validate_release(out / latest)["documents"] == 9


def test_corpuspipe_serve_registers_the_cron_and_builds_on_request(server, raw_dir, tmp_path):
    out = tmp_path / "served"
    server.start([str(BIN / "corpuspipe"), "serve", "--cron", CRON, "--raw", str(raw_dir), "--out", str(out),
                  "--name", "test-serve"], "serve.log")
    dep = _wait(lambda: _deployment(server, "test-serve"), 180, "the served deployment", lambda: server.log("serve.log"))
    assert _crons(dep) == [CRON]
    assert dep["parameters"]["raw_dir"] == str(raw_dir.resolve())
    assert dep["parameters"]["out_dir"] == str(out.resolve())

    _run_and_wait(server, dep, {}, "serve.log")
    latest = (out / "latest").read_text().strip()
    assert validate_release(out / latest)["documents"] == 9
