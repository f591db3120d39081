"""Prefect's embedded server, started before the flow's code is imported.

Without ``PREFECT_API_URL`` Prefect starts its own server on the first API call of a flow run
(``prefect.server.api.server.SubprocessASGIServer``): the CLI first imports Prefect and our stages,
then imports the whole server package *in the CLI process* only to launch it, then waits while
the new process imports it again and opens the database.  Measured on the seeds' unchanged
re-run (2 cores, loaded): importing the flow 7.3 s, importing the server module 6.9 s, waiting
for it 9.7 s, one after the other, before any work.

:class:`EarlyServer` launches the same command (uvicorn with Prefect's app factory, UI off, the
caller's environment and ``PREFECT_HOME``) as the very first thing, with plain ``subprocess``, so
the server starts while the CLI imports Prefect and the stages, and the CLI process never imports
the server.  The flow then talks to it through ``PREFECT_API_URL``, set in the environment before
Prefect is imported (the pool's worker processes inherit it).  This module imports nothing of
Prefect.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

# uvicorn's exit status when the port is taken (another server grabbed it after we probed it)
_PORT_IN_USE = 3


class ServerFailed(RuntimeError):
    """The embedded server did not answer (its exit status and the end of its error output)."""


def wanted(environ: "os._Environ[str] | dict[str, str]" = os.environ) -> bool:
    """Whether Prefect would start its own server: no API URL in the environment or in the active
    profile (``PREFECT_PROFILES_PATH``, else ``$PREFECT_HOME/profiles.toml``), and ephemeral mode
    not switched off there.  Otherwise Prefect is left to connect (or refuse) as it would."""
    if environ.get("PREFECT_API_URL"):
        return False
    home = Path(environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    path = Path(environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    profile: dict = {}
    try:
        import tomllib

        data = tomllib.loads(path.read_text(encoding="utf-8"))
        name = environ.get("PREFECT_PROFILE") or data.get("active") or "ephemeral"
        profile = data.get("profiles", {}).get(name, {}) or {}
    except (OSError, ValueError):
        pass
    if profile.get("PREFECT_API_URL"):
        return False
    enabled = environ.get("PREFECT_SERVER_EPHEMERAL_ENABLED",
                          environ.get("PREFECT_SERVER_ALLOW_EPHEMERAL_MODE",
                                      str(profile.get("PREFECT_SERVER_EPHEMERAL_ENABLED", "true"))))
    return str(enabled).strip().lower() not in ("0", "false", "no", "off")


# Services of the embedded server that nothing of a CLI run uses (unless the caller's environment
# turns them back on): the event persister (Prefect's event feed, a UI view; flow runs, task runs,
# their states and logs are stored without it) and the automation triggers/actions (no automation
# can exist on a server that lives for one run).  The 100 MB crawl's release (~60 task runs):
# server CPU 20.0 -> 14.9 s, of which 8.7 s is its start-up.
_QUIET_SERVICES = {"PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED": "false",
                   "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "false"}


def _free_port() -> int:
    """A port the kernel says is free now (bound to 0 and released, not a random guess)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EarlyServer:
    """One embedded Prefect server for one CLI run: ``start()`` returns at once, ``wait()``
    blocks until its health endpoint answers, ``stop()`` ends it (also on ``with`` exit)."""

    def __init__(self) -> None:
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self._err: Path | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> str:
        """Launch the server; set ``PREFECT_API_URL`` for this process and its children."""
        spec = importlib.util.find_spec("prefect")
        if spec is None or spec.origin is None:
            raise ServerFailed("prefect is not installed")
        app_dir = str(Path(spec.origin).parent.parent)  # site-packages, as Prefect passes it
        self.port = _free_port()
        env = {**_QUIET_SERVICES, **os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
               "PREFECT__SERVER_FINAL": "1"}
        env.pop("PREFECT_API_URL", None)
        fd, err = tempfile.mkstemp(prefix="corpuspipe-prefect-server-", suffix=".log")
        self._err = Path(err)
        with os.fdopen(fd, "wb") as errfile:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--app-dir", app_dir, "--factory",
                 "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(self.port),
                 "--log-level", "error", "--lifespan", "on"],
                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errfile)
        os.environ["PREFECT_API_URL"] = self.api_url
        return self.api_url

    def wait(self, timeout: float) -> None:
        """Until ``/api/health`` answers 200; a taken port is retried on a new one."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            code = self.proc.poll()
            if code == _PORT_IN_USE:
                self._cleanup_log()
                self.start()
                continue
            if code is not None:
                raise ServerFailed(f"Prefect's embedded server exited with status {code}: {self._tail()}")
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as r:
                    if r.status == 200 and json.loads(r.read() or b"true") is not False:
                        return
            except (urllib.error.URLError, ConnectionError, OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise ServerFailed(f"Prefect's embedded server did not answer within {timeout:g} s")
            time.sleep(0.05)

    def _tail(self) -> str:
        try:
            lines = [ln for ln in self._err.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
        except (OSError, AttributeError):
            return "no error output"
        return lines[-1][:300] if lines else "no error output"

    def _cleanup_log(self) -> None:
        if self._err is not None:
            self._err.unlink(missing_ok=True)
            self._err = None

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
        self._cleanup_log()
        if os.environ.get("PREFECT_API_URL") == self.api_url:
            del os.environ["PREFECT_API_URL"]

    def restart(self) -> str:
        """A new server on a new port (the old one refused the connection)."""
        self.stop()
        return self.start()

    def __enter__(self) -> "EarlyServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
