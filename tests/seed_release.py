"""One real release of the seed essays (raw/), built without Prefect through ``pipeline.build`` and
the streaming writer, shared by the export/show/report/quality tests."""

from __future__ import annotations

from pathlib import Path

from corpuspipe import pipeline
from corpuspipe.core.config import PipelineConfig
from corpuspipe.release.assemble import write_release


def build_seed_release(raw: Path, out: Path, cfg: PipelineConfig | None = None) -> Path:
    cfg = cfg or PipelineConfig()
    build = pipeline.build(raw, cfg, out / ".work")
    return write_release(build, cfg, out, None, "2026-01-01T00:00:00Z", build.wall).release_dir
