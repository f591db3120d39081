"""``corpuspipe serve``: build releases on a cron schedule in a long-lived process."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from corpuspipe.cli.common import UserError, check_raw_dir, check_writable, fail
from corpuspipe.cli.flowrun import prefect_defaults


def serve(
    cron: str = typer.Option(..., "--cron", help='Cron schedule (UTC), e.g. "0 3 * * *" for 03:00 daily.'),
    raw_dir: Path = typer.Option(Path("raw"), "--raw", help="Directory of raw files."),
    out: Path = typer.Option(Path("releases"), "--out", help="Where releases are written."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML file overriding the default configuration."),
    name: str = typer.Option("corpuspipe-serve", "--name", help="Deployment name (flow build_release)."),
    publish: Optional[str] = typer.Option(None, "--publish", help="Publish each new release to this path or fsspec URL."),
) -> None:
    """Run build_release on a cron schedule in this long-lived process (needs a Prefect server: PREFECT_API_URL)."""
    prefect_defaults(one_line_failures=False)
    from prefect.client.schemas.schedules import CronSchedule

    try:
        CronSchedule(cron=cron)
    except ValueError:
        fail(f"not a valid cron expression: {cron!r}")
    if not os.environ.get("PREFECT_API_URL"):
        fail("serve needs a Prefect server: run `prefect server start` and set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api)")
    from corpuspipe import preflight

    try:
        check_raw_dir(raw_dir)
        check_writable(out)
        preflight.check_rules(preflight.load_config(config))
        if publish:
            preflight.check_publish_target(publish)
    except (UserError, preflight.PreflightError) as exc:
        fail(str(exc))
    from corpuspipe.orchestrate.serve import serve_release

    serve_release(cron=cron, raw_dir=raw_dir, out_dir=out, config_path=config, name=name, publish_target=publish)
