"""Command line: a thin layer over the flow and the release modules.

User errors (missing input, unwritable output, …) print one line saying what and where and
exit non-zero; they never show a traceback.
"""

from __future__ import annotations

import errno
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Build, inspect and publish corpuspipe releases.")
console = Console(stderr=True)
out = Console()


config_app = typer.Typer(no_args_is_help=True, help="Show or start a configuration file.")
app.add_typer(config_app, name="config")
VERBOSE = {"level": 1}  # 0 quiet, 1 normal, 2 verbose


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


@config_app.command("show")
def config_show(
    config: Optional[Path] = typer.Option(None, "--config", help="TOML file overriding the defaults."),
) -> None:
    """Print the effective configuration as commented TOML (values differing from the default say so)."""
    from corpuspipe import configdoc, preflight

    try:
        cfg = preflight.load_config(config)
    except preflight.PreflightError as exc:
        _fail(str(exc))
    sys.stdout.write(configdoc.to_toml(cfg))
    sys.stdout.write(f"# config hash: {cfg.config_hash()}\n")


@config_app.command("init")
def config_init(
    path: Path = typer.Argument(Path("corpuspipe.toml"), help="Where to write the starting file."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented starting file: every key with its default and meaning, commented out."""
    from corpuspipe import configdoc
    from corpuspipe.core.io import atomic_write_text

    if path.exists() and not force:
        _fail(f"{path} exists; pass --force to overwrite it")
    if path.exists() and not path.is_file():
        _fail(f"not a file: {path}")
    atomic_write_text(path, configdoc.to_toml(commented_out=True))
    console.print(f"wrote {path}: uncomment and edit the keys you want, then pass --config {path}", highlight=False)


class UserError(Exception):
    """A problem the user can fix; reported as one line."""


def _fail(msg: str, code: int = 2) -> None:
    from rich.markup import escape

    # escape: messages hold [brackets] (extras like corpuspipe[s3], TOML tables) that rich would eat
    console.print(f"[bold red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def check_raw_dir(raw: Path) -> None:
    if not raw.exists():
        raise UserError(f"raw directory not found: {raw}")
    if not raw.is_dir():
        raise UserError(f"raw path is not a directory: {raw}")
    try:
        has_files = any(p.is_file() for p in raw.rglob("*"))
    except OSError as exc:
        raise UserError(f"cannot read raw directory {raw}: {exc.strerror or exc}") from None
    if not has_files:
        raise UserError(f"raw directory is empty: {raw}")


def check_writable(out_dir: Path) -> None:
    probe_root = out_dir
    while not probe_root.exists():
        probe_root = probe_root.parent
    if not probe_root.is_dir():
        raise UserError(f"output path is not a directory: {probe_root}")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".write-probe"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"cannot write to output directory {out_dir}: {exc.strerror or exc}") from None


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


def _restart_prefects_own_server() -> None:
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


def _prefect_defaults(one_line_failures: bool = True) -> None:
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


@app.command()
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
    from contextlib import ExitStack

    from corpuspipe.release.locking import LockHeld, release_lock

    from corpuspipe import preflight

    if dask_address:
        runner = "dask"
    try:  # everything a user can get wrong, in one line, before Prefect is imported (preflight.py)
        check_raw_dir(raw_dir)
        preflight.check_release_out(out)
        check_writable(out)
        cfg = preflight.load_config(config)
        preflight.check_rules(cfg)
        preflight.check_version(version, out)
        if runner not in ("thread", "process", "dask"):
            raise UserError(f"unknown --runner {runner!r}: use thread, process or dask")
    except (UserError, preflight.PreflightError) as exc:
        _fail(str(exc))
    lock = ExitStack()  # taken before Prefect starts so a refusal is immediate; the flow re-enters it
    try:
        lock.enter_context(release_lock(out, timeout=wait))
    except LockHeld as exc:
        _fail(str(exc), 75)
    _WRITING["to"] = out
    _prefect_defaults()
    from corpuspipe.orchestrate.server import EarlyServer, ServerFailed, wanted

    server = EarlyServer() if wanted() else None
    if server is not None:  # launched now, it starts while the imports below run (orchestrate/server.py)
        server.start()
        lock.callback(server.stop)
    from corpuspipe.core.runner import DEFAULT_WORKERS, Pool
    from corpuspipe.release.steps import Refused, release_steps

    # The one release loop, started here: discovery, hashing and every cache lookup run while the
    # server starts.  With nothing to compute it ends without a step (no flow run at all); else its
    # first step starts in the process pool now, and the flow adopts it (orchestrate/flow.py).
    steps = release_steps(raw_dir, cfg, out, version=version, allow_empty=allow_empty, warn=_warn)
    try:
        first = next(steps)
    except StopIteration as stop:
        lock.close()
        _summary(Path(stop.value.release_dir), stop.value.status)
        console.print("  nothing computed: every pass and reduce was cached (no Prefect flow run)", style="dim",
                      highlight=False)
        return
    except Refused as exc:
        lock.close()
        _fail(str(exc), 1)
    lock.callback(steps.close)  # a flow that never ran: the loop's lock and temporary files are released
    pool = futures = None
    if runner == "process" and server is not None:
        pool = Pool(DEFAULT_WORKERS)
        lock.callback(pool.shutdown, True, True)  # no worker outlives the command
        futures = first.submit_to(pool)
    from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
    from rich.table import Column
    from rich.text import Text

    class AmountColumn(ProgressColumn):
        """Passes: raw MB done/total, MB/s and ETA, documents so far; other steps: done/total."""

        def render(self, task) -> Text:
            if task.fields.get("unit") == "bytes":
                mb, tot = task.completed / 1e6, task.total / 1e6
                rate = f"{task.speed / 1e6:.1f} MB/s" if task.speed else "…"
                eta = f"ETA {int(task.time_remaining)}s" if task.time_remaining is not None and not task.finished else ""
                return Text(" ".join(x for x in (f"{mb:,.1f}/{tot:,.1f} MB", rate, eta, task.fields.get("docs", "")) if x))
            return Text(f"{int(task.completed)}/{int(task.total)}")

    from corpuspipe.orchestrate.flow import RunContext, Started, release_flow
    from corpuspipe.release.validate import ReleaseInvalid

    with lock, Progress(
        # fixed, non-wrapping columns: on an 80-column or non-terminal output the long pass labels
        # squeezed the amounts into one word per line
        TextColumn("{task.description}", table_column=Column(width=30, no_wrap=True, overflow="ellipsis")),
        *([BarColumn(bar_width=10)] if console.width >= 100 else []),
        AmountColumn(table_column=Column(no_wrap=True)), TimeElapsedColumn(table_column=Column(no_wrap=True)),
        console=console
    ) as progress:
        bars: dict[str, int] = {"start-up": progress.add_task("start-up (Prefect server)", total=1)}
        started = [False]

        def on_progress(stage: str, done: int, total: int, unit: str = "tasks", documents: int | None = None) -> None:
            started[0] = True
            if not progress.tasks[bars["start-up"]].finished:
                progress.update(bars["start-up"], completed=1)  # the first step of the flow: Prefect is up
            if stage not in bars:
                bars[stage] = progress.add_task(stage, total=max(total, 1), unit=unit, docs="")
            docs = f"{documents:,} docs" if documents is not None else ""
            progress.update(bars[stage], completed=done if total else 1, docs=docs)

        ctx = RunContext(progress=on_progress, warn=_warn, cfg=cfg, pool=pool,
                         started=Started(steps, first, futures))
        flow_run = release_flow(ctx, runner, dask_address)
        params = dict(raw_dir=str(raw_dir), out_dir=str(out), version=version,
                      config_path=str(config) if config else None, allow_empty=allow_empty)

        def run_flow() -> dict:
            if server is None:
                return flow_run(**params)
            from prefect.settings import PREFECT_API_URL, temporary_settings

            server.wait(float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")))
            with temporary_settings(updates={PREFECT_API_URL: server.api_url}):  # a restart's new port
                return flow_run(**params)

        try:
            outcome = run_with_server_retry(run_flow, lambda: started[0],
                                            server.restart if server is not None else _restart_prefects_own_server)
        except (ServerFailed, ReleaseInvalid) as exc:
            _fail(str(exc), 1)
    if outcome["status"] == "refused":
        _fail(str(outcome["error"]), 1)
    _summary(Path(outcome["release_dir"]), outcome["status"])


def _warn(message: str) -> None:
    """One warning line (damaged work-cache entries, ...)."""
    from rich.markup import escape

    console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


@app.command()
def serve(
    cron: str = typer.Option(..., "--cron", help='Cron schedule (UTC), e.g. "0 3 * * *" for 03:00 daily.'),
    raw_dir: Path = typer.Option(Path("raw"), "--raw", help="Directory of raw files."),
    out: Path = typer.Option(Path("releases"), "--out", help="Where releases are written."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML file overriding the default configuration."),
    name: str = typer.Option("corpuspipe-serve", "--name", help="Deployment name (flow build_release)."),
    publish: Optional[str] = typer.Option(None, "--publish", help="Publish each new release to this path or fsspec URL."),
) -> None:
    """Run build_release on a cron schedule in this long-lived process (needs a Prefect server: PREFECT_API_URL)."""
    _prefect_defaults(one_line_failures=False)
    from prefect.client.schemas.schedules import CronSchedule

    try:
        CronSchedule(cron=cron)
    except ValueError:
        _fail(f"not a valid cron expression: {cron!r}")
    if not os.environ.get("PREFECT_API_URL"):
        _fail("serve needs a Prefect server: run `prefect server start` and set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api)")
    try:
        check_raw_dir(raw_dir)
        check_writable(out)
        from corpuspipe import preflight

        preflight.check_rules(preflight.load_config(config))
        if publish:
            preflight.check_publish_target(publish)
    except (UserError, preflight.PreflightError) as exc:
        _fail(str(exc))
    from corpuspipe.orchestrate.serve import serve_release

    serve_release(cron=cron, raw_dir=raw_dir, out_dir=out, config_path=config, name=name, publish_target=publish)


def _shown_path(path: Path) -> str:
    """``releases/1.0.0`` rather than ``/home/…/releases/1.0.0`` when the path is under the current
    directory: the summary's paths are what the user types next."""
    try:
        return str(Path(os.path.abspath(path)).relative_to(os.getcwd()))
    except ValueError:
        return str(path)


def _summary(release_dir: Path, status: str = "written") -> None:
    from corpuspipe.release.versioning import read_manifest

    from corpuspipe.release.layout import table_rows

    manifest = read_manifest(release_dir)
    counts = table_rows(manifest)
    shown = _shown_path(release_dir)
    if status == "unchanged":
        out.print(f"release [bold]{manifest['version']}[/] unchanged (inputs, config and code as built): {shown}",
                  highlight=False)
    else:
        out.print(f"release [bold]{manifest['version']}[/] written to {shown}", highlight=False)
    out.print("  " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())), highlight=False)
    q = manifest["quarantine"]
    if q["count"]:
        reasons = ", ".join(f"{r}: {n}" for r, n in q["by_reason"].items())
        out.print(f"  quarantined inputs: {q['count']} ({reasons}); see the quarantine table", highlight=False)
    else:
        out.print("  quarantined inputs: 0", highlight=False)
    if (Path(release_dir) / "report.html").is_file():
        out.print(f"  open {Path(shown) / 'report.html'} to audit it", highlight=False)


