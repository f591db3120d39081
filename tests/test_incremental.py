"""Incremental releases: unchanged raw files hit the task cache, changed/added ones are redone.

Each test builds with its own config (a unique dataset name changes every cache key), so the
first build really computes and cache hits can only come from the build before it in the test.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from corpuspipe.release.writer import DATA_FILES

pytestmark = pytest.mark.slow

PER_SHARD_TASKS = ("ingest-shard", "boilerplate-stats", "remove-watermarks", "normalize-script", "section",
                   "minhash-signatures")


def _config(tmp_path: Path) -> Path:
    """One file per shard (so a change touches one shard) and a dataset name no other test uses."""
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f'[release]\nshard_files = 1\ndataset = "incremental-{uuid.uuid4().hex[:8]}"\n', encoding="utf-8")
    return cfg


def _build(raw: Path, out: Path, cfg: Path) -> tuple[Path, str]:
    from flows.release import build_release

    state = build_release(raw_dir=str(raw), out_dir=str(out), config_path=str(cfg), return_state=True)
    return Path(state.result()), str(state.state_details.flow_run_id)


def task_states(flow_run_id: str, expect: dict[str, int], timeout: float = 60.0) -> dict[str, list[str]]:
    """State names of the flow run's task runs, by task name.

    Task-run states reach the API through events, so poll (bounded) until at least ``expect``
    runs per task name are recorded in a final state.
    """
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + timeout
    while True:
        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        by_name: dict[str, list[str]] = {}
        for r in runs:
            if r.state is not None and r.state.is_final():
                by_name.setdefault(r.name.rsplit("-", 1)[0], []).append(r.state.name)
        if all(len(by_name.get(n, [])) >= k for n, k in expect.items()) or time.monotonic() > deadline:
            return by_name
        time.sleep(0.5)


def _mtimes(root: Path) -> dict[str, int]:
    """Per-shard step outputs (dedup/ is corpus-wide and redone on every run, by design)."""
    return {
        str(p.relative_to(root)): p.stat().st_mtime_ns
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] != "dedup"
    }


@pytest.fixture
def raw_copy(raw_dir, tmp_path) -> Path:
    dst = tmp_path / "raw"
    shutil.copytree(raw_dir, dst)
    return dst


def test_unchanged_rerun_is_all_cache_hits_and_rewrites_no_step_output(prefect_harness, raw_copy, tmp_path):
    cfg, out = _config(tmp_path), tmp_path / "out"
    n = len(list(raw_copy.iterdir()))
    first, run1 = _build(raw_copy, out, cfg)
    states1 = task_states(run1, {t: n for t in PER_SHARD_TASKS})
    assert states1["ingest-shard"] == ["Completed"] * n  # fresh config: nothing to reuse yet
    work_before = _mtimes(out / ".work")
    assert len(work_before) >= 4 * n

    second, run2 = _build(raw_copy, out, cfg)
    states2 = task_states(run2, {**{t: n for t in PER_SHARD_TASKS}, "detect-near-duplicates": 1, "write-release": 1})
    for name in PER_SHARD_TASKS:
        assert states2[name] == ["Cached"] * n, (name, states2[name])
    # corpus-wide steps: same inputs, and the release is still the latest, so both are reused too
    assert states2["detect-near-duplicates"] == ["Cached"] and states2["write-release"] == ["Cached"]
    assert _mtimes(out / ".work") == work_before  # no shard file was rewritten
    assert second == first  # same content: the existing release is reused, no new version
    assert (out / "latest").read_text().strip() == first.name


def test_deleted_work_files_are_recomputed_not_trusted(prefect_harness, raw_copy, tmp_path):
    cfg, out = _config(tmp_path), tmp_path / "out"
    n = len(list(raw_copy.iterdir()))
    first, _ = _build(raw_copy, out, cfg)
    shutil.rmtree(out / ".work")  # cache records now name files that are gone

    again, run = _build(raw_copy, out, cfg)
    states = task_states(run, {"ingest-shard": 2 * n})
    # each shard: the cache hit (stale path) and then its refresh
    assert sorted(states["ingest-shard"]) == ["Cached"] * n + ["Completed"] * n
    assert again == first
    for kind in ("ingest", "watermark", "normalize", "section"):
        assert len(list((out / ".work" / kind).glob("*.json"))) >= n, kind
    assert list((out / ".work" / "signature").iterdir())


def _edit(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


def test_changed_and_added_files_are_redone_and_deduplicated_against_the_release(prefect_harness, raw_copy, tmp_path):
    from corpuspipe.release.changelog import CHANGELOG_NAME, diff_releases
    from corpuspipe.release.versioning import parse_version

    cfg, out = _config(tmp_path), tmp_path / "out"
    n = len(list(raw_copy.iterdir()))
    first, _ = _build(raw_copy, out, cfg)
    docs1 = {d["source_path"]: d for d in pq.read_table(first / "documents.parquet").to_pylist()}

    changed = "003_92dc5cd8d9b3ac65.txt"
    p = raw_copy / changed
    p.write_text(_edit(p.read_text(encoding="utf-8"), "市委形成了", "县委形成了"), encoding="utf-8")
    original = "002_286767b190307c66.txt"  # a near-duplicate of this released essay arrives as a new file
    text = (raw_copy / original).read_text(encoding="utf-8")
    cut = len(text) * 3 // 5
    (raw_copy / "005_copy.txt").write_text(text[:cut] + text[cut + 60 :], encoding="utf-8")

    second, run = _build(raw_copy, out, cfg)
    states = task_states(run, {"ingest-shard": n + 1})
    assert sorted(states["ingest-shard"]) == ["Cached"] * (n - 1) + ["Completed"] * 2

    assert parse_version(second.name) > parse_version(first.name)
    assert (out / "latest").read_text().strip() == second.name
    docs2 = {d["source_path"]: d for d in pq.read_table(second / "documents.parquet").to_pylist()}
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
    for fname in DATA_FILES.values():  # the old release is untouched
        assert json.loads((first / "MANIFEST.json").read_text())["version"] == first.name
        assert (first / fname).is_file()
