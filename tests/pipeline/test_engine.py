"""The stage engine: one plan, one cache mechanism, and releases that refuse to be silently empty.

Issue 13 #2 (rules file edits reached no cache key), #9 (silent empty releases) and #12 (cache keys
computed by probing every string as a path) are classes of failure of the old per-task Prefect
cache; these tests pin the engine's answers on real inputs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.helpers.cli import run_cli

from corpuspipe import pipeline
from corpuspipe.config import PipelineConfig
from corpuspipe.core.runner import ProcessRunner, execute
from corpuspipe.core.stage import CorpusStage, ShardStage, SourceStage
from corpuspipe.core.workcache import WorkCache
from corpuspipe.release.assemble import EmptyRelease, write_release

def test_plan_fuses_shard_stages_between_corpus_stages():
    passes = pipeline.plan()
    assert [p.names for p in passes] == [
        ["ingest"],
        ["identical_files", "watermark", "normalize", "section", "quality"],
    ]
    assert [[c.name for c in p.collects] for p in passes] == [["identical_files", "watermark"], ["dedup"]]
    kinds = {s.name: s.kind for s in pipeline.STAGES}
    assert kinds["ingest"] == "source" and kinds["dedup"] == "corpus" and kinds["normalize"] == "shard"
    assert isinstance(pipeline.STAGES[0], SourceStage)
    assert all(isinstance(s, (ShardStage, CorpusStage)) for s in pipeline.STAGES[1:])


def test_a_plan_must_start_with_a_source():
    with pytest.raises(ValueError, match="source"):
        pipeline.plan(pipeline.STAGES[1:])


def test_shards_are_content_defined_and_capped():
    items = [(f"site/{i:05d}.txt", 5_000) for i in range(3000)]
    shards = pipeline.shard_paths(items, 64, 10**9)
    assert sum(map(len, shards)) == 3000 and max(map(len, shards)) <= 128
    # adding a file changes its own shard (and, where a size cap cut it, the next up to a content cut)
    more = pipeline.shard_paths(sorted(items + [("site/01234x.txt", 5_000)]), 64, 10**9)
    changed = {tuple(s) for s in shards} - {tuple(s) for s in more}
    assert 1 <= len(changed) <= 2 and len(shards) > 30
    capped = pipeline.shard_paths(items, 64, 50_000)
    assert max(len(s) for s in capped) <= 10


def test_same_input_gives_the_same_keys_and_a_second_build_is_all_cached(raw_dir, tmp_path):
    cfg = PipelineConfig()
    first = pipeline.build(raw_dir, cfg, tmp_path / "work")
    again = pipeline.build(raw_dir, cfg, tmp_path / "work")
    assert all(r["cached"] for rs in again.passes for r in rs)
    assert all(r["cached"] for r in again.reduces.values())
    assert [r["key"] for rs in first.passes for r in rs] == [r["key"] for rs in again.passes for r in rs]


def test_long_strings_in_facts_never_touch_the_filesystem(raw_dir, tmp_path, monkeypatch):
    """#12: the old cache key called Path(s).is_file() on every string (boilerplate lines ->
    OSError: File name too long).  Keys now hash facts as JSON; no path is probed."""
    import os

    calls = []
    real_stat = os.stat

    def spy(path, *a, **kw):
        if isinstance(path, str) and len(path) > 255:
            calls.append(path)
        return real_stat(path, *a, **kw)

    monkeypatch.setattr(os, "stat", spy)
    p = pipeline.plan()[1]
    key = pipeline.pass_key(p, PipelineConfig(), "input", {"watermark": ["L|" + "很长的样板行" * 200],
                                                            "identical_files": {}})
    assert len(key) == 32 and calls == []


def test_editing_the_rules_file_changes_config_hash_and_release(raw_dir, tmp_path):
    """#2: a rules file's contents are part of the config hash and of every key that reads it."""
    rules = tmp_path / "rules.toml"
    rule = '[[rule]]\nname = "drop_word"\nscope = "inline"\npattern = "{}"\n'
    rules.write_text(rule.format("人才工作机制"), encoding="utf-8")
    cfg_file = tmp_path / "cfg.toml"
    cfg_file.write_text(f'[watermark]\nrules_file = "{rules}"\n', encoding="utf-8")
    cfg1 = PipelineConfig.load(cfg_file)
    hash1 = cfg1.config_hash()
    out = tmp_path / "out"
    b1 = pipeline.build(raw_dir, cfg1, out / ".work")
    r1 = write_release(b1, cfg1, out, None, "2026-01-01T00:00:00+00:00", b1.wall)
    rules.write_text(rule.format("服务产业集聚区"), encoding="utf-8")
    cfg2 = PipelineConfig.load(cfg_file)
    assert cfg2.config_hash() != hash1
    b2 = pipeline.build(raw_dir, cfg2, out / ".work")
    r2 = write_release(b2, cfg2, out, None, "2026-01-01T00:00:00+00:00", b2.wall)
    assert r2.status == "written" and r2.version != r1.version
    import pyarrow.parquet as pq

    text1 = "".join(pq.read_table(r1.release_dir / "documents", columns=["text"])["text"].to_pylist())
    text2 = "".join(pq.read_table(r2.release_dir / "documents", columns=["text"])["text"].to_pylist())
    assert "人才工作机制" not in text1 and "人才工作机制" in text2
    assert "服务产业集聚区" in text1 and "服务产业集聚区" not in text2