def _resolve_release(path: Path) -> Path:
    _RELEASE_READ["dir"] = path
    if (path / "MANIFEST.json").is_file():
        return path
    latest = path / "latest"
    if latest.is_file():
        candidate = path / latest.read_text(encoding="utf-8").strip()
        if (candidate / "MANIFEST.json").is_file():
            _RELEASE_READ["dir"] = candidate
            return candidate
    raise UserError(f"not a release (no MANIFEST.json): {path}")


def _damaged(exc: Exception) -> None:
    """A release that does not match its manifest: one line naming the file, exit 1."""
    _fail(str(exc), 1)


@app.command()
def inspect(
    release_dir: Path = typer.Argument(..., help="A release directory, or a releases root (uses 'latest')."),
    sample: int = typer.Option(3, "--sample", help="How many sample documents to show."),
) -> None:
    """Print counts per table, removals per rule, flags, and a sample."""
    import pyarrow.parquet as pq

    from corpuspipe.release.stats import collect_stats
    from corpuspipe.release.verify import ReleaseDamaged, open_release

    try:
        release_dir = _resolve_release(release_dir)
        release = open_release(release_dir)
        parts = {name: release.parts(name) for name in release.tables()}  # every part checked before it is read
        stats = collect_stats(release_dir, release.manifest)
    except UserError as exc:
        _fail(str(exc))
    except ReleaseDamaged as exc:
        _damaged(exc)
    manifest = release.manifest
    out.print(f"[bold]{manifest['dataset']}[/] {manifest['version']}  content {manifest['content_hash'][:12]}  "
              f"created {manifest['created_at']}", highlight=False)
    _inspect_tables(stats)
    _inspect_edits_and_boilerplate(stats)
    d = stats["documents"]
    for what, c in (("script", d["scripts"]), ("flag", d["flags"])):
        t = Table(title=f"documents per {what}")
        t.add_column(what)
        t.add_column("documents", justify="right")
        for k, n in c.items():
            t.add_row(k, f"{n:,}")
        if not c:
            t.add_row("(none)", "0")
        out.print(t)
    t = Table(title="verified duplicate pairs (duplicates)")
    for col in ("level", "relation", "pairs"):
        t.add_column(col, justify="right" if col == "pairs" else "left")
    per = stats["pairs_per_relation"]
    for level in ("document", "section"):
        rows = sorted((k, n) for k, n in per.items() if k[0] == level) or [((level, "(none)"), 0)]
        for (lv, rel), n in rows:
            t.add_row(lv, rel, f"{n:,}")
    out.print(t)
    out.print(f"documents kept after deduplication: {d['rows'] - d['duplicates']:,} of {d['rows']:,} "
              f"({d['duplicates']:,} with duplicate_of set)", highlight=False)
    q = manifest["quarantine"]
    t = Table(title=f"quarantined inputs: {q['count']:,}")
    t.add_column("reason")
    t.add_column("files or lines", justify="right")
    for r, n in q["by_reason"].items():
        t.add_row(r, f"{n:,}")
    if q["by_reason"]:
        out.print(t)
    else:
        out.print("quarantined inputs: 0", highlight=False)
    from corpuspipe.release.report import plural

    t = Table(title=f"sample ({plural(min(sample, d['rows']), 'document')})")
    for col in ("doc_id", "script", "title", "chars", "text"):
        t.add_column(col, justify="right" if col == "chars" else "left", overflow="fold")
    shown = 0
    for path in parts.get("documents", []):
        if shown >= sample:
            break
        docs = pq.ParquetFile(path)
        for i in range(docs.num_row_groups):
            rows = docs.read_row_group(i, columns=["doc_id", "title", "script", "char_count", "text"])
            for r in rows.slice(0, sample - shown).to_pylist():
                t.add_row(r["doc_id"], r["script"], r["title"] or "", f"{r['char_count']:,}",
                          r["text"][:30].replace("\n", " ") + "…")
                shown += 1
            if shown >= sample:
                break
    out.print(t)


