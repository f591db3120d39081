"""A whole release as one generator of steps: the pipeline's run loop, then the writer.

:func:`release_steps` holds ``<out>/.lock`` (re-entrant: the CLI takes it first so a refusal is
immediate), repairs what a crashed build left (stale temporary folders, an index behind a rename),
runs :func:`corpuspipe.pipeline.build_steps`, and then either answers with the existing release
(an unchanged build: same code, config and inputs, or a build already known to give its tables)
or writes a new one.  Like the loop it yields a step only where there is work, so a driver that
refuses work (``core.runner.cached_only``) learns "nothing to do" without computing anything, and a
driver can start the first step before Prefect is up.  Everything that runs a release -- the CLI,
the Prefect flow, scheduled deployments -- drives this one generator.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Generator, Sequence

from corpuspipe import pipeline
from corpuspipe.config import PipelineConfig
from corpuspipe.core.runner import Done, Step
from corpuspipe.core.stage import Stage
from corpuspipe.release import locking, versioning


class Refused(Exception):
    """The release was refused for a reason the user can act on (no documents, a version that
    exists with other content, a version lower than the latest): one line, no traceback."""


@dataclass
class Outcome:
    """What a release run did (the flow's return value; the CLI prints it)."""

    status: str  # written | unchanged | refused
    release_dir: str | None = None
    version: str | None = None
    error: str | None = None
    figures: dict | None = None  # report.key_figures of a written release
    passes_run: int = 0
    passes_cached: int = 0
    reduces: int = 0
    reduces_cached: int = 0
    steps: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _check_previous(out: Path) -> None:
    """The release this one builds on (its version, changelog and dedup against it), checked file by
    file against its manifest before any work, so a damaged one is refused at once, whoever drives
    the loop (before: only when the changelog read it, after the whole build: 18-29 s into a release
    of ``raw/``).  Hashing costs ~1 s per GB of release files, once per process (``verify``)."""
    from corpuspipe.release.verify import ReleaseDamaged, open_release

    previous = versioning.latest_release(out) if out.is_dir() else None
    if previous is None:
        return
    try:
        open_release(previous).check_all()
    except ReleaseDamaged as exc:
        raise Refused(f"{exc}; restore the file from a copy (or release into another --out) and run again") from None


def release_steps(raw_root: str | Path, cfg: PipelineConfig, out_root: str | Path, *, version: str | None = None,
                  created_at: str | None = None, allow_empty: bool = False, lock_timeout: float = 0.0,
                  stages: Sequence[Stage] = pipeline.STAGES,
                  warn: Callable[[str], None] | None = None) -> Generator[Step, list[Done], Outcome]:
    """Build and write a release (see the module docstring); refusals raise :class:`Refused`."""
    from corpuspipe.release.assemble import unchanged_release

    out = Path(out_root).resolve()
    created_at = created_at or datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    with locking.release_lock(out, timeout=lock_timeout):
        locking.clean_stale_tmp(out)
        versioning.reconcile(out)  # a crash between the rename and the index update is repaired here
        _check_previous(out)
        work = out / ".work"
        build = yield from pipeline.build_steps(raw_root, cfg, work, stages, warn)
        if not any(r["essay_count"] for r in build.passes[-1]) and not allow_empty:
            n_q = len(build.quarantine) + sum(r["quarantine_count"] for r in build.passes[-1])
            raise Refused(f"no documents to release ({n_q} inputs quarantined); nothing was written "
                          "(pass --allow-empty to write an empty release)")
        same = unchanged_release(build, cfg, out, version)
        if same is not None:
            result: dict = {"status": "unchanged", "release_dir": str(same.release_dir), "version": same.version}
        else:
            result = yield from _write(build, cfg, out, version, created_at, allow_empty)
        pipeline.prune_work(work, pipeline.work_files(build, work))
    passes = [r for rs in build.passes for r in rs]
    return Outcome(
        status=result["status"], release_dir=result["release_dir"], version=result["version"],
        figures=result.get("figures"), passes_run=sum(not r["cached"] for r in passes),
        passes_cached=sum(bool(r["cached"]) for r in passes), reduces=len(build.reduces),
        reduces_cached=sum(bool(r["cached"]) for r in build.reduces.values()), steps=build.steps)


def _write(build: pipeline.Build, cfg: PipelineConfig, out: Path, version: str | None, created_at: str,
           allow_empty: bool) -> Generator[Step, list[Done], dict]:
    """The writer as steps (``assemble.write_steps``: its parts written by tasks, the rest assembled
    here); its refusals become :class:`Refused`."""
    from corpuspipe.release.assemble import EmptyRelease, ReleaseExists, write_steps
    from corpuspipe.release.verify import ReleaseDamaged
    from corpuspipe.release.versioning import VersionError

    log = pipeline.StepLog()
    log.rows = build.steps  # the writer's steps join the build's log as they run: the manifest shows them
    try:
        done = yield from pipeline.steps_of(write_steps(build, cfg, out, version, created_at, build.wall,
                                                        allow_empty), log)
    except (EmptyRelease, ReleaseExists, VersionError, ReleaseDamaged) as exc:  # the user's to fix
        raise Refused(str(exc)) from None
    return {"status": done.status, "release_dir": str(done.release_dir), "version": done.version,
            "figures": done.figures}
