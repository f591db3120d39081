"""The stage units: each step of the pipeline as one small class of a declared kind.

Each unit is a thin adapter from the stage interface (:mod:`corpuspipe.core.stage`) to the
module that holds the stage's knowledge (``ingest/``, ``watermark``, ``normalize``, ``section``,
``dedup/``).  The list of units in :data:`corpuspipe.pipeline.STAGES` is the pipeline; nothing
else wires stages together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Sequence

from corpuspipe.core import shardio
from corpuspipe.core.records import Essay, QuarantineEntry, SectionRow, Shard, SourceInfo
from corpuspipe.core.stage import Context, CorpusStage, ReleaseInputs, ShardStage, SourceStage
from corpuspipe.stages import normalize as normalize_mod
from corpuspipe.stages import section as section_mod
from corpuspipe.stages.watermark import Watermark  # noqa: F401  (the corpus stage lives with its knowledge)
from corpuspipe.stages import dedup as dedup_units
from corpuspipe.stages.ingest import files as ingest_mod


class Ingest(SourceStage):
    """Read, decode and split raw files into essays; quarantine what cannot be used."""

    name = "ingest"
    config_sections = ("ingest",)

    def read_groups(self, raw_root: Path, rel_paths: Sequence[str], ctx: Context) -> Iterator[Shard]:
        """The shard's essays in groups cut exactly where the shard file's row groups are cut
        (:func:`shardio.cut_before`: 2,048 essays or ``GROUP_CHARS`` raw characters), each with the
        sources and quarantine entries finished since the previous group; at least one group.

        A 200 MB file used to reach the writer as one list of ~4,000 essays (raw and current
        text of each, plus the Arrow copy of a row group): 1,358 MB for pass 0 alone (3.86 GB reported in a full release).  Now a
        file's essays go out as they are split.  A failure inside a file quarantines the file;
        only when some of its essays already went out (a file larger than a group) do those stay.
        """
        cfg = ctx.cfg.ingest
        pending: list[Essay] = []
        chars = 0
        sources: list[SourceInfo] = []
        quarantine: list[QuarantineEntry] = []
        for rel in rel_paths:
            part = Shard()
            mine = 0  # this file's essays still in pending (not handed on)
            released = 0  # this file's essays already handed on
            try:
                for essay in ingest_mod.iter_file(Path(raw_root), rel, cfg, part):
                    size = len(essay.body.raw)
                    if shardio.cut_before(len(pending), chars, size):
                        released += mine
                        yield Shard(essays=pending, sources=sources, quarantine=quarantine)
                        pending, chars, sources, quarantine, mine = [], 0, [], [], 0
                    pending.append(essay)
                    chars += size
                    mine += 1
            except Exception as exc:
                if mine:
                    del pending[-mine:]
                    chars = sum(len(e.body.raw) for e in pending)
                part = ingest_mod.failed_file(rel, exc, released, part.sources[-1] if part.sources else None)
            sources.extend(part.sources)
            quarantine.extend(part.quarantine)
            ctx.count_all(self.name, {k.split(".", 1)[-1]: v for k, v in part.stats.items() if isinstance(v, int)})
        yield Shard(essays=pending, sources=sources, quarantine=quarantine)


class IdenticalFiles(CorpusStage):
    """Byte-identical files give identical doc_ids (ids derive from content): release the copy with
    the smallest path, quarantine the others naming the kept one.  A corpus decision, but a tiny
    one: one (sha256, path) pair per file."""

    name = "identical_files"
    applies = True

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
        # for the manifest: the writer's process then never imports datasketch (scipy: ~1.5 s)
        result["lsh"] = dedup_units.lsh_params(ctx.cfg.dedup)
        return result

    def release_inputs(self, fact: dict[str, Any] | None) -> ReleaseInputs:
        """Cluster membership joined into documents and sections (by ``id``); both levels' verified
        pairs as the rows of ``duplicates``, documents first."""
        levels = {level: (fact or {}).get(level) or {} for level in ("document", "section")}
        return ReleaseInputs(
            joins={table: [levels[level]["clusters"]] for table, level in (("documents", "document"),
                                                                           ("sections", "section"))
                   if levels[level].get("clusters")},
            rows={"duplicates": [levels[lv]["pairs"] for lv in ("document", "section") if levels[lv].get("pairs")]})
