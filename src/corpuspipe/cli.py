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


# The CLI's own early-started embedded server (flows/server.py), if it started one.
_SERVER: Any = None


def _reset_ephemeral_server() -> None:
    """Start a new embedded server on a new port (the CLI's early one, or Prefect's own)."""
    if _SERVER is not None:
        _SERVER.restart()
        return
    try:
        from prefect.server.api.server import SubprocessASGIServer
    except ImportError:  # pragma: no cover
        return
    for server in list(SubprocessASGIServer._instances.values()):
        try:
            server.stop()
        except Exception:  # noqa: BLE001  (already dead: that is why we are here)
            pass


def run_with_server_retry(run, task_started, attempts: int = 3, wait: float = 2.0):
    """Run the flow; if Prefect's embedded server refused the connection before any task ran, start
    a new server and try again (issue 13 #13).

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
            _reset_ephemeral_server()
            time.sleep(wait * attempt)


def _stop_server() -> None:
    global _SERVER
    if _SERVER is not None:
        _SERVER.stop()
        _SERVER = None


def _prefect_defaults() -> None:
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
    _prefect_defaults()
    global _SERVER
    from flows.server import EarlyServer, ServerFailed, wanted

    if wanted():  # launched now, it starts while the imports below run (flows/server.py)
        _SERVER = EarlyServer()
        _SERVER.start()
        lock.callback(_stop_server)
        import atexit

        atexit.register(_stop_server)
    same = _unchanged_release(raw_dir, out, cfg, version)
    if same is not None:  # nothing to compute: no flow run, and the server is stopped unused
        lock.close()
        _summary(same, "unchanged")
        console.print("  nothing computed: every pass and reduce was cached (no Prefect flow run)", style="dim",
                      highlight=False)
        return
    from flows import pool

    if runner == "process" and _SERVER is not None:
        # the first pass starts now, in the pool the flow will use, while the server starts (flows/pool.py)
        lock.callback(pool.end, False)  # a flow that never started leaves no workers behind
        try:
            pool.prefetch_first_pass(raw_dir, out, str(config) if config else None)
        except Exception:  # noqa: BLE001 -- only a head start: whatever it trips on, the flow meets and reports
            pool.end(False)
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

    import flows.release as fr
    from corpuspipe.release.validate import ReleaseInvalid
    from corpuspipe.release.assemble import EmptyRelease, ReleaseExists

    with lock, Progress(
        # fixed, non-wrapping columns: on an 80-column or non-terminal output the long pass labels
        # squeezed the amounts into one word per line
        TextColumn("{task.description}", table_column=Column(width=30, no_wrap=True, overflow="ellipsis")),
        *([BarColumn(bar_width=10)] if console.width >= 100 else []),
        AmountColumn(table_column=Column(no_wrap=True)), TimeElapsedColumn(table_column=Column(no_wrap=True)),
        console=console
    ) as progress:
        bars: dict[str, int] = {"start-up": progress.add_task("start-up (Prefect server)", total=1)}

        def on_progress(stage: str, done: int, total: int, unit: str = "steps", documents: int | None = None) -> None:
            if "start-up" in bars and not progress.tasks[bars["start-up"]].finished:
                progress.update(bars["start-up"], completed=1)  # the first step of the flow: Prefect is up
            if stage not in bars:
                bars[stage] = progress.add_task(stage, total=max(total, 1), unit=unit, docs="")
            docs = f"{documents:,} docs" if documents is not None else ""
            progress.update(bars[stage], completed=done if total else 1, docs=docs)

        fr.PROGRESS = on_progress
        started = [False]

        def run_flow() -> str:
            if _SERVER is None:
                return _run_flow()
            from prefect.settings import PREFECT_API_URL, temporary_settings

            _SERVER.wait(float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")))
            with temporary_settings(updates={PREFECT_API_URL: _SERVER.api_url}):  # a restart's new port
                return _run_flow()

        def _run_flow() -> str:
            return fr.with_runner(runner, dask_address)(
                raw_dir=str(raw_dir), out_dir=str(out), version=version, config_path=str(config) if config else None,
                allow_empty=allow_empty,
            )

        def tracking_progress(stage: str, done: int, total: int, *rest) -> None:
            started[0] = True
            on_progress(stage, done, total, *rest)

        fr.PROGRESS = tracking_progress
        try:
            release_dir = run_with_server_retry(run_flow, lambda: started[0])
        except (ReleaseExists, ReleaseInvalid, EmptyRelease) as exc:
            _fail(str(exc), 1)
        except ServerFailed as exc:
            _fail(str(exc), 1)
        finally:
            fr.PROGRESS = None
    if fr.LAST_STATUS.get("status") == "refused":
        _fail(str(fr.LAST_STATUS.get("error")), 1)
    _summary(Path(release_dir), fr.LAST_STATUS.get("status", "written"))


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
    _prefect_defaults()
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
    from flows.serve import serve_release

    serve_release(cron=cron, raw_dir=raw_dir, out_dir=out, config_path=config, name=name, publish_target=publish)


def _unchanged_release(raw_dir: Path, out_dir: Path, cfg: Any, version: str | None) -> Path | None:
    """The latest release when the build would compute nothing and change nothing, else None.

    The pipeline answers every pass and reduce from its work folder with the keys a real run uses
    (``pipeline.build(cached_only=True)``: inputs, config, rules files and code), and the release's
    build key is compared as the writer compares it.  Asked while Prefect's server starts, so a build
    with work to do loses nothing; an unchanged re-run of the 100 MB crawl waited ~10 s for the
    server and ~5 s for a flow whose 53 tasks were all cache hits."""
    from corpuspipe import pipeline
    from corpuspipe.release import versioning
    from corpuspipe.release.assemble import unchanged_release

    out_root = Path(out_dir).resolve()
    try:
        if versioning.latest_release(out_root) is None:
            return None
        versioning.reconcile(out_root)  # as the flow does first: a crash after a rename leaves the index behind
        build = pipeline.build(Path(raw_dir), cfg, out_root / ".work", cached_only=True)
        if not any(r["essay_count"] for r in build.passes[-1]):
            return None  # empty: the flow refuses or writes it (--allow-empty), as before
        same = unchanged_release(build, cfg, out_root, version)
    except Exception:  # noqa: BLE001 -- only a shortcut: whatever it trips on, the flow meets and reports
        return None
    return None if same is None else same.release_dir


def _summary(release_dir: Path, status: str = "written") -> None:
    from corpuspipe.release.versioning import read_manifest

    from corpuspipe.release.layout import table_rows

    manifest = read_manifest(release_dir)
    counts = table_rows(manifest)
    if status == "unchanged":
        out.print(f"release [bold]{manifest['version']}[/] unchanged (inputs, config and code as built): {release_dir}",
                  highlight=False)
    else:
        out.print(f"release [bold]{manifest['version']}[/] written to {release_dir}", highlight=False)
    out.print("  " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())), highlight=False)
    q = manifest["quarantine"]
    if q["count"]:
        reasons = ", ".join(f"{r}: {n}" for r, n in q["by_reason"].items())
        out.print(f"  quarantined inputs: {q['count']} ({reasons}); see the quarantine table", highlight=False)
    else:
        out.print("  quarantined inputs: 0", highlight=False)


def _resolve_release(path: Path) -> Path:
    if (path / "MANIFEST.json").is_file():
        return path
    latest = path / "latest"
    if latest.is_file():
        candidate = path / latest.read_text(encoding="utf-8").strip()
        if (candidate / "MANIFEST.json").is_file():
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
    t = Table(title=f"sample ({sample} documents)")
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
    from corpuspipe.release.export import ExportError, Selection, export_release, parse_bounds
    from corpuspipe.release.verify import ReleaseDamaged

    try:
        resolved = _resolve_release(release_dir)
        if _inside_release(out_dir / "x") is not None:
            raise UserError(f"refusing to write into release {_inside_release(out_dir / 'x')} (releases are immutable)")
        sel = Selection(level=level, exclude_flags=[] if keep_flagged else list(exclude_flags or ["mojibake"]),
                        scripts=list(scripts or []), min_chars=min_chars, max_chars=max_chars,
                        min=parse_bounds(mins or [], "min"), max=parse_bounds(maxs or [], "max"))
        result = export_release(resolved, out_dir, sel, formats=formats or ["parquet", "jsonl"], shard_rows=shard_rows)
    except (UserError, ExportError) as exc:
        _fail(str(exc))
    except ReleaseDamaged as exc:
        _damaged(exc)
    out.print(f"exported {result.rows} {level}s of release {result.manifest['release_version']} "
              f"into {len(result.files)} files in {out_dir}", highlight=False)


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

    try:
        resolved = _resolve_release(release_dir)
        if html_path is not None and _inside_release(html_path) is not None:
            raise UserError(f"refusing to write into release {_inside_release(html_path)} (releases are immutable)")
        story = load_story(resolved, item_id)
    except (UserError, NotFound) as exc:
        _fail(str(exc))
    except ReleaseDamaged as exc:
        _damaged(exc)
    render_terminal(story, out, context=context)
    if html_path is not None:
        from corpuspipe.core.io import atomic_write_text

        atomic_write_text(html_path, render_html(story))
        console.print(f"wrote {html_path}", highlight=False)


def _inside_release(path: Path) -> Path | None:
    """The release directory ``path`` would be written into, if any (releases are immutable)."""
    for parent in Path(os.path.abspath(path)).parents:
        if (parent / "MANIFEST.json").is_file():
            return parent
    return None


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

    try:
        a, b = _resolve_release(a), _resolve_release(b)
        if out_path is not None:
            release_dir = _inside_release(out_path)
            if release_dir is not None:
                raise UserError(f"refusing to write into release {release_dir} (releases are immutable); "
                                "choose --out outside it or print to stdout")
    except UserError as exc:
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


def main() -> None:
    """Console entry: a disk-full or permission error anywhere is one line, never a traceback."""
    try:
        app()
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            msg = f"no space left on the device{f' writing {exc.filename}' if exc.filename else ''}; free some space and run again"
        else:
            where = f": {exc.filename}" if exc.filename else ""
            msg = f"{exc.strerror or exc}{where}"
        from rich.markup import escape

        console.print(f"[bold red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
