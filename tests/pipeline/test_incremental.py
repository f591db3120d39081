"""Incremental releases: the pipeline's content-addressed work folder makes unchanged shards free.

Each test builds with its own config (a unique dataset name changes every cache key), so the
first build really computes and cache hits can only come from the build before it in the test.
The flow returns what it reused (its outcome: passes and reduces run or cached); the same keys are
checked without Prefect through ``pipeline.build``.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from corpuspipe import pipeline
from corpuspipe.config import PipelineConfig
from tests.helpers.cli import prefect_env, run_cli
from tests.helpers.seed_release import data_files

pytestmark = pytest.mark.slow


def _config(tmp_path: Path) -> Path:
    """One file per shard (so a change touches one shard) and a dataset name no other test uses."""
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f'[release]\nshard_files = 1\ndataset = "incremental-{uuid.uuid4().hex[:8]}"\n', encoding="utf-8")
    return cfg


def _build(raw: Path, out: Path, cfg: Path) -> tuple[Path, dict]:
    from corpuspipe.orchestrate.flow import build_release

    outcome = build_release(raw_dir=str(raw), out_dir=str(out), config_path=str(cfg))
    return Path(outcome["release_dir"]), outcome


def _answer_without_work(raw: Path, out: Path, cfg: PipelineConfig, warn=None) -> Path | None:
    """What the CLI asks before it needs Prefect: the release, if the loop has no step to run."""
    from corpuspipe.core.runner import cached_only, drive
    from corpuspipe.release.steps import release_steps

    try:
        outcome = drive(release_steps(raw, cfg, out, warn=warn), cached_only)
    except pipeline.NotCached:
        return None
    return Path(outcome.release_dir)


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
    from corpuspipe.release.changelog import CHANGELOG_NAME
    from corpuspipe.release.diff import diff_releases
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


def _counting_submits(monkeypatch) -> list[str]:
    """Names of the task functions sent to any worker pool from now on."""
    from corpuspipe.core import runner

    sent: list[str] = []
    real = runner.Pool.submit

    def counting(self, fn, args):
        sent.append(fn.__name__ if fn.__name__ != "run_pass" else f"run_pass {args[0]}")
        return real(self, fn, args)

    monkeypatch.setattr(runner.Pool, "submit", counting)
    return sent


def test_unchanged_rerun_on_the_process_runner_starts_no_worker(prefect_harness, raw_copy, tmp_path, monkeypatch):
    """Cache hits are answered by the loop itself: no step, so nothing reaches a worker (spawning and
    importing two workers was most of an unchanged re-run's cost)."""
    from corpuspipe.orchestrate.flow import release_flow

    cfg, out = _config(tmp_path), tmp_path / "out"
    params = dict(raw_dir=str(raw_copy), out_dir=str(out), config_path=str(cfg))
    first = release_flow(runner="process")(**params)  # fills the cache
    sent = _counting_submits(monkeypatch)
    second = release_flow(runner="process")(**params)
    assert second["status"] == "unchanged" and second["release_dir"] == first["release_dir"]
    assert sent == [] and second["passes_run"] == 0  # every pass and reduce was a hit

    (raw_copy / "extra.txt").write_text((raw_copy / sorted(p.name for p in raw_copy.iterdir())[0]).read_text(
        encoding="utf-8")[:2000] + "\n补充一段新的正文，用于确认改动的分片仍交给工作进程计算。\n", encoding="utf-8")
    third = release_flow(runner="process")(**params)
    assert "run_pass 0" in sent and third["passes_run"] == 2  # a changed shard still goes to a worker


def test_first_step_started_before_the_flow_is_adopted_not_recomputed(prefect_harness, raw_copy, tmp_path,
                                                                      monkeypatch):
    """The CLI takes the release loop's first step (pass 0) into the pool while Prefect's server starts;
    the flow adopts that running step: nothing computed twice, the same release as a build without
    the head start, the same loop throughout."""
    from corpuspipe.core.runner import Pool
    from corpuspipe.orchestrate.flow import RunContext, Started, release_flow
    from corpuspipe.release.steps import release_steps

    cfg_file = _config(tmp_path)
    plain = release_flow(runner="process")(raw_dir=str(raw_copy), out_dir=str(tmp_path / "plain"),
                                           config_path=str(cfg_file), version="1.0.0")
    cfg, out = PipelineConfig.load(cfg_file), tmp_path / "out"
    steps = release_steps(raw_copy, cfg, out, version="1.0.0")
    first = next(steps)
    shards = len(pipeline.discover(raw_copy, cfg).shards)
    assert first.label.startswith("pass 0") and len(first.tasks.args) == shards
    pool = Pool(2)
    futures = [pool.submit(first.tasks.fn, a) for a in first.tasks.args]
    sent = _counting_submits(monkeypatch)
    try:
        headed = release_flow(RunContext(cfg=cfg, pool=pool, started=Started(steps, first, futures)))(
            raw_dir=str(raw_copy), out_dir=str(out), config_path=str(cfg_file), version="1.0.0")
    finally:
        pool.shutdown()
    assert "run_pass 0" not in sent and sent.count("run_pass 1") == shards  # pass 0 only by the head start
    assert headed["passes_run"] == 2 * shards and headed["passes_cached"] == 0
    a, b = Path(headed["release_dir"]), Path(plain["release_dir"])
    assert data_files(a) == data_files(b)
    for fname in data_files(a):
        assert (a / fname).read_bytes() == (b / fname).read_bytes(), fname


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
    """``corpuspipe`` starting its own embedded server, as a user's run does (no shared server)."""
    return run_cli(*args, env=prefect_env(None, home), timeout=600)


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
    a crash: one warning line, that shard recomputed; the CLI's nothing-to-do answer is "no" until then."""
    from corpuspipe.release.assemble import write_release

    cfg = PipelineConfig.load(_config(tmp_path))
    out = tmp_path / "out"
    first = pipeline.build(raw_copy, cfg, out / ".work")
    write_release(first, cfg, out, None, "2026-01-01T00:00:00+00:00", first.wall)
    assert _answer_without_work(raw_copy, out, cfg) == out / "1.0.0"
    meta = sorted(p for p in (out / ".work" / "pass1").glob("*.json") if not p.name.endswith(".files.json"))[0]
    meta.write_text('{"unexpected": 1}', encoding="utf-8")
    warned: list[str] = []
    assert _answer_without_work(raw_copy, out, cfg, warned.append) is None
    assert len(warned) == 1 and "not used" in warned[0] and meta.name in warned[0]
    again = pipeline.build(raw_copy, cfg, out / ".work")
    assert [r["cached"] for r in again.passes[1]].count(False) == 1
    assert _answer_without_work(raw_copy, out, cfg) == out / "1.0.0"
