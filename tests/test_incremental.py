"""Incremental releases: the pipeline's content-addressed work folder makes unchanged shards free.

Each test builds with its own config (a unique dataset name changes every cache key), so the
first build really computes and cache hits can only come from the build before it in the test.
The flow reports what it reused (``flows.release.LAST_STATUS``); the same keys are checked
without Prefect through ``pipeline.build``.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from corpuspipe import pipeline
from corpuspipe.core.config import PipelineConfig
from seed_release import data_files

pytestmark = pytest.mark.slow


def _config(tmp_path: Path) -> Path:
    """One file per shard (so a change touches one shard) and a dataset name no other test uses."""
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f'[release]\nshard_files = 1\ndataset = "incremental-{uuid.uuid4().hex[:8]}"\n', encoding="utf-8")
    return cfg


def _build(raw: Path, out: Path, cfg: Path) -> tuple[Path, dict]:
    import flows.release as fr

    release = build_release_checked(fr, raw, out, cfg)
    return Path(release), dict(fr.LAST_STATUS)


def build_release_checked(fr, raw: Path, out: Path, cfg: Path) -> str:
    return fr.build_release(raw_dir=str(raw), out_dir=str(out), config_path=str(cfg))


def _mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "build.json"}


@pytest.fixture
def raw_copy(raw_dir, tmp_path) -> Path:
    dst = tmp_path / "raw"
    shutil.copytree(raw_dir, dst)
    return dst


def test_unchanged_rerun_reuses_every_pass_and_rewrites_nothing(prefect_harness, raw_copy, tmp_path):
    cfg, out = _config(tmp_path), tmp_path / "out"
    n = len(list(raw_copy.iterdir()))
    first, s1 = _build(raw_copy, out, cfg)
    assert s1["status"] == "written" and s1["passes_run"] == 2 * n and s1["passes_cached"] == 0
    work_before = _mtimes(out / ".work")
    assert len(work_before) >= 4 * n

    second, s2 = _build(raw_copy, out, cfg)
    assert s2["passes_cached"] == 2 * n and s2["passes_run"] == 0
    assert s2["reduces_cached"] == s2["reduces"] == 3
    assert s2["status"] == "unchanged"
    assert _mtimes(out / ".work") == work_before  # no work file was rewritten
    assert second == first  # same content: the existing release is reused, no new version
    assert (out / "latest").read_text().strip() == first.name


def test_deleted_work_files_are_recomputed_not_trusted(prefect_harness, raw_copy, tmp_path):
    cfg, out = _config(tmp_path), tmp_path / "out"
    n = len(list(raw_copy.iterdir()))
    first, _ = _build(raw_copy, out, cfg)
    shutil.rmtree(out / ".work")

    again, s = _build(raw_copy, out, cfg)
    assert s["passes_run"] == 2 * n and s["passes_cached"] == 0
    assert again == first and s["status"] == "unchanged"
    for k in (0, 1):
        assert len(list((out / ".work" / f"pass{k}").glob("*.parquet"))) == n
    assert list((out / ".work" / "dedup").iterdir())


def test_a_deleted_shard_file_alone_is_recomputed(raw_copy, tmp_path):
    """Without an orchestrator: the cache is the work folder, and a half-missing entry is never trusted."""
    cfg = PipelineConfig.load(_config(tmp_path))
    work = tmp_path / "work"
    first = pipeline.build(raw_copy, cfg, work)
    assert not any(r["cached"] for rs in first.passes for r in rs)
    victim = Path(first.passes[1][0]["essays"])
    victim.unlink()
    again = pipeline.build(raw_copy, cfg, work)
    cached = [[r["cached"] for r in rs] for rs in again.passes]
    assert cached[0] == [True] * len(cached[0])
    assert cached[1].count(False) == 1 and victim.is_file()
    assert [r["key"] for rs in again.passes for r in rs] == [r["key"] for rs in first.passes for r in rs]


def test_editing_the_rules_file_changes_every_key_that_depends_on_it(raw_copy, tmp_path):
    rules = tmp_path / "rules.toml"
    rule = '[[rule]]\nname = "drop_mark"\nscope = "inline"\npattern = "{}"\n'
    rules.write_text(rule.format("XYZZY"), encoding="utf-8")
    cfg_file = _config(tmp_path)
    cfg_file.write_text(cfg_file.read_text() + f'[watermark]\nrules_file = "{rules}"\n', encoding="utf-8")
    cfg = PipelineConfig.load(cfg_file)
    work = tmp_path / "work"
    first = pipeline.build(raw_copy, cfg, work)
    hash1 = cfg.config_hash()
    rules.write_text(rule.format("QUUX"), encoding="utf-8")
    cfg = PipelineConfig.load(cfg_file)
    assert cfg.config_hash() != hash1  # the config text is the same; the rules changed
    again = pipeline.build(raw_copy, cfg, work)
    assert all(not r["cached"] for rs in again.passes for r in rs)


def _edit(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


def test_changed_and_added_files_are_redone_and_deduplicated_against_the_release(prefect_harness, raw_copy, tmp_path):
    from corpuspipe.release.changelog import CHANGELOG_NAME, diff_releases
    from corpuspipe.release.versioning import parse_version

    cfg, out = _config(tmp_path), tmp_path / "out"
    n = len(list(raw_copy.iterdir()))
    first, _ = _build(raw_copy, out, cfg)
    docs1 = {d["source_path"]: d for d in pq.read_table(first / "documents").to_pylist()}

    changed = "003_92dc5cd8d9b3ac65.txt"
    p = raw_copy / changed
    p.write_text(_edit(p.read_text(encoding="utf-8"), "市委形成了", "县委形成了"), encoding="utf-8")
    original = "002_286767b190307c66.txt"  # a near-duplicate of this released essay arrives as a new file
    text = (raw_copy / original).read_text(encoding="utf-8")
    cut = len(text) * 3 // 5
    (raw_copy / "005_copy.txt").write_text(text[:cut] + text[cut + 60 :], encoding="utf-8")

    second, s = _build(raw_copy, out, cfg)
    assert s["passes_cached"] == 2 * (n - 1) and s["passes_run"] == 4  # the changed and the added file

    assert parse_version(second.name) > parse_version(first.name)
    assert (out / "latest").read_text().strip() == second.name
    docs2 = {d["source_path"]: d for d in pq.read_table(second / "documents").to_pylist()}
    copy = docs2["005_copy.txt"]
    assert copy["duplicate_of"] == docs1[original]["doc_id"]  # matched against the already released essay
    assert docs2[original]["doc_id"] == docs1[original]["doc_id"]

    diff = diff_releases(first, second)["tables"]["documents"]
    new_ids = {copy["doc_id"], docs2[changed]["doc_id"]}
    assert (diff["added"], diff["removed"], diff["changed"]) == (2, 1, 0)  # doc ids follow content hashes
    assert set(diff["examples"]["added"]) == new_ids
    assert diff["examples"]["removed"] == [docs1[changed]["doc_id"]]
    changelog = (second / CHANGELOG_NAME).read_text(encoding="utf-8")
    assert f"{first.name} → {second.name}" in changelog
    assert all(i in changelog for i in new_ids)
    for fname in data_files(first):  # the old release is untouched
        assert json.loads((first / "MANIFEST.json").read_text())["version"] == first.name
        assert (first / fname).is_file()


def test_unchanged_rerun_on_the_process_runner_starts_no_worker(prefect_harness, raw_copy, tmp_path, monkeypatch):
    """Cache hits are answered in the flow's own threads: spawning and importing two workers was most
    of an unchanged re-run's cost."""
    import flows.release as fr

    cfg, out = _config(tmp_path), tmp_path / "out"
    first = fr.build_release(raw_dir=str(raw_copy), out_dir=str(out), config_path=str(cfg))  # fills the cache
    sent: list[str] = []
    real = fr._pool_run

    def counting(fn, *args):
        sent.append(fn.__name__)
        return real(fn, *args)

    monkeypatch.setattr(fr, "_pool_run", counting)
    second = fr.with_runner("process")(raw_dir=str(raw_copy), out_dir=str(out), config_path=str(cfg))
    assert second == first and fr.LAST_STATUS["status"] == "unchanged"
    assert sent == []  # every pass and reduce was a hit: nothing went to the pool

    (raw_copy / "extra.txt").write_text((raw_copy / sorted(p.name for p in raw_copy.iterdir())[0]).read_text(
        encoding="utf-8")[:2000] + "\n补充一段新的正文，用于确认改动的分片仍交给工作进程计算。\n", encoding="utf-8")
    fr.with_runner("process")(raw_dir=str(raw_copy), out_dir=str(out), config_path=str(cfg))
    assert "run_pass" in sent  # a changed shard still goes to a worker


