"""The CLI's embedded Prefect server, started before the flow's imports (orchestrate/server.py)."""

from __future__ import annotations

import json
import os
import urllib.request

import psutil
import pytest

from corpuspipe.orchestrate.server import EarlyServer, ServerFailed, wanted


def test_started_only_where_prefect_would_start_its_own(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    assert wanted({"PREFECT_HOME": str(home)})  # no profiles file: Prefect's default profile is ephemeral
    assert not wanted({"PREFECT_HOME": str(home), "PREFECT_API_URL": "http://10.0.0.1:4200/api"})
    assert not wanted({"PREFECT_HOME": str(home), "PREFECT_SERVER_EPHEMERAL_ENABLED": "false"})
    (home / "profiles.toml").write_text(
        'active = "team"\n[profiles.team]\nPREFECT_API_URL = "http://prefect.internal:4200/api"\n'
        '[profiles.solo]\nPREFECT_SERVER_EPHEMERAL_ENABLED = "true"\n', encoding="utf-8")
    assert not wanted({"PREFECT_HOME": str(home)})  # the active profile names a server
    assert wanted({"PREFECT_HOME": str(home), "PREFECT_PROFILE": "solo"})
    (home / "profiles.toml").write_text("not = [toml", encoding="utf-8")
    assert wanted({"PREFECT_HOME": str(home)})  # Prefect reports a broken profiles file itself


@pytest.mark.slow
def test_server_answers_and_stops(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / ".prefect"))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with EarlyServer() as server:
        url = server.start()
        assert os.environ["PREFECT_API_URL"] == url
        server.wait(240)
        with urllib.request.urlopen(f"{url}/health", timeout=5) as r:
            assert r.status == 200 and json.loads(r.read()) is True
        proc = server.proc
        env = psutil.Process(proc.pid).environ()
        assert env["PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED"] == "false"
        assert env["PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED"] == "false"
    assert proc.poll() is not None and "PREFECT_API_URL" not in os.environ


def test_a_server_that_dies_or_never_answers_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / ".prefect"))
    with EarlyServer() as server:
        server.start()
        server.proc.kill()
        server.proc.wait()
        with pytest.raises(ServerFailed) as exc:
            server.wait(60)
    assert "exited with status -9" in str(exc.value) and "\n" not in str(exc.value)
    with EarlyServer() as server:
        server.start()
        with pytest.raises(ServerFailed) as exc:
            server.wait(0.2)  # no server imports Prefect that fast
        assert server.proc is None  # stopped, not left behind
    assert str(exc.value) == "Prefect's embedded server did not answer within 0.2 s"


def test_unused_services_are_off_unless_the_caller_turns_them_on(tmp_path, monkeypatch):
    """The embedded server runs without the event persister and automation triggers (nothing of a
    CLI run reads them); a caller's own setting of either wins."""
    import corpuspipe.orchestrate.server as server_mod

    seen = []

    class FakePopen:
        def __init__(self, cmd, env, **kw):
            seen.append(env)
            self.pid = 0

    monkeypatch.setattr(server_mod.subprocess, "Popen", FakePopen)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / ".prefect"))
    monkeypatch.delenv("PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED", raising=False)
    monkeypatch.setenv("PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED", "true")
    # recorded before start() sets it, so teardown puts back the caller's value or its absence: the
    # fake server's URL must not reach the tests after this one (delenv of an unset name records nothing)
    monkeypatch.setenv("PREFECT_API_URL", "unset")
    monkeypatch.delenv("PREFECT_API_URL")
    server = EarlyServer()
    server.start()
    assert os.environ["PREFECT_API_URL"] == server.api_url
    assert seen[0]["PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED"] == "false"
    assert seen[0]["PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED"] == "true"
    assert seen[0]["PREFECT_UI_ENABLED"] == "0" and "PREFECT_API_URL" not in seen[0]
    server._err.unlink(missing_ok=True)  # the error log a real server would have written
