"""The work cache is verified before it is trusted (issue 24, rows 1-4).

A user flipped one byte in a ``.work/pass1`` file and the next release (after a config change that
kept pass 1's key) carried 立足→疫足 in three documents, exit 0; a truncated file crashed every run;
a copied output folder read the original's work files.  Each case here damages the real cache of
a release of the seed essays (``raw/``) and checks that the damaged entry is recomputed with one
warning line and that the release equals one built from a clean cache.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from tests.helpers.cli import run_cli

from corpuspipe import pipeline
from corpuspipe.config import PipelineConfig
from corpuspipe.core.workcache import WorkCache
from corpuspipe.release.assemble import write_release


def _release(raw: Path, out: Path, cfg: PipelineConfig, warn=None) -> tuple[Path, pipeline.Build]:
    build = pipeline.build(raw, cfg, out / ".work", warn=warn)
    done = write_release(build, cfg, out, None, "2026-01-01T00:00:00+00:00", build.wall)
    return done.release_dir, build


def _texts(release: Path) -> dict[str, str]:
    t = pq.read_table(release / "documents", columns=["doc_id", "text"])
    return dict(zip(t["doc_id"].to_pylist(), t["text"].to_pylist()))


def _flip(path: Path, at: float = 0.5) -> None:
    b = bytearray(path.read_bytes())
    b[int(len(b) * at)] ^= 0x01
    path.write_bytes(bytes(b))


def _other_release_config(cfg: PipelineConfig) -> PipelineConfig:
    """A config change that keeps every pass key (only the release's own settings change)."""
    return cfg.model_copy(update={"release": cfg.release.model_copy(update={"description": "second build"})})


@pytest.fixture
def built(raw_dir, tmp_path):
    cfg = PipelineConfig()
    out = tmp_path / "out"
    release, build = _release(raw_dir, out, cfg)
    return raw_dir, out, cfg, release, build


@pytest.mark.parametrize("area", ["pass1", "pass0"])
def test_a_flipped_byte_in_a_pass_file_is_recomputed_not_released(built, area):
    raw, out, cfg, first, build = built
    victim = Path(build.passes[int(area[-1])][0]["essays"])
    _flip(victim)
    warned: list[str] = []
    second, again = _release(raw, out, _other_release_config(cfg), warned.append)
    assert len(warned) == 1 and f"{area}/" in warned[0] and "does not match its recorded digest" in warned[0]
    assert _texts(second) == _texts(first)  # no 立足→疫足: the damaged bytes were never used
    redone = [r for r in again.passes[int(area[-1])] if not r["cached"]]
    assert [r["key"] for r in redone] == [build.passes[int(area[-1])][0]["key"]]


def test_a_truncated_cache_file_is_one_warning_and_a_recompute(built):
    raw, out, cfg, first, build = built
    victim = Path(build.passes[1][1]["essays"])
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 3])
    warned: list[str] = []
    again = pipeline.build(raw, cfg, out / ".work", warn=warned.append)
    assert len(warned) == 1 and "bytes, recorded" in warned[0]
    assert [r["cached"] for r in again.passes[1]] == [True, False]
    assert pq.ParquetFile(victim).metadata.num_rows > 0  # rewritten whole


def test_a_damaged_signature_file_is_recomputed_before_the_dedup_reduce_reads_it(built):
    raw, out, cfg, first, build = built
    sig = next((out / ".work" / "dedup").glob("*.document.parquet"))
    _flip(sig, 0.3)
    warned: list[str] = []
    second, _ = _release(raw, out, _other_release_config(cfg), warned.append)
    assert len(warned) == 1 and sig.name in warned[0]
    assert pq.read_table(second / "duplicates").equals(pq.read_table(first / "duplicates"))


def test_a_damaged_reduce_record_is_recomputed(built):
    raw, out, cfg, first, build = built
    record = WorkCache(out / ".work").record_path("reduce", f"dedup-{build.reduces['dedup']['key']}")
    record.write_text(record.read_text(encoding="utf-8").replace('"cluster', '"klaster', 1), encoding="utf-8")
    warned: list[str] = []
    again = pipeline.build(raw, cfg, out / ".work", warn=warned.append)
    assert len(warned) == 1 and "digest does not match" in warned[0]
    assert not again.reduces["dedup"]["cached"] and again.reduces["watermark"]["cached"]


def test_a_copied_output_folder_uses_its_own_work_files(built, tmp_path):
    raw, out, cfg, first, build = built
    copy = tmp_path / "copy"
    shutil.copytree(out, copy, symlinks=True)
    shutil.rmtree(out / ".work")  # the original's cache is gone: the copy must not need it
    again = pipeline.build(raw, cfg, copy / ".work")
    assert all(r["cached"] for rs in again.passes for r in rs)
    assert all(r["cached"] for r in again.reduces.values())
    named = [p for rs in again.passes for r in rs for p in (r["essays"], r["sidecar"], *r.get("files", []))]
    named += list(WorkCache(copy / ".work").paths_in([red["fact"] for red in again.reduces.values()]))
    assert named and all(Path(p).is_relative_to(copy / ".work") and Path(p).is_file() for p in named)
    for record in (copy / ".work").rglob("*.json"):
        assert str(out) not in record.read_text(encoding="utf-8")  # paths relative to the folder


def test_a_failing_pass_leaves_no_temporary_files(raw_dir, tmp_path, monkeypatch):
    """A task that dies half-way (here the section stage raising) leaves neither a half-written shard
    file nor a ``.tmp``: the disk is not kept full by a failed run."""
    from corpuspipe.stages import section

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(section, "section_text", boom)
    work = tmp_path / "work"
    with pytest.raises(OSError):
        pipeline.build(raw_dir, PipelineConfig(), work)
    leftovers = [p for p in work.rglob("*") if p.is_file() and (".tmp" in p.name or p.parent.name == "pass1")]
    assert leftovers == []


def test_the_cli_prints_one_line_for_a_damaged_entry_and_releases_clean_text(raw_dir, tmp_path, cli_env):
    out = tmp_path / "out"
    cmd = ["release", str(raw_dir), "--out", str(out), "--runner", "thread"]
    assert run_cli(*cmd, env=cli_env, timeout=600).returncode == 0
    victim = sorted((out / ".work" / "pass1").glob("*.parquet"))[0]
    _flip(victim)
    cfg = tmp_path / "c.toml"
    cfg.write_text('[release]\ndescription = "again"\n', encoding="utf-8")
    r = run_cli(*cmd, "--config", str(cfg), env=cli_env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [ln for ln in r.stderr.splitlines() if "work cache entry" in ln]
    assert len(lines) == 1 and victim.stem in lines[0] and "Traceback" not in r.stderr
    assert _texts(out / "1.0.1") == _texts(out / "1.0.0")