def test_first_pass_started_before_the_flow_is_adopted_not_recomputed(prefect_harness, raw_copy, tmp_path,
                                                                       monkeypatch):
    """The CLI starts pass 0 in the pool while Prefect's server starts (flows/pool.py); the process
    runner adopts that pool and its pass tasks wait for those results: nothing computed twice, the
    same release as a build without the head start, and no pool left behind."""
    import flows.release as fr
    from flows import pool

    cfg = _config(tmp_path)
    plain = fr.with_runner("process")(raw_dir=str(raw_copy), out_dir=str(tmp_path / "plain"), config_path=str(cfg),
                                      version="1.0.0")
    out = tmp_path / "out"
    started = pool.prefetch_first_pass(raw_copy, out, str(cfg))
    shards = len(pipeline.discover(raw_copy, PipelineConfig.load(cfg)).shards)
    assert started == shards and len(pool.PREFETCHED) == shards and pool.POOL is not None
    adopted = pool.POOL
    sent: list[tuple[str, int | None]] = []
    real = fr._pool_run

    def counting(fn, *args):
        sent.append((fn.__name__, args[0] if fn.__name__ == "run_pass" else None))
        return real(fn, *args)

    monkeypatch.setattr(fr, "_pool_run", counting)
    seen_pool = []
    real_build = fr._build

    def watching(*args):
        seen_pool.append(pool.POOL)
        return real_build(*args)

    monkeypatch.setattr(fr, "_build", watching)
    headed = fr.with_runner("process")(raw_dir=str(raw_copy), out_dir=str(out), config_path=str(cfg), version="1.0.0")
    assert seen_pool == [adopted]  # the flow ran in the prefetch's pool
    assert ("run_pass", 0) not in sent and ("run_pass", 1) in sent  # pass 0 only by the prefetch
    assert fr.LAST_STATUS["passes_run"] == 2 * shards and fr.LAST_STATUS["passes_cached"] == 0
    assert pool.POOL is None and pool.PREFETCHED == {}
    assert data_files(Path(headed)) == data_files(Path(plain))
    for fname in data_files(Path(headed)):
        assert (Path(headed) / fname).read_bytes() == (Path(plain) / fname).read_bytes(), fname
    # a prefetch that no flow adopts is stopped, and its finished shards are a later build's cache hits
    assert pool.prefetch_first_pass(raw_copy, tmp_path / "orphan", str(cfg)) == shards
    pool.end(False)
    assert pool.POOL is None and pool.PREFETCHED == {}
    # nothing left to start when every shard of pass 0 is cached
    assert pool.prefetch_first_pass(raw_copy, out, str(cfg)) == 0 and pool.POOL is None


