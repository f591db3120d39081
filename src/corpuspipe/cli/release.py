"""``corpuspipe release``: check everything a user can get wrong, take the output's lock, start the
embedded Prefect server and the release loop side by side, run the flow, print the summary."""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from corpuspipe.cli.common import WRITING, UserError, check_raw_dir, check_writable, console, fail, out, warn
from corpuspipe.cli.flowrun import prefect_defaults, restart_prefects_own_server, run_with_server_retry


def release(
    raw_dir: Path = typer.Argument(Path("raw"), help="Directory of raw files (searched recursively)."),
    out: Path = typer.Option(Path("releases"), "--out", help="Where releases are written."),
    version: Optional[str] = typer.Option(None, "--version", help="Release version (default: chosen by comparing with the previous release)."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML file overriding the default configuration."),
    runner: str = typer.Option("process", "--runner", help="Task runner: process (default: 2 worker processes), thread, or dask (a local cluster of 2 worker processes unless --dask-address)."),
    dask_address: Optional[str] = typer.Option(None, "--dask-address", help="Scheduler address of an existing Dask cluster, e.g. tcp://host:8786 (implies --runner dask)."),
    wait: float = typer.Option(0.0, "--wait", help="Seconds to wait while another build holds OUT/.lock (default: refuse at once, exit 75)."),
    allow_empty: bool = typer.Option(False, "--allow-empty", help="Write a release even when no document survives (refused by default)."),
) -> None:
    """Build a release from RAW_DIR with Prefect (embedded ephemeral server by default)."""
    if dask_address:
        runner = "dask"
    cfg = _checked_config(raw_dir, out, config, version, runner)
    lock = _locked(out, wait)  # taken before Prefect starts so a refusal is immediate; the flow re-enters it
    WRITING["to"] = out
    prefect_defaults()
    server = _early_server(lock)
    from corpuspipe.release.steps import release_steps

    # The one release loop, started here: discovery, hashing and every cache lookup run while the
    # server starts.  With nothing to compute it ends without a step (no flow run at all); else its
    # first step starts in the process pool now, and the flow adopts it (orchestrate/flow.py).
    steps = release_steps(raw_dir, cfg, out, version=version, allow_empty=allow_empty, warn=warn)
    first = _first_step(steps, lock)
    if first is None:
        return
    lock.callback(steps.close)  # a flow that never ran: the loop's lock and temporary files are released
    pool, futures = _first_step_in_pool(first, runner, server, lock)
    from corpuspipe.orchestrate.flow import RunContext, Started

    ctx = RunContext(warn=warn, cfg=cfg, pool=pool, started=Started(steps, first, futures))
    params = dict(raw_dir=str(raw_dir), out_dir=str(out), version=version,
                  config_path=str(config) if config else None, allow_empty=allow_empty)
    outcome = _run_flow(lock, ctx, runner, dask_address, server, params)
    if outcome["status"] == "refused":
        fail(str(outcome["error"]), 1)
    summary(Path(outcome["release_dir"]), outcome["status"])


def _checked_config(raw_dir: Path, out: Path, config: Optional[Path], version: Optional[str], runner: str):
    """Everything a user can get wrong, in one line, before Prefect is imported (preflight.py); the
    configuration, loaded and validated once for the whole run."""
    from corpuspipe import preflight

    try:
        check_raw_dir(raw_dir)
        preflight.check_release_out(out)
        check_writable(out)
        cfg = preflight.load_config(config)
        preflight.check_rules(cfg)
        preflight.check_version(version, out)
        if runner not in ("thread", "process", "dask"):
            raise UserError(f"unknown --runner {runner!r}: use thread, process or dask")
    except (UserError, preflight.PreflightError) as exc:
        fail(str(exc))
    return cfg


def _locked(out: Path, wait: float) -> ExitStack:
    """The output's lock in an exit stack that also gathers what the run must release at its end
    (the server, the pool, the loop); another build holding it exits 75."""
    from corpuspipe.release.locking import LockHeld, release_lock

    lock = ExitStack()
    try:
        lock.enter_context(release_lock(out, timeout=wait))
    except LockHeld as exc:
        fail(str(exc), 75)
    return lock


def _early_server(lock: ExitStack):
    """The embedded Prefect server, launched now so it starts while the imports and the release
    loop's discovery run (orchestrate/server.py); None when PREFECT_API_URL names a server."""
    from corpuspipe.orchestrate.server import EarlyServer, wanted

    server = EarlyServer() if wanted() else None
    if server is not None:
        server.start()
        lock.callback(server.stop)
    return server


def _first_step(steps, lock: ExitStack):
    """The release loop's first step; None when the loop ended without one (every pass and reduce
    cached: the summary is printed and no flow runs)."""
    from corpuspipe.release.steps import Refused

    try:
        return next(steps)
    except StopIteration as stop:
        lock.close()
        summary(Path(stop.value.release_dir), stop.value.status)
        console.print("  nothing computed: every pass and reduce was cached (no Prefect flow run)", style="dim",
                      highlight=False)
        return None
    except Refused as exc:
        lock.close()
        fail(str(exc), 1)


def _first_step_in_pool(first, runner: str, server, lock: ExitStack) -> tuple:
    """The process runner's pool with the first step's tasks already submitted (they run while the
    server finishes starting); (None, None) for the other runners."""
    if runner != "process" or server is None:
        return None, None
    from corpuspipe.core.runner import DEFAULT_WORKERS, Pool

    pool = Pool(DEFAULT_WORKERS)
    lock.callback(pool.shutdown, True, True)  # no worker outlives the command
    return pool, first.submit_to(pool)


def _run_flow(lock: ExitStack, ctx, runner: str, dask_address: Optional[str], server, params: dict) -> dict:
    """The flow run under the progress display, retried while the embedded server refused the
    connection before any task ran; the lock and everything gathered with it released after."""
    from corpuspipe.cli.progress import StepBars, progress_display
    from corpuspipe.orchestrate.flow import release_flow
    from corpuspipe.orchestrate.server import ServerFailed
    from corpuspipe.release.validate import ReleaseInvalid

    with lock, progress_display(console) as progress:
        ctx.progress = bars = StepBars(progress)
        flow_run = release_flow(ctx, runner, dask_address)

        def run_flow() -> dict:
            if server is None:
                return flow_run(**params)
            from prefect.settings import PREFECT_API_URL, temporary_settings

            server.wait(float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")))
            with temporary_settings(updates={PREFECT_API_URL: server.api_url}):  # a restart's new port
                return flow_run(**params)

        try:
            return run_with_server_retry(run_flow, lambda: bars.started,
                                         server.restart if server is not None else restart_prefects_own_server)
        except (ServerFailed, ReleaseInvalid) as exc:
            fail(str(exc), 1)


def _shown_path(path: Path) -> str:
    """``releases/1.0.0`` rather than ``/home/…/releases/1.0.0`` when the path is under the current
    directory: the summary's paths are what the user types next."""
    try:
        return str(Path(os.path.abspath(path)).relative_to(os.getcwd()))
    except ValueError:
        return str(path)


def summary(release_dir: Path, status: str = "written", to: Console | None = None) -> None:
    """The lines a build ends with: the version and where it is, rows per table, quarantined inputs,
    the report to open.  ``to``: the console printed to (default: standard output)."""
    from corpuspipe.release.layout import table_rows
    from corpuspipe.release.versioning import read_manifest

    to = to or out
    manifest = read_manifest(release_dir)
    counts = table_rows(manifest)
    shown = _shown_path(release_dir)
    if status == "unchanged":
        to.print(f"release [bold]{manifest['version']}[/] unchanged (inputs, config and code as built): {shown}",
                 highlight=False)
    else:
        to.print(f"release [bold]{manifest['version']}[/] written to {shown}", highlight=False)
    to.print("  " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())), highlight=False)
    q = manifest["quarantine"]
    if q["count"]:
        reasons = ", ".join(f"{r}: {n}" for r, n in q["by_reason"].items())
        to.print(f"  quarantined inputs: {q['count']} ({reasons}); see the quarantine table", highlight=False)
    else:
        to.print("  quarantined inputs: 0", highlight=False)
    if (Path(release_dir) / "report.html").is_file():
        to.print(f"  open {Path(shown) / 'report.html'} to audit it", highlight=False)
