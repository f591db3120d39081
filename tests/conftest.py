"""Shared test fixtures: the repo paths, the shared data, one Prefect test server per session."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.helpers.cli import prefect_env
from tests.helpers.paths import EXTERNAL, RAW, REPO


# Keep Prefect's state out of the user's home and quiet; set before prefect is imported.
_PREFECT_HOME = Path(tempfile.mkdtemp(prefix="corpuspipe-prefect-"))
os.environ["PREFECT_HOME"] = str(_PREFECT_HOME)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def raw_dir() -> Path:
    return RAW


@pytest.fixture(scope="session")
def external() -> Path:
    if not EXTERNAL.is_dir():
        pytest.fail(f"shared external data not found at {EXTERNAL} (CI keeps ../shared beside the repo)")
    return EXTERNAL


@pytest.fixture(scope="session")
def gov_reports(external: Path) -> list[dict]:
    """The 88 real reports of ``external/gov_reports`` (government work reports, then CPC congress
    reports), one dict per JSONL record, read once per session."""
    rows = []
    for name in ("government_work_reports.jsonl", "cpc_congress_reports.jsonl"):
        with open(external / "gov_reports" / name, encoding="utf-8") as fh:
            rows += [json.loads(line) for line in fh]
    return rows


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server for all flow tests; heartbeats off (15x faster runs)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=240):
        with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory) -> str:
    """The API URL of one Prefect server (the CLI's own embedded-server class) shared by the CLI
    runs in subprocesses whose test is not about the server: each such run otherwise starts its
    own and, under a fresh ``PREFECT_HOME``, migrates a new database first (~5-10 s of a loaded
    2-core machine per run).  The embedded-server path itself is tested where it is the subject
    (test_early_server, test_incremental, test_trust_cli's busy machine, the docs' snippets)."""
    from corpuspipe.orchestrate.server import EarlyServer

    saved = {k: os.environ.get(k) for k in ("PREFECT_API_URL", "PREFECT_HOME")}

    def restore() -> None:  # EarlyServer.start sets PREFECT_API_URL for its own process: not ours
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-shared"))
    srv = EarlyServer()
    try:
        url = srv.start()
        srv.wait(240)
        url = srv.api_url  # a taken port is retried on another
    finally:
        restore()
    try:
        yield url
    finally:
        srv.stop()


@pytest.fixture
def cli_env(prefect_api, tmp_path) -> dict[str, str]:
    """The environment for ``corpuspipe`` in a subprocess, connected to the shared server."""
    return prefect_env(prefect_api, tmp_path / ".prefect-client")


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_PREFECT_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def seed_release(tmp_path_factory) -> Path:
    """A release of raw/ (the seed essays) plus one planted near-copy of seed 000 (so there is a
    document cluster), built once per session without Prefect."""
    from tests.helpers.seed_release import build_seed_release, plant_copy

    root = tmp_path_factory.mktemp("seed")
    raw = root / "raw"
    shutil.copytree(RAW, raw)
    plant_copy(raw)
    return build_seed_release(raw, root / "releases")