def _inspect_tables(stats: dict) -> None:
    t = Table(title="tables")
    for col in ("table", "parts", "rows", "bytes"):
        t.add_column(col, justify="left" if col == "table" else "right")
    for name, info in stats["tables"].items():
        t.add_row(name, str(info["parts"]), f"{info['rows']:,}", f"{info['bytes']:,}")
    out.print(t)


def _inspect_edits_and_boilerplate(stats: dict) -> None:
    from rich.text import Text

    from corpuspipe.release.report import BOILERPLATE_SHOWN

    t = Table(title="edits per rule")
    for col in ("stage", "rule", "edits", "raw chars"):
        t.add_column(col, justify="right" if col in ("edits", "raw chars") else "left")
    for (stage, rule), (n, chars) in stats["edits_per_stage_rule"].items():
        t.add_row(stage, rule, str(n), str(chars))
    out.print(t)
    lines = stats["boilerplate_all"]
    t = Table(title=f"boilerplate lines the detector removed: {len(lines):,}"
              + (f" (first {BOILERPLATE_SHOWN})" if len(lines) > BOILERPLATE_SHOWN else ""))
    for col in ("documents", "sites", "rule", "example"):
        t.add_column(col, justify="right" if col in ("documents", "sites") else "left")
    for r in lines[:BOILERPLATE_SHOWN]:  # corpus text as Text: a `[来源：…]` is not Rich markup
        t.add_row(str(r["documents"]), str(r["sites"]), r["rule"], Text(r["example"]))
    if not lines:
        t.add_row("0", "0", "(none)", "")
    out.print(t)