def test_cached_only_build_answers_from_the_work_folder_and_refuses_any_miss(raw_copy, tmp_path):
    """``pipeline.build(cached_only=True)`` is the same plan with lookups instead of work: equal
    keys after a real build; NotCached after an input, the config or a work file changed."""
    cfg_file = _config(tmp_path)
    cfg = PipelineConfig.load(cfg_file)
    work = tmp_path / "work"
    with pytest.raises(pipeline.NotCached):
        pipeline.build(raw_copy, cfg, work, cached_only=True)  # nothing built yet
    assert not work.exists() or not any(work.rglob("*.parquet"))  # and it computed nothing
    real = pipeline.build(raw_copy, cfg, work)
    looked = pipeline.build(raw_copy, cfg, work, cached_only=True)
    assert [r["key"] for rs in looked.passes for r in rs] == [r["key"] for rs in real.passes for r in rs]
    assert {k: v["key"] for k, v in looked.reduces.items()} == {k: v["key"] for k, v in real.reduces.items()}

    other = PipelineConfig.load(cfg_file).model_copy(
        update={"dedup": cfg.dedup.model_copy(update={"threshold": cfg.dedup.threshold + 0.05})})
    with pytest.raises(pipeline.NotCached, match="pass 1"):  # pass 0 does not depend on it: answered
        pipeline.build(raw_copy, other, work, cached_only=True)
    p = sorted(raw_copy.iterdir())[1]
    p.write_text(p.read_text(encoding="utf-8") + "\n新增一句。\n", encoding="utf-8")
    with pytest.raises(pipeline.NotCached, match="pass 0"):
        pipeline.build(raw_copy, cfg, work, cached_only=True)


