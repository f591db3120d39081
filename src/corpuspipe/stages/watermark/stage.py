"""The ``watermark`` corpus stage: collect votes per shard, select boilerplate once, remove per batch."""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any, Mapping, Sequence

from corpuspipe.core.config import PipelineConfigBase
from corpuspipe.core.records import QuarantineEntry, Shard
from corpuspipe.core.stage import Context, CorpusStage, Reduction, StageReport, Tasks
from corpuspipe.stages.watermark.detector import (
    _BP_PARTS,
    _write_parquet,
    added_by_copies,
    count_partition,
    docs_summary,
    doc_frequency_threshold,
    select_boilerplate,
    select_site_boilerplate,
    site_threshold,
    sites_of_texts,
    stats_table,
)
from corpuspipe.stages.watermark.rejoin import Carry, essays_to_rejoin, opener, opener_line, rejoin
from corpuspipe.stages.watermark.removal import EMPTIED_FLAG, KEPT_FLAG, remove_watermarks, rule_plan
from corpuspipe.stages.watermark.rules import RuleGuard, load_rules


class Watermark(CorpusStage):
    """Rules (shipped + user file) plus boilerplate detected from corpus and site statistics.

    collect: per shard, one row per (essay, candidate key) with the essay's site, its identity (so
    exact copies and re-hosted copies vote once, wherever their shards are) and whether the key sits
    at a page edge, as Parquet with one row group per key-space partition; reduce: per partition,
    distinct identities per key (corpus level) and per (site, key) against their thresholds (memory:
    one partition, never the corpus's millions of distinct lines at once); apply: remove rule
    matches and the selected keys of the corpus and of the essay's own site as edits, and
    quarantine essays left with nothing but boilerplate.  Before removing, ``apply`` re-joins an
    essay the splitter opened at a line this stage removes to the essay before it (``rejoin.py``).
    """

    name = "watermark"
    config_sections = ("watermark",)
    applies = True

    def __init__(self, guard: RuleGuard | None = None) -> None:
        #: The rule guard of this stage object: a user rule that runs over its timeout on one
        #: document is disabled for every later batch this object removes watermarks from.  The
        #: pipeline's ``STAGES`` holds one object per process, so that is one guard per process
        #: (what the class-level guard did before, now visible and replaceable: tests pass their own).
        self.guard = guard if guard is not None else RuleGuard()
        #: Per running pass (its Context): the essay held back at the end of a batch because its
        #: successor, to be joined to it, is the first essay of the next batch.
        self._carry: weakref.WeakKeyDictionary[Context, Carry] = weakref.WeakKeyDictionary()

    def __getstate__(self) -> dict:
        """Sent to a worker (a custom stage list rides along with its tasks): the guard goes, the
        carried essays of passes running here do not (they belong to this process's contexts)."""
        return {"guard": self.guard}

    def __setstate__(self, state: dict) -> None:
        self.__init__(guard=state["guard"])

    def report(self, counts: Mapping[str, int], fact: Any, cfg: PipelineConfigBase) -> StageReport:
        """Its ``removed.<rule>`` counters also as the manifest's ``removals_per_rule``."""
        ordered = dict(sorted(counts.items()))
        return StageReport(counts=ordered, entries={"removals_per_rule": {
            k.removeprefix("removed."): v for k, v in ordered.items() if k.startswith("removed.")}})

    def input_files(self, cfg: PipelineConfigBase) -> list[Path]:
        return cfg.watermark.input_files()

    def collect(self, batch: Shard, ctx: Context) -> dict[str, Any]:
        cfg = ctx.cfg.watermark
        rules = rule_plan(load_rules(cfg.rules_file))
        lines = [opener_line(e) for e in batch.essays]
        per_essay = [opener(e, line, rules, cfg) for e, line in zip(batch.essays, lines)]
        votes, docs = stats_table(batch.essays, cfg, [(o[3], line) if o else None
                                                      for o, line in zip(per_essay, lines)])
        out = ctx.work / "watermark" / f"{ctx.shard_key}.stats.parquet"
        docs_out = ctx.work / "watermark" / f"{ctx.shard_key}.docs.parquet"
        _write_parquet(votes, out, _BP_PARTS)
        _write_parquet(docs, docs_out)
        openers = [o for o in per_essay if o is not None]
        return {"stats": str(out), "docs": str(docs_out), "documents": len(batch.essays), "openers": openers}

    def reduce(self, partials: Sequence[Any], ctx: Context) -> Reduction:
        """Counting is the parallel part (one task per key partition, :func:`count_partition`);
        the glue between the steps only joins their small results and selects."""
        cfg = ctx.cfg.watermark
        openers = [o for p in partials for o in p.get("openers", ())]
        empty: dict[str, Any] = {"corpus": [], "sites": {}, "selected": [],
                                 "rejoin": essays_to_rejoin(openers, (), {})}
        if not cfg.detect_boilerplate or not partials:
            return empty
        docs_paths = [p["docs"] for p in partials]
        [(n_texts, site_docs)] = yield Tasks("watermark.documents", docs_summary, [(docs_paths,)])
        if n_texts == 0:
            return empty
        threshold = doc_frequency_threshold(n_texts, cfg)
        site_floor = min((t for t in (site_threshold(n, cfg) for n in site_docs.values()) if t), default=None)
        stats_paths = [p["stats"] for p in partials]
        counted = yield Tasks("watermark.count", count_partition,
                              [(part, stats_paths, threshold, site_floor) for part in range(_BP_PARTS)])
        corpus_freq: dict[str, int] = {}
        site_votes: dict[tuple[str, str], tuple[int, int]] = {}
        examples: dict[str, str] = {}
        carriers: dict[str, dict[int, set[str]]] = {}  # genre-prose keys: sites per text carrying them
        for res in counted:
            corpus_freq.update(res["corpus"])
            site_votes.update({(site, key): (n, ne) for site, key, n, ne in res["site"]})
            examples.update(res["examples"])
            for key, per_ident in res["carriers"].items():
                carriers[key] = {ident: set(sites) for ident, sites in per_ident}
        added: frozenset[str] = frozenset()
        if carriers:
            idents = sorted({i for per_ident in carriers.values() for i in per_ident})
            [ident_sites] = yield Tasks("watermark.copies", sites_of_texts, [(docs_paths, idents)])
            added = added_by_copies(carriers, {i: set(s) for i, s in ident_sites.items()})
        if len(carriers) > len(added):
            ctx.count(self.name, "boilerplate_keys_protected_prose", len(carriers) - len(added))
        fact = self._select(ctx, corpus_freq, site_votes, examples, n_texts, site_docs, added)
        fact["rejoin"] = essays_to_rejoin(openers, fact["corpus"], fact["sites"])
        ctx.count(self.name, "essays_to_rejoin", len(fact["rejoin"]))
        return fact

    def _select(self, ctx: Context, corpus_freq: dict[str, int], site_votes: dict[tuple[str, str], tuple[int, int]],
                examples: dict[str, str], n_texts: int, site_docs: dict[str, int], added: frozenset[str]
                ) -> dict[str, Any]:
        """The fact: corpus keys, per-site keys (minus corpus ones) and a row per selected key."""
        cfg = ctx.cfg.watermark
        corpus = select_boilerplate(corpus_freq, n_texts, cfg, added)
        sites = select_site_boilerplate(site_votes, site_docs, cfg, added)
        chosen = set(corpus)
        sites = {s: [k for k in ks if k not in chosen] for s, ks in sorted(sites.items())}
        sites = {s: ks for s, ks in sites.items() if ks}
        selected = [{"scope": "corpus", "site": "", "key": k, "texts": corpus_freq[k], "example": examples.get(k, "")}
                    for k in corpus]
        selected += [{"scope": "site", "site": s, "key": k, "texts": site_votes[(s, k)][0],
                      "example": examples.get(k, "")} for s, ks in sites.items() for k in ks]
        ctx.count(self.name, "boilerplate_keys_selected", len(selected))
        ctx.count(self.name, "boilerplate_keys_selected.corpus", len(corpus))
        ctx.count(self.name, "boilerplate_keys_selected.site", len(selected) - len(corpus))
        ctx.count(self.name, "distinct_texts", n_texts)
        return {"corpus": corpus, "sites": sites, "selected": selected}

    def apply(self, batch: Shard, ctx: Context) -> Shard:
        fact = ctx.facts.get(self.name) or {}
        wanted = {(p, i) for p, i in fact.get("rejoin", ())} if isinstance(fact, dict) else set()
        carry = self._carry.pop(ctx, None)
        if wanted or carry is not None:
            batch.essays, carry, merged = rejoin(batch.essays, wanted, ctx.cfg.ingest.min_essay_chars,
                                                 batch.sources, carry)
            if carry is not None:
                self._carry[ctx] = carry
            if merged:
                ctx.count(self.name, "rejoined_essays", merged)
        guard = self.guard
        before = guard.counters()
        removed = remove_watermarks(batch.essays, ctx.cfg.watermark, ctx.facts.get(self.name) or (), guard=guard)
        after = guard.counters()
        ctx.count_all(self.name, {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)})
        ctx.count_all(self.name, {f"removed.{rule}": n for rule, n in removed.items()})
        kept = []
        for e in batch.essays:
            if EMPTIED_FLAG in e.flags:
                batch.quarantine.append(QuarantineEntry(
                    path=e.source_path, reason=EMPTIED_FLAG,
                    detail=f"essay {e.essay_index}: nothing but site boilerplate once its lines were removed"))
                ctx.count(self.name, "quarantined.boilerplate_only")
            else:
                kept.append(e)
                if KEPT_FLAG in e.flags:
                    ctx.count(self.name, "flagged.boilerplate_kept")
        batch.essays = kept
        return batch