@app.command()
def verify(
    release_dir: Path = typer.Argument(..., help="A release directory, or a releases root (uses 'latest')."),
) -> None:
    """Check a release against its manifest: every file's size and sha256, the content hash, and the
    release contract (schemas, versions, row counts, section and edit texts, ids).  Exit 1 if anything differs."""
    from corpuspipe.release.validate import ReleaseInvalid, validate_release
    from corpuspipe.release.verify import ReleaseDamaged, check_files, load_manifest
    from corpuspipe.release.versioning import manifest_files

    try:
        release_dir = _resolve_release(release_dir)
        manifest = load_manifest(release_dir)
    except UserError as exc:
        _fail(str(exc))
    except ReleaseDamaged as exc:
        _damaged(exc)
    files = manifest_files(manifest)
    problems = check_files(release_dir, manifest)
    total = sum(int(f.get("bytes", 0)) for f in files)
    out.print(f"release {manifest.get('version')} at {release_dir}", highlight=False)
    out.print(f"  files: {len(files)} listed in MANIFEST.json ({total:,} bytes): size and sha256 "
              + ("all match" if not problems else f"{len(problems)} differ"), highlight=False)
    out.print("  content hash: matches the outputs list", highlight=False)
    for p in problems:
        console.print(f"[bold red]damaged:[/] {p}", highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(1)
    try:
        counts = validate_release(release_dir)
    except ReleaseInvalid as exc:
        console.print(f"[bold red]invalid:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    out.print("  contract: schemas, version metadata, row counts, section and edit texts against their documents, "
              "unique ids, clusters named by documents: ok", highlight=False)
    out.print("  rows: " + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())), highlight=False)
    out.print("verified", highlight=False)


