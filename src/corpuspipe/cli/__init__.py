"""Command line: a thin layer over the flow and the release modules.

This package holds the typer app, its global options and the console entry (``corpuspipe.cli:main``);
one module per command family: ``release`` (build), ``serve`` (cron), ``read`` (inspect, verify,
show, diff), ``export`` (export, publish), ``config`` (show, init); ``common`` is what they share.
User errors (missing input, unwritable output, …) print one line saying what and where and
exit non-zero; they never show a traceback.
"""

from __future__ import annotations

import os
import sys

import typer

from corpuspipe.cli import config, export, read, release, serve
from corpuspipe.cli.common import VERBOSE, console, operational_error, out, where

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Build, inspect and publish corpuspipe releases.")
# Registered in the order `--help` and docs/reference/cli.md list them.
for command in (release.release, serve.serve, read.inspect, read.verify, export.export, read.show, read.diff,
                export.publish):
    app.command()(command)
app.add_typer(config.config_app, name="config")


def _version_callback(value: bool) -> None:
    if value:
        from corpuspipe import __version__

        out.print(f"corpuspipe {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                 help="Print the version and exit."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors and the final summary (no progress)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also Prefect's and Dask's own INFO logs."),
) -> None:
    """Build, inspect, export and publish corpuspipe releases."""
    VERBOSE["level"] = 0 if quiet else 2 if verbose else 1
    from corpuspipe.core import memory

    memory.choose_pool_early()  # before anything imports pyarrow (the writer: 792 -> 622 MB at 1 GB)
    if quiet:
        console.quiet = True
    if verbose:
        os.environ["PREFECT_LOGGING_LEVEL"] = "INFO"
        os.environ["DASK_LOGGING__DISTRIBUTED"] = "info"
    else:
        # Dask's LocalCluster logs ~40 distributed.* INFO lines per run; the env var reaches its worker processes
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
        import logging

        logging.getLogger("distributed").setLevel(logging.WARNING)
        # When the local cluster closes, a nanny whose worker takes over 4 s to exit (it is importing or
        # flushing Prefect's client) logs "Worker process still alive after 4.0 seconds, killing": the
        # run is over and nothing is lost, so it is noise unless --verbose.
        logging.getLogger("distributed.nanny").setLevel(logging.ERROR)


def main() -> None:
    """Console entry: a disk-full, permission or damaged-file error anywhere is one line, never a
    traceback; an unexpected error is one line naming its type and place (``--verbose`` shows the
    traceback)."""
    try:
        app()
    except Exception as exc:  # noqa: BLE001
        if VERBOSE["level"] >= 2:
            raise
        msg = operational_error(exc)
        if msg is None:
            msg = (f"internal error: {type(exc).__name__}{where(exc)} "
                   "(run again with --verbose for the traceback, and please report it)")
        from rich.markup import escape

        console.print(f"[bold red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True)
        sys.exit(1)