def test_an_empty_build_is_refused_and_writes_nothing(tmp_path):
    """#9: a JSONL whose text field has another name gives no document: refused, nothing written."""
    raw = tmp_path / "raw"
    raw.mkdir()
    lines = [json.dumps({"content": "现在，我代表国务院，向大会报告政府工作。" * 5, "title": f"t{i}"}, ensure_ascii=False)
             for i in range(3)]
    (raw / "crawl.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = PipelineConfig()
    out = tmp_path / "out"
    build = pipeline.build(raw, cfg, out / ".work")
    with pytest.raises(EmptyRelease, match="no documents"):
        write_release(build, cfg, out, None, "2026-01-01T00:00:00+00:00", build.wall)
    assert not [p for p in out.iterdir() if p.name not in (".work",)]
    quarantined = [q for rs in build.passes for r in rs for q in pipeline.shard_files(r)[1]]
    assert any("content" in q["detail"] for q in quarantined)
    allowed = write_release(build, cfg, out, None, "2026-01-01T00:00:00+00:00", build.wall, allow_empty=True)
    assert allowed.status == "written"


@pytest.mark.slow
def test_cli_refuses_an_html_only_directory_in_one_line(tmp_path, cli_env):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "page.html").write_text("<html><body>范文</body></html>", encoding="utf-8")
    proc = run_cli("release", str(raw), "--out", str(tmp_path / "out"), timeout=600, env=cli_env)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "no documents" in proc.stderr
    assert not [p for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")]


def test_process_and_serial_builds_give_the_same_results(raw_dir, tmp_path):
    cfg = PipelineConfig()
    serial = pipeline.build(raw_dir, cfg, tmp_path / "a")
    with ProcessRunner(2) as run:
        par = pipeline.build(raw_dir, cfg, tmp_path / "b", runner=run)
    assert [r["key"] for rs in serial.passes for r in rs] == [r["key"] for rs in par.passes for r in rs]
    for x, y in zip(serial.passes[-1], par.passes[-1]):
        assert Path(x["essays"]).read_bytes() == Path(y["essays"]).read_bytes()
    shutil.rmtree(tmp_path / "a")


def _threads(workers: int):
    """A runner computing a step's tasks at once in threads of this process."""
    def run(step):
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as ex:
            return list(ex.map(lambda a: execute(step.tasks.fn, tuple(a)), step.tasks.args))

    return run


def test_shards_computed_at_once_in_threads_give_the_serial_bytes(gov_reports, raw_dir, tmp_path):
    # the thread runner (and a Dask worker with several threads) runs shards of one pass at the
    # same time in one process: any state a stage shares between calls shows up here as a
    # difference in some work file (a shared scratch table in the quality stage once did)
    raw = tmp_path / "raw"
    shutil.copytree(raw_dir, raw)
    for i, r in enumerate(gov_reports[::3]):
        (raw / f"report_{i:02d}.txt").write_text(f"{r['title']}\n\n{r['content']}", encoding="utf-8")
    cfg = PipelineConfig.model_validate({"release": {"shard_files": 3}})
    serial = pipeline.build(raw, cfg, tmp_path / "a")
    threads = pipeline.build(raw, cfg, tmp_path / "b", runner=_threads(4))
    assert len(serial.passes[-1]) >= 8  # many shards, so several really run at once
    def outputs(build, work):  # every work file of every pass and reduce, in plan order
        cache = WorkCache(work)
        files = [p for rs in build.passes for r in rs for p in cache.paths_in(r)]
        files += [p for red in build.reduces.values() for p in cache.paths_in(red["fact"])]
        return [Path(p) for p in files if p.endswith(".parquet")]

    a, b = outputs(serial, tmp_path / "a"), outputs(threads, tmp_path / "b")
    assert len(a) == len(b) and len(a) > 20
    assert [str(x) for x, y in zip(a, b) if x.read_bytes() != y.read_bytes()] == []


def test_a_pass_submits_its_largest_shards_first_and_answers_in_shard_order():
    """Shards are cut where their paths say, so their sizes vary: the largest go to the workers
    first (a large one started last runs alone), the results still come back in shard order."""
    from concurrent.futures import ThreadPoolExecutor

    from corpuspipe.core.runner import Step
    from corpuspipe.core.stage import Tasks

    class Recording(ThreadPoolExecutor):  # one thread: runs tasks in the order they were submitted
        def __init__(self):
            super().__init__(1)
            self.seen = []

        def submit(self, fn, args):  # the runner's Pool interface
            self.seen.append(args[0])
            return super().submit(execute, fn, args)

    sizes = [3, 9, 1, 7, 7, 2]
    step = Step(Tasks("pass 0", str, [(f"s{i}",) for i in range(len(sizes))]), unit="bytes", sizes=sizes)
    with ProcessRunner(2, pool=Recording()) as run:  # the runner's own path, on a pool that records
        pool = run.pool
        done = run(step)
    assert pool.seen == ["s1", "s3", "s4", "s0", "s5", "s2"]  # by size, ties in shard order
    assert [d.value for d in done] == [f"s{i}" for i in range(len(sizes))]
    tasks = Step(Tasks("dedup: bands", str, [("a",), ("b",), ("c",)]))  # not sized: given order
    with Recording() as pool:
        assert [f.result().value for f in tasks.submit_to(pool)] == ["a", "b", "c"] and pool.seen == ["a", "b", "c"]