@app.command()
def export(
    release_dir: Path = typer.Argument(..., help="A release directory, or a releases root (uses 'latest')."),
    out_dir: Path = typer.Argument(..., help="New (or empty) directory for the shards."),
    level: str = typer.Option("document", "--level", help="document (one per near-duplicate cluster) or section (deduplicated leaf sections)."),
    formats: Optional[list[str]] = typer.Option(None, "--format", help="parquet and/or jsonl (zstd-compressed .jsonl.zst); repeat for both (default: both)."),
    exclude_flags: Optional[list[str]] = typer.Option(None, "--exclude-flag", help="Drop documents with this flag (repeatable; default: mojibake)."),
    keep_flagged: bool = typer.Option(False, "--keep-flagged", help="Exclude no flag."),
    scripts: Optional[list[str]] = typer.Option(None, "--script", help="Keep only documents whose raw script is this (repeatable: simplified, traditional, mixed)."),
    min_chars: int = typer.Option(1, "--min-chars", help="Minimum characters of the exported text's document."),
    max_chars: Optional[int] = typer.Option(None, "--max-chars", help="Maximum characters of the document."),
    mins: Optional[list[str]] = typer.Option(None, "--min", help="Lower bound on a document column, NAME=NUMBER, e.g. han_ratio=0.7 (repeatable)."),
    maxs: Optional[list[str]] = typer.Option(None, "--max", help="Upper bound, e.g. dup_10gram_frac=0.3 or best_containment=0.8 (repeatable)."),
    shard_rows: int = typer.Option(50_000, "--shard-rows", help="Rows per shard."),
) -> None:
    """Write training-ready shards of deduplicated documents or leaf sections, with a manifest naming the release."""
    from corpuspipe import preflight
    from corpuspipe.release.export import ExportError, Selection, export_release, parse_bounds
    from corpuspipe.release.verify import ReleaseDamaged

    try:
        resolved = _resolve_release(release_dir)
        preflight.check_output_path(out_dir, "the export into")
        _check_flags(exclude_flags or [], "--exclude-flag")
        sel = Selection(level=level, exclude_flags=[] if keep_flagged else list(exclude_flags or ["mojibake"]),
                        scripts=list(scripts or []), min_chars=min_chars, max_chars=max_chars,
                        min=parse_bounds(mins or [], "min"), max=parse_bounds(maxs or [], "max"))
        sel.check()
        _WRITING["to"] = out_dir
        result = export_release(resolved, out_dir, sel, formats=formats or ["parquet", "jsonl"], shard_rows=shard_rows)
    except (UserError, ExportError, preflight.PreflightError) as exc:
        _fail(str(exc))
    except ReleaseDamaged as exc:
        _damaged(exc)
    from corpuspipe.release.report import plural

    out.print(f"exported {plural(result.rows, level)} of release {result.manifest['release_version']} "
              f"into {plural(len(result.files), 'file')} in {out_dir}", highlight=False)


