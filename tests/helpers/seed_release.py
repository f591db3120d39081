"""One real release of the seed essays (raw/), built without Prefect through ``pipeline.build`` and
the streaming writer, shared by the export/show/report/quality tests."""

from __future__ import annotations

from pathlib import Path

from corpuspipe import pipeline
from corpuspipe.config import PipelineConfig
from corpuspipe.release.assemble import write_release


def build_seed_release(raw: Path, out: Path, cfg: PipelineConfig | None = None) -> Path:
    cfg = cfg or PipelineConfig()
    build = pipeline.build(raw, cfg, out / ".work")
    return write_release(build, cfg, out, None, "2026-01-01T00:00:00Z", build.wall).release_dir


SEED_000 = "000_9b3e22387aef82d6.txt"
COPY_NAME = "900_copy_of_000.txt"


def plant_copy(raw: Path) -> Path:
    """A near-copy of seed 000 as a reposting site would have it: same essay, one sentence reworded
    and a site line added (so not byte-identical, and a near-duplicate by any threshold)."""
    text = (raw / SEED_000).read_text(encoding="utf-8")
    copy = text.replace("组织工作历来是为党的政治任务服务的。", "组织工作一直是为党的政治任务服务的。", 1)
    assert copy != text
    path = raw / COPY_NAME
    path.write_text(copy + "\n本文来源：某某范文网 www.example.com\n", encoding="utf-8")
    return path


def data_files(release: Path) -> list[str]:
    """Every table part of a release (``documents/part-00000.parquet``...), from its manifest, sorted."""
    import json

    manifest = json.loads((Path(release) / "MANIFEST.json").read_text(encoding="utf-8"))
    return sorted(str(o["path"]) for o in manifest["outputs"])


def read_table(release: Path, table: str, **kwargs):
    """One release table whole, its parts in order (pyarrow reads a folder of parts as one table)."""
    import pyarrow.parquet as pq

    return pq.read_table(Path(release) / table, **kwargs)
