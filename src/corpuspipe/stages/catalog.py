"""The stage units: each step of the pipeline as one small class of a declared kind.

Each unit is a thin adapter from the stage interface (:mod:`corpuspipe.core.stage`) to the
module that holds the stage's knowledge (``ingest/``, ``watermark``, ``normalize``, ``section``,
``dedup/``).  The list of units in :data:`corpuspipe.pipeline.STAGES` is the pipeline; nothing
else wires stages together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from corpuspipe.core.config import PipelineConfig
from corpuspipe.core.records import QuarantineEntry, SectionRow, Shard
from corpuspipe.core.stage import Context, CorpusStage, ShardStage, SourceStage
from corpuspipe.stages import normalize as normalize_mod
from corpuspipe.stages import section as section_mod
from corpuspipe.stages import watermark as watermark_mod
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


_BP_PARTS = 16  # partitions of the boilerplate key space: the reduce holds one at a time


def _bp_part(keys: list[str]) -> list[int]:
    return [xxhash.xxh3_64_intdigest(k.encode()) % _BP_PARTS for k in keys]


class Watermark(CorpusStage):
    """Rules (shipped + user file) plus boilerplate detected from corpus statistics.

    collect: per shard, the document frequency of candidate lines and bracketed runs, written as
    one Parquet file with one row group per key-space partition; reduce: per partition, the summed
    frequencies against the corpus-size threshold (memory: one partition, not the corpus's
    millions of distinct lines); apply: remove rule matches and the selected boilerplate as edits.
    """

    name = "watermark"
    config_sections = ("watermark",)

    def input_files(self, cfg: PipelineConfig) -> list[Path]:
        return [Path(cfg.watermark.rules_file)] if cfg.watermark.rules_file else []

    def collect(self, batch: Shard, ctx: Context) -> dict[str, Any]:
        freq = watermark_mod.collect_boilerplate_stats(batch.essays, ctx.cfg.watermark)
        keys = sorted(freq)
        parts = _bp_part(keys)
        table = pa.table({"part": pa.array(parts, pa.int8()), "key": pa.array(keys, pa.string()),
                          "n": pa.array([freq[k] for k in keys], pa.int32())})
        out = ctx.work / "watermark" / f"{ctx.shard_key}.stats.parquet"
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name("." + out.name + ".tmp")
        with pq.ParquetWriter(tmp, table.schema, compression="zstd", compression_level=1) as w:
            for p in range(_BP_PARTS):
                w.write_table(table.filter(pc.equal(table["part"], p)), row_group_size=1 << 30)
        tmp.replace(out)
        return {"stats": str(out), "documents": len(batch.essays)}

    def reduce(self, partials: Sequence[Any], ctx: Context) -> list[str]:
        cfg = ctx.cfg.watermark
        n_docs = sum(p["documents"] for p in partials)
        if not cfg.detect_boilerplate or n_docs <= 0:
            return []
        threshold = watermark_mod.doc_frequency_threshold(n_docs, cfg)
        files = [pq.ParquetFile(p["stats"]) for p in partials]
        frequent: dict[str, int] = {}
        for part in range(_BP_PARTS):
            tables = [f.read_row_group(part) for f in files if f.num_row_groups > part]
            tables = [t for t in tables if t.num_rows]
            if not tables:
                continue
            summed = pa.concat_tables(tables).group_by("key").aggregate([("n", "sum")])
            hits = summed.filter(pc.greater_equal(summed["n_sum"], threshold))
            frequent.update(zip(hits["key"].to_pylist(), hits["n_sum"].to_pylist()))
        selected = watermark_mod.select_boilerplate(frequent, n_docs, cfg)
        ctx.count(self.name, "boilerplate_keys_selected", len(selected))
        return selected

    _guard: watermark_mod.RuleGuard | None = None

    def apply(self, batch: Shard, ctx: Context) -> Shard:
        # one guard per process: a user rule that times out is disabled for every later shard here
        guard = Watermark._guard = Watermark._guard or watermark_mod.RuleGuard()
        before = guard.counters()
        removed = watermark_mod.remove_watermarks(batch.essays, ctx.cfg.watermark, ctx.facts.get(self.name) or (),
                                                  guard=guard)
        after = guard.counters()
        ctx.count_all(self.name, {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)})
        ctx.count_all(self.name, {f"removed.{rule}": n for rule, n in removed.items()})
        return batch


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