@app.command()
def show(
    release_dir: Path = typer.Argument(..., help="A release directory, or a releases root (uses 'latest')."),
    item_id: str = typer.Argument(..., help="A doc_id or section_id."),
    html_path: Optional[Path] = typer.Option(None, "--html", help="Also write the story as a static HTML page here."),
    context: int = typer.Option(30, "--context", help="Characters of clean text shown around each edit."),
) -> None:
    """One document or section: title, flags, signals, cluster and representative, verified pairs, and every edit with its rule."""
    from corpuspipe.release.show import NotFound, load_story, render_html, render_terminal
    from corpuspipe.release.verify import ReleaseDamaged

    from corpuspipe import preflight

    try:
        resolved = _resolve_release(release_dir)
        if html_path is not None:
            preflight.check_output_path(html_path, "--html")
            _WRITING["to"] = html_path
        story = load_story(resolved, item_id)
    except (UserError, NotFound, preflight.PreflightError) as exc:
        _fail(str(exc))
    except ReleaseDamaged as exc:
        _damaged(exc)
    from corpuspipe.release.flag_reasons import flag_reasons
    from corpuspipe.release.show import edits_of
    from corpuspipe.release.versioning import read_manifest

    reasons = flag_reasons(story.doc, edits_of(resolved, story.doc["doc_id"]), read_manifest(resolved).get("config"))
    render_terminal(story, out, context=context, reasons=reasons)
    if html_path is not None:
        from corpuspipe.core.io import atomic_write_text

        atomic_write_text(html_path, render_html(story, reasons))
        console.print(f"wrote {html_path}", highlight=False)


def _check_flags(flags: list[str], option: str) -> None:
    """Every flag named is one the pipeline raises (a typo used to filter nothing, silently)."""
    from corpuspipe.release.report import FLAG_MEANINGS
    from corpuspipe.stages.watermark import EMPTIED_FLAG, KEPT_FLAG

    known = sorted({*FLAG_MEANINGS, EMPTIED_FLAG, KEPT_FLAG})
    for f in flags:
        if f not in known:
            raise UserError(f"unknown flag {f!r} for {option}: use one of {', '.join(known)}")


