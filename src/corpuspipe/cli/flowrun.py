"""How the CLI runs Prefect: its environment for a run, and the retry when the embedded server
refused the connection before any task ran."""

from __future__ import annotations

import os
import time

from corpuspipe.cli.common import VERBOSE, console


def is_connection_refused(exc: BaseException) -> bool:
    """httpx.ConnectError (or 'Connection refused') anywhere in the exception's chain."""
    seen = 0
    cur: BaseException | None = exc
    while cur is not None and seen < 20:
        if type(cur).__name__ == "ConnectError" or isinstance(cur, ConnectionRefusedError) \
                or "Connection refused" in str(cur):
            return True
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return False


def run_with_server_retry(run, task_started, restart, attempts: int = 3, wait: float = 2.0):
    """Run the flow; if Prefect's embedded server refused the connection before any task ran,
    ``restart()`` it and try again (issue 13 #13).

    On a busy 2-core machine shared by six engineers' test servers a release failed with
    ``httpx.ConnectError: Connection refused``: the embedded server had died or its port (picked at
    random from 8000-8999 by every ephemeral server on the machine) answered for someone else's
    server, which then stopped.  A retry is safe only while no task has run; after that the error
    is reported as it is.
    """
    for attempt in range(1, attempts + 1):
        try:
            return run()
        except Exception as exc:  # noqa: BLE001
            if attempt == attempts or task_started() or not is_connection_refused(exc):
                raise
            console.print(f"[yellow]warning:[/] Prefect's embedded server refused the connection; "
                          f"restarting it (attempt {attempt + 1} of {attempts})", highlight=False, soft_wrap=True)
            restart()
            time.sleep(wait * attempt)


def restart_prefects_own_server() -> None:
    """Without our early server (PREFECT_API_URL unset but the early start declined), Prefect's own
    ephemeral server is stopped so the next flow run starts a new one on a new port."""
    try:
        from prefect.server.api.server import SubprocessASGIServer
    except ImportError:  # pragma: no cover
        return
    for server in list(SubprocessASGIServer._instances.values()):
        try:
            server.stop()
        except Exception:  # noqa: BLE001  (already dead: that is why we are here)
            pass


# Prefect logs a failed task and the flow it fails as ERROR records with the whole traceback (2-15
# of them, 105-331 lines, for one full disk: issue 24 #7), then the CLI prints the one line that
# says what happened.  Unless --verbose, those two loggers only pass CRITICAL (Prefect logs nothing
# at that level): their warnings and errors are the failure the CLI reports itself.
_QUIET_RUN_LOGGERS = ("PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL", "PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL")


def prefect_defaults(one_line_failures: bool = True) -> None:
    """Prefect's environment for a CLI run (set before Prefect is imported).  ``one_line_failures``:
    a task's or flow's failure is not logged with its traceback (unless --verbose); ``serve``, a
    long-lived process whose log is the record of its runs, keeps them."""
    if one_line_failures and VERBOSE["level"] < 2:
        for name in _QUIET_RUN_LOGGERS:
            os.environ.setdefault(name, "CRITICAL")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # The embedded server needs a few seconds more on a busy or fresh machine than the 20 s default.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # When a (cached) run ends quickly the embedded server is stopped while its event recorder is
    # still flushing; Prefect logs that cancellation as tracebacks although the run succeeded.
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
