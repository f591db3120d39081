"""``corpuspipe`` as a user runs it (a subprocess, output captured) and the checks of its one-line
errors, shared by the cli, release, pipeline and orchestrate tests."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "corpuspipe.cli"]


def run_cli(*args: str, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    """``corpuspipe *args`` in a subprocess, stdout and stderr captured as text; ``kw`` goes to
    ``subprocess.run`` (``env``, ``cwd``).  The timeout only stops a hung run: a build on a loaded
    2-core machine wants ``timeout=600``."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, **kw)


def prefect_env(api_url: str | None, home: Path) -> dict[str, str]:
    """The environment of a CLI subprocess with its own Prefect home: connected to the server at
    ``api_url`` (conftest ``prefect_api``), or, with ``None``, starting the CLI's embedded server."""
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_LOGGING_LEVEL": "WARNING"}
    if api_url is None:
        env.pop("PREFECT_API_URL", None)
    else:
        env["PREFECT_API_URL"] = api_url
    return env


def one_line(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """A refused command: a non-zero exit, no traceback, exactly one line on stderr, holding every
    needle; returns that line."""
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def last_error_line(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """A command that failed after it started work: a non-zero exit, no traceback, progress lines
    (none mentioning an error) and then one ``error:`` line holding every needle; returns it."""
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert lines and lines[-1].startswith("error:"), proc.stderr
    assert not [l for l in lines[:-1] if "error" in l.lower()], proc.stderr  # progress lines only before it
    for n in needles:
        assert n in lines[-1], lines[-1]
    return lines[-1]


def file_digests(root: Path) -> dict[str, str]:
    """Every file under ``root`` (relative posix path) with its sha256; ``{}`` for no folder.
    'Untouched' means this dict is unchanged."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(root).rglob("*")) if p.is_file()}
