"""The stage units: each step of the pipeline as one small class of a declared kind.

Each unit is a thin adapter from the stage interface (:mod:`corpuspipe.core.stage`) to the
module that holds the stage's knowledge (``ingest/``, ``watermark``, ``normalize``, ``section``,
``dedup/``).  The list of units in :data:`corpuspipe.pipeline.STAGES` is the pipeline; nothing
else wires stages together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from corpuspipe.core.records import QuarantineEntry, SectionRow, Shard
from corpuspipe.core.stage import Context, CorpusStage, ShardStage, SourceStage
from corpuspipe.stages import normalize as normalize_mod
from corpuspipe.stages import section as section_mod
from corpuspipe.stages.watermark import Watermark  # noqa: F401  (the corpus stage lives with its knowledge)
from corpuspipe.stages import dedup as dedup_units
from corpuspipe.stages.ingest import files as ingest_mod


class Ingest(SourceStage):
    """Read, decode and split raw files into essays; quarantine what cannot be used."""

    name = "ingest"
    config_sections = ("ingest",)

    def read(self, raw_root: Path, rel_paths: Sequence[str], ctx: Context) -> Shard:
        batch = Shard()
        for rel in rel_paths:
            part = ingest_mod.ingest_file(Path(raw_root), rel, ctx.cfg.ingest)
            batch.essays.extend(part.essays)
            batch.sources.extend(part.sources)
            batch.quarantine.extend(part.quarantine)
            ctx.count_all(self.name, {k.split(".", 1)[-1]: v for k, v in part.stats.items() if isinstance(v, int)})
        return batch


class IdenticalFiles(CorpusStage):
    """Byte-identical files give identical doc_ids (ids derive from content): release the copy with
    the smallest path, quarantine the others naming the kept one.  A corpus decision, but a tiny
    one: one (sha256, path) pair per file."""

    name = "identical_files"

    def collect(self, batch: Shard, ctx: Context) -> list[list[str]]:
        return sorted([s.sha256, s.path] for s in batch.sources)

    def reduce(self, partials: Sequence[Any], ctx: Context) -> dict[str, list[str]]:
        """dropped path -> [kept path, sha256]."""
        kept: dict[str, str] = {}
        dropped: dict[str, list[str]] = {}
        for sha, path in sorted({(sha, path) for part in partials for sha, path in part}):
            if sha in kept:
                dropped[path] = [kept[sha], sha]
            else:
                kept[sha] = path
        ctx.count(self.name, "files_dropped", len(dropped))
        return dict(sorted(dropped.items()))

    def apply(self, batch: Shard, ctx: Context) -> Shard:
        """Drop the copies' essays and sources (idempotent: a shard's groups share its sources)."""
        dropped = ctx.facts.get(self.name) or {}
        if dropped:
            batch.essays = [e for e in batch.essays if e.source_path not in dropped]
            batch.sources = [s for s in batch.sources if s.path not in dropped]
        return batch

    @staticmethod
    def quarantine(fact: dict[str, list[str]] | None) -> list[QuarantineEntry]:
        return [QuarantineEntry(path=path, reason="duplicate_file", sha256=sha,
                                detail=f"byte-identical to {kept}; its essays are released from there")
                for path, (kept, sha) in sorted((fact or {}).items())]


class Normalize(ShardStage):
    """Traditional -> Simplified, text repairs, PII redaction; script and flags."""

    name = "normalize"
    config_sections = ("normalize",)

    def process(self, batch: Shard, ctx: Context) -> Shard:
        ctx.count_all(self.name, normalize_mod.normalize_essays(batch.essays, ctx.cfg.normalize))
        return batch


class Section(ShardStage):
    """The outline of every essay (offsets into its clean text)."""

    name = "section"
    config_sections = ("section",)

    def process(self, batch: Shard, ctx: Context) -> Shard:
        n = 0
        for e in batch.essays:
            doc_id = e.doc_id
            e.sections = [
                SectionRow(doc_id, s.path, s.level, s.ordinal, s.marker, s.marker_family, s.heading, s.char_start,
                           s.char_end, s.parent_path)
                for s in section_mod.section_text(e.body.text, ctx.cfg.section)
            ]
            n += len(e.sections)
        ctx.count(self.name, "sections", n)
        return batch


class NearDuplicates(CorpusStage):
    """MinHash near-duplicates and reuse across documents and sections.

    collect: per shard, signatures of its documents and section units, as Parquet under
    ``.work/dedup``; reduce: once per level, candidates, exact verification and clusters, written
    as Parquet (pairs; cluster membership of clustered ids only) that the writer joins per shard.
    """

    name = "dedup"
    config_sections = ("dedup",)

    def collect(self, batch: Shard, ctx: Context) -> dict[str, str]:
        out = {}
        docs, units = [], []
        for e in batch.essays:
            d, u = dedup_units.items_for_document(e.doc_id, e.body.text, e.sections or [], flags=e.flags,
                                                  script=e.script, cfg=ctx.cfg.dedup)
            docs.append(d)
            units.extend(u)
        for level, items in (("document", docs), ("section", units)):
            path = ctx.work / "dedup" / f"{ctx.shard_key}.{level}.parquet"
            dedup_units.write_signatures(items, level, ctx.cfg.dedup, path)
            out[level] = str(path)
        return out

    def reduce(self, partials: Sequence[Any], ctx: Context) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for level in ("document", "section"):
            outcome = dedup_units.find_duplicates([Path(p[level]) for p in partials], level, ctx.cfg.dedup,
                                                  ctx.work / "dedup" / f"{ctx.shard_key}.{level}")
            result[level] = {"pairs": str(outcome.pairs_path), "clusters": str(outcome.clusters_path),
                             "stats": outcome.stats}
        return result
