"""The watermark package (issue 22 item 4): the reduce counts each key partition as its own parallel
step and selects the same keys as counting every vote at once; the rule guard is the stage object's."""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpuspipe import pipeline
from corpuspipe.config import PipelineConfig, WatermarkConfig
from corpuspipe.core.records import Shard
from corpuspipe.core.stage import Context, drive, serial_tasks
from corpuspipe.stages.ingest.files import ingest_file
from corpuspipe.stages.watermark import (
    RuleGuard,
    Watermark,
    added_by_copies,
    doc_frequency_threshold,
    is_protected,
    select_boilerplate,
    select_site_boilerplate,
    site_threshold,
)
from corpuspipe.stages.watermark.detector import _BP_PARTS, _count_votes
from tests.stages.watermark.test_watermark_sites import FOOTERS, PROSE_FOOTER, write_site_corpus

@pytest.fixture(scope="module")
def partials(tmp_path_factory, external: Path):
    """Pass 0 (ingest + the watermark collect) over real reports on one site, re-hosted with footers
    (and a prose-shaped footer only copies can convict) on two others."""
    with open(external / "gov_reports" / "government_work_reports.jsonl", encoding="utf-8") as fh:
        reports = [json.loads(line) for line in fh][:24]
    raw = tmp_path_factory.mktemp("raw")
    write_site_corpus(raw, reports, copies=6)
    work = tmp_path_factory.mktemp("work")
    cfg = PipelineConfig()
    shards, _, _ = pipeline.discover(raw, cfg)
    results = [pipeline.run_pass(0, s, cfg.model_dump_json(), str(raw), str(work), {}) for s in shards]
    return cfg, work, [p for r in results for p in r["partials"]["watermark"]]


def _all_at_once(partials: list[dict], cfg: WatermarkConfig) -> tuple[list[str], dict[str, list[str]]]:
    """The reference: every vote of every shard in one table, counted and selected in one go."""
    votes = pa.concat_tables([pq.read_table(p["stats"]) for p in partials])
    docs = pa.concat_tables([pq.read_table(p["docs"]) for p in partials]).group_by(["site", "ident"]).aggregate([])
    n = len(set(docs["ident"].to_pylist()))
    site_docs: dict[str, int] = {}
    ident_sites: dict[int, set[str]] = {}
    for site, ident in zip(docs["site"].to_pylist(), docs["ident"].to_pylist()):
        site_docs[site] = site_docs.get(site, 0) + 1
        ident_sites.setdefault(ident, set()).add(site)
    whole = _count_votes(votes, ["key"])
    freq = dict(zip(whole["key"].to_pylist(), whole["ident_count"].to_pylist()))
    by_site = _count_votes(votes, ["site", "key"])
    site_votes = {(s, k): (c, e) for s, k, c, e in zip(by_site["site"].to_pylist(), by_site["key"].to_pylist(),
                                                       by_site["ident_count"].to_pylist(), by_site["e_sum"].to_pylist())
                  if site_threshold(site_docs[s], cfg) is not None}
    carriers: dict[str, dict[int, set[str]]] = {}
    for key, site, ident in zip(votes["key"].to_pylist(), votes["site"].to_pylist(), votes["ident"].to_pylist()):
        if is_protected(key) and (freq[key] >= doc_frequency_threshold(n, cfg) or any(
                (site, key) in site_votes for site in site_docs)):
            carriers.setdefault(key, {}).setdefault(ident, set()).add(site)
    added = added_by_copies(carriers, ident_sites)
    corpus = select_boilerplate(freq, n, cfg, added)
    sites = select_site_boilerplate(site_votes, site_docs, cfg, added)
    sites = {s: [k for k in ks if k not in corpus] for s, ks in sorted(sites.items())}
    return corpus, {s: ks for s, ks in sites.items() if ks}


def _pool_tasks(pool: ProcessPoolExecutor):
    return lambda step: list(pool.map(step.fn, *zip(*step.args)))


def test_reduce_counts_each_key_partition_in_a_parallel_step(partials) -> None:
    cfg, work, parts = partials
    steps = []

    def record(step):
        steps.append((step.label, len(step.args)))
        return serial_tasks(step)

    fact = drive(Watermark().reduce(parts, Context(cfg, {}, work)), record)
    assert steps[:2] == [("watermark.documents", 1), ("watermark.count", _BP_PARTS)]
    assert ("watermark.copies", 1) in steps  # the prose-shaped footer: copies are asked where it is
    corpus, sites = _all_at_once(parts, cfg.watermark)
    assert (fact["corpus"], fact["sites"]) == (corpus, sites)
    keys = set(fact["corpus"]) | {k for ks in fact["sites"].values() for k in ks}
    assert any(FOOTERS["siteA"][:8] in k for k in keys) and any(PROSE_FOOTER[:8] in k for k in keys), keys
    # the steps run in worker processes: the same fact
    with ProcessPoolExecutor(2) as pool:
        assert drive(Watermark().reduce(parts, Context(cfg, {}, work)), _pool_tasks(pool)) == fact


def test_rule_guard_belongs_to_the_stage_object(tmp_path: Path, raw_dir: Path) -> None:
    rules = tmp_path / "user.toml"
    rules.write_text("[[rule]]\nname = 'slow'\nscope = 'inline'\npattern = '''(a|aa)+$'''\n", encoding="utf-8")
    cfg = PipelineConfig.model_validate({"watermark": {"rules_file": str(rules)}})
    shard = ingest_file(raw_dir, sorted(p.name for p in raw_dir.glob("*.txt"))[0], cfg.ingest)
    essay = shard.essays[0]
    essay.body = type(essay.body)(essay.body.text + "\n" + "a" * 40 + "!\n")
    guard = RuleGuard(timeout=0.05)
    stage = Watermark(guard=guard)
    ctx = Context(cfg, {})
    stage.apply(Shard(essays=[essay]), ctx)
    assert guard.timeouts == {"slow": 1} and ctx.counts["watermark"]["rule_timeouts"] == 1
    assert stage.guard is guard and Watermark().guard is not guard and not Watermark().guard.timeouts
