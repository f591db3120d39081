"""Serve ``build_release`` on a cron schedule from one long-lived process (``corpuspipe serve``).

The alternative with a work pool and a worker is ``prefect.yaml`` (``prefect deploy --all``).
Paths are made absolute here because the runner starts each flow run in a subprocess.
"""

from __future__ import annotations

from pathlib import Path

from corpuspipe.orchestrate.flow import build_release

# A scheduled run that finds another build holding <out>/.lock waits this long before failing.
SCHEDULED_LOCK_TIMEOUT = 3600.0


def serve_parameters(
    raw_dir: Path, out_dir: Path, config_path: Path | None = None, publish_target: str | None = None
) -> dict[str, object]:
    params: dict[str, object] = {
        "raw_dir": str(Path(raw_dir).resolve()),
        "out_dir": str(Path(out_dir).resolve()),
        "lock_timeout": SCHEDULED_LOCK_TIMEOUT,
    }
    if config_path is not None:
        params["config_path"] = str(Path(config_path).resolve())
    if publish_target:
        params["publish_target"] = publish_target
    return params


def serve_release(
    cron: str,
    raw_dir: Path,
    out_dir: Path,
    config_path: Path | None = None,
    name: str = "corpuspipe-serve",
    publish_target: str | None = None,
) -> None:
    """Block forever, starting a build at every cron tick (and on `prefect deployment run`)."""
    build_release.serve(
        name=name,
        cron=cron,
        parameters=serve_parameters(raw_dir, out_dir, config_path, publish_target),
        description="Build a corpuspipe release on a schedule.",
        tags=["corpuspipe"],
        limit=1,  # one build at a time; the output lock covers builds from other processes
    )