def _cli(*args: str, home: Path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    return subprocess.run([sys.executable, "-m", "corpuspipe.cli", *args], capture_output=True, text=True,
                          timeout=600, env=env)


def test_cli_rerun_with_nothing_to_compute_needs_no_flow_run(raw_copy, tmp_path):
    """An unchanged ``corpuspipe release`` answers from the cache before Prefect is needed (the 100 MB
    crawl's re-run: 21.8 s -> 3.9 s); a changed input still goes through the flow."""
    cfg, out, home = _config(tmp_path), tmp_path / "out", tmp_path / ".prefect"
    first = _cli("release", str(raw_copy), "--out", str(out), "--config", str(cfg), home=home)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "written to" in first.stdout and "nothing computed" not in first.stderr
    tree = {p: p.stat().st_mtime_ns for p in sorted(out.rglob("*")) if p.is_file() and p.name != ".lock"}

    again = _cli("release", str(raw_copy), "--out", str(out), "--config", str(cfg), home=home)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "release 1.0.0 unchanged" in again.stdout
    assert "nothing computed: every pass and reduce was cached (no Prefect flow run)" in again.stderr
    assert "start-up (Prefect server)" not in again.stderr and "Traceback" not in again.stderr
    assert {p: p.stat().st_mtime_ns for p in tree} == tree  # not one file touched

    p = sorted(raw_copy.iterdir())[0]
    p.write_text(p.read_text(encoding="utf-8") + "\n补充一段新的正文，确认改动后仍然重新计算。\n", encoding="utf-8")
    changed = _cli("release", str(raw_copy), "--out", str(out), "--config", str(cfg), home=home)
    assert changed.returncode == 0, changed.stderr[-2000:]
    assert "nothing computed" not in changed.stderr and "written to" in changed.stdout
    assert (out / "latest").read_text().strip() == "1.1.0"


def test_a_build_that_changed_no_row_is_remembered_so_the_next_rerun_writes_nothing(raw_copy, tmp_path, monkeypatch):
    """A code change that changes no row ends as "unchanged" after writing every table to compare
    digests; the release keeps its old build key, so the key that gave the same tables is kept
    beside the releases and the next re-run is answered without writing (8 s at 100 MB)."""
    from corpuspipe.release.assemble import _SAME_AS, unchanged_release, write_release

    cfg = PipelineConfig.load(_config(tmp_path))
    out = tmp_path / "out"
    b1 = pipeline.build(raw_copy, cfg, out / ".work")
    first = write_release(b1, cfg, out, None, "2026-01-01T00:00:00+00:00", b1.wall)
    assert first.status == "written"
    real = pipeline.code_fingerprint()
    monkeypatch.setattr(pipeline, "code_fingerprint", lambda: real + "-a-refactoring")  # new code, same rows
    b2 = pipeline.build(raw_copy, cfg, out / ".work")
    assert unchanged_release(b2, cfg, out, None) is None
    second = write_release(b2, cfg, out, None, "2026-01-02T00:00:00+00:00", b2.wall)
    assert second.status == "unchanged" and second.release_dir == first.release_dir
    assert (out / _SAME_AS).is_file()
    assert unchanged_release(b2, cfg, out, None).release_dir == first.release_dir
    assert unchanged_release(b2, cfg, out, "9.9.9") is None  # another version asked: not the same
    (out / _SAME_AS).write_text("{not json", encoding="utf-8")
    assert unchanged_release(b2, cfg, out, None) is None  # unreadable: one more rewrite, never a wrong answer


def test_a_damaged_cache_record_is_recomputed_and_the_cli_shortcut_falls_back(raw_copy, tmp_path):
    """A pass record that is valid JSON with other fields (a damaged or foreign file) is a miss, not
    a crash: the next build recomputes that shard; the CLI's nothing-to-do check answers None."""
    from corpuspipe.cli import _unchanged_release
    from corpuspipe.release.assemble import write_release

    cfg = PipelineConfig.load(_config(tmp_path))
    out = tmp_path / "out"
    first = pipeline.build(raw_copy, cfg, out / ".work")
    write_release(first, cfg, out, None, "2026-01-01T00:00:00+00:00", first.wall)
    assert _unchanged_release(raw_copy, out, cfg, None) == out / "1.0.0"
    meta = sorted(p for p in (out / ".work" / "pass1").glob("*.json") if not p.name.endswith(".files.json"))[0]
    meta.write_text('{"unexpected": 1}', encoding="utf-8")
    assert _unchanged_release(raw_copy, out, cfg, None) is None
    again = pipeline.build(raw_copy, cfg, out / ".work")
    assert [r["cached"] for r in again.passes[1]].count(False) == 1
    assert _unchanged_release(raw_copy, out, cfg, None) == out / "1.0.0"