@app.command()
def diff(
    a: Path = typer.Argument(..., help="Older release (or releases root)."),
    b: Path = typer.Argument(..., help="Newer release (or releases root)."),
    out_path: Optional[Path] = typer.Option(None, "--out", help="Write CHANGELOG markdown here instead of stdout (never into a release)."),
) -> None:
    """Print the changelog of B against A (rows added/removed/changed per table, schema and config
    changes) to stdout, or write it to --out.  Releases are never written to."""
    from corpuspipe.release.changelog import changelog_text
    from corpuspipe.release.verify import ReleaseDamaged

    from corpuspipe import preflight

    try:
        a, b = _resolve_release(a), _resolve_release(b)
        if out_path is not None and not (out_path.exists() and not out_path.is_file()):  # /dev/stdout: fine
            preflight.check_output_path(out_path, "--out")
            _WRITING["to"] = out_path
    except (UserError, preflight.PreflightError) as exc:
        _fail(str(exc))
    try:
        text = changelog_text(a, b)
    except ReleaseDamaged as exc:
        _damaged(exc)
    if out_path is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    if out_path.exists() and not out_path.is_file():  # /dev/stdout, a pipe: write through
        with open(out_path, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        from corpuspipe.core.io import atomic_write_text

        atomic_write_text(out_path, text)
    console.print(f"wrote {out_path}", highlight=False)


@app.command()
def publish(
    release_dir: Path = typer.Argument(..., help="A release directory (or releases root: uses 'latest')."),
    target: str = typer.Argument(..., help="fsspec URL: a path, file://, s3:// (extra s3), gs:// (extra gcs)."),
) -> None:
    """Copy a release to TARGET/<version>/ after checking every sha256; refuses to overwrite other content."""
    from corpuspipe.preflight import PreflightError, check_publish_target

    try:
        resolved = _resolve_release(release_dir)
        check_publish_target(target)
    except (UserError, PreflightError) as exc:
        _fail(str(exc))
    from corpuspipe.release.publish import ALREADY_PUBLISHED, PublishError, publish_release

    try:
        result = publish_release(resolved, target)
    except PublishError as exc:
        _fail(str(exc), 1)
    if result.status == ALREADY_PUBLISHED:
        out.print(f"already published {result.url} (identical content); nothing copied", highlight=False)
    else:
        out.print(f"published {result.url}", highlight=False)


# What the running command writes to, for an error that does not say (pyarrow's ENOSPC names no file).
_WRITING: dict[str, Path | None] = {"to": None}


def _operational_error(exc: BaseException) -> str | None:
    """The one line for a failure of the machine or of a file rather than of the program: a full disk,
    no permission, a damaged Parquet or JSON file.  None for anything else (a bug)."""
    if isinstance(exc, OSError):
        where = exc.filename or _WRITING["to"]
        if exc.errno == errno.ENOSPC or "No space left on device" in str(exc):
            return f"no space left on the device{f' writing {where}' if where else ''}; free some space and run again"
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return f"{exc.strerror or 'permission denied'}: {where or '(a file the command writes)'}"
        if exc.strerror:
            return f"{exc.strerror}{f': {exc.filename}' if exc.filename else ''}"
    import json

    if isinstance(exc, json.JSONDecodeError):  # the message is the parser's, never the file's text
        return f"a damaged JSON file{_in_release()}: {exc.msg} at line {exc.lineno} column {exc.colno}"
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover
        return None
    if isinstance(exc, pa.ArrowInvalid):  # a Parquet file cut short or overwritten
        return f"a damaged Parquet file{_in_release()}: {str(exc).splitlines()[0][:200]}"
    return None


_RELEASE_READ: dict[str, Path | None] = {"dir": None}


def _in_release() -> str:
    if _RELEASE_READ["dir"] is not None:
        return f" in release {_RELEASE_READ['dir']}"
    return f" under {_WRITING['to']}" if _WRITING["to"] is not None else ""


def _where(exc: BaseException) -> str:
    """file:line of the innermost frame in corpuspipe or flows (for a bug report; no values)."""
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "corpuspipe" in f.filename or "/flows/" in f.filename]
    if not frames:
        return ""
    f = frames[-1]
    parts = Path(f.filename).parts
    short = "/".join(parts[parts.index("corpuspipe"):] if "corpuspipe" in parts else parts[-2:])
    return f" at {short}:{f.lineno}"


def main() -> None:
    """Console entry: a disk-full, permission or damaged-file error anywhere is one line, never a
    traceback; an unexpected error is one line naming its type and place (``--verbose`` shows the
    traceback)."""
    try:
        app()
    except Exception as exc:  # noqa: BLE001
        if VERBOSE["level"] >= 2:
            raise
        msg = _operational_error(exc)
        if msg is None:
            msg = (f"internal error: {type(exc).__name__}{_where(exc)} "
                   "(run again with --verbose for the traceback, and please report it)")
        from rich.markup import escape

        console.print(f"[bold red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
