"""The near-duplicate stage: the adapter from the stage interface to the dedup phases
(``units.py`` -> ``signatures.py`` per shard -> ``reduce.py``'s parallel steps), and what the
decision gives the release."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from corpuspipe.core.config import PipelineConfigBase
from corpuspipe.core.records import Shard
from corpuspipe.core.stage import Context, CorpusStage, Reduction, ReleaseInputs, StageReport, together
from corpuspipe.stages.dedup.minhash import lsh_params
from corpuspipe.stages.dedup.reduce import find_duplicates_steps
from corpuspipe.stages.dedup.signatures import write_signatures
from corpuspipe.stages.dedup.units import items_for_document

#: the two levels, each deduplicated on its own, and the release table each one's clusters join
LEVELS = (("document", "documents"), ("section", "sections"))


class NearDuplicates(CorpusStage):
    """MinHash near-duplicates and reuse across documents and sections.

    collect: per shard, signatures of its documents and section units, as Parquet under
    ``.work/dedup`` (and how many of their units are banded); reduce: per level, the phases of
    ``reduce.py`` as parallel steps, both levels side by side (``core.stage.together``) --
    candidates, exact verification and clusters, written as Parquet (pairs; cluster membership of
    clustered ids only) that the writer joins.
    """

    name = "dedup"
    config_sections = ("dedup",)

    def collect(self, batch: Shard, ctx: Context) -> dict[str, dict]:
        out = {}
        docs, units = [], []
        for e in batch.essays:
            d, u = items_for_document(e.doc_id, e.body.text, e.sections or [], flags=e.flags,
                                      script=e.script, cfg=ctx.cfg.dedup)
            docs.append(d)
            units.extend(u)
        for level, items in (("document", docs), ("section", units)):
            path = ctx.work / "dedup" / f"{ctx.shard_key}.{level}.parquet"
            stats = write_signatures(items, level, ctx.cfg.dedup, path)
            out[level] = {"path": str(path), "band_rows": stats["band_rows"]}
        return out

    def reduce(self, partials: Sequence[Mapping[str, Mapping[str, Any]]], ctx: Context) -> Reduction:
        outcomes = yield from together(*(
            find_duplicates_steps([(p[level]["path"], p[level]["band_rows"]) for p in partials], level, ctx.cfg.dedup,
                                  ctx.work / "dedup" / f"{ctx.shard_key}")
            for level, _table in LEVELS))
        result: dict[str, Any] = {
            level: {"pairs": str(o.pairs_path), "clusters": str(o.clusters_path), "stats": o.stats}
            for (level, _table), o in zip(LEVELS, outcomes)}
        # for the manifest: the writer's process then never imports datasketch (scipy: ~1.5 s)
        result["lsh"] = lsh_params(ctx.cfg.dedup)
        return result

    def release_inputs(self, fact: Mapping[str, Any] | None) -> ReleaseInputs:
        """Each level's cluster membership (``id``, ``cluster_id``, ``duplicate_of``,
        ``cluster_size``; clustered ids only) joins its table; the verified pairs of both levels are
        the rows of ``duplicates``, documents first."""
        fact = fact or {}
        joins: dict[str, list[str]] = {}
        pairs: list[str] = []
        for level, table in LEVELS:
            out = fact.get(level) or {}
            if out.get("clusters"):
                joins[table] = [out["clusters"]]
            if out.get("pairs"):
                pairs.append(out["pairs"])
        return ReleaseInputs(joins=joins, rows={"duplicates": pairs} if pairs else {})

    def report(self, counts: Mapping[str, int], fact: Mapping[str, Any] | None, cfg: PipelineConfigBase) -> StageReport:
        """The manifest's ``dedup``: the LSH parameters and each level's statistics."""
        fact = fact or {}
        return StageReport(counts=dict(sorted(counts.items())), entries={"dedup": {
            **(fact.get("lsh") or lsh_params(cfg.dedup)),
            **{level: (fact.get(level) or {}).get("stats") for level, _table in LEVELS}}})
