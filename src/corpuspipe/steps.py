"""Shard-level steps: read a shard file, run one stage, write the next shard file.

These are what the Prefect tasks call.  They take and return paths (cheap to pass between
processes or Dask workers) and name their outputs by a key derived from the *contents* of
their inputs, the stage and the config, so equal inputs land on equal files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pyarrow.parquet as pq

from corpuspipe import __version__
from corpuspipe.stages.dedup import minhash as dedup_mod
from corpuspipe.stages.ingest import files as ingest_mod
from corpuspipe.stages import normalize as normalize_mod
from corpuspipe.stages import section as section_mod
from corpuspipe.core import schemas
from corpuspipe.stages import watermark as watermark_mod
from corpuspipe.core.config import PipelineConfig
from corpuspipe.core.records import Essay, QuarantineEntry, Shard, merge_counts
from corpuspipe.core.io import file_sha256
from corpuspipe.core.records import SectionRow, section_id


def step_key(stage: str, cfg: PipelineConfig, *parts: str) -> str:
    h = hashlib.sha256(f"{stage}\0{__version__}\0{cfg.config_hash()}".encode())
    for p in parts:
        h.update(b"\0" + p.encode())
    return h.hexdigest()[:24]


def _timed(shard: Shard, stage: str, start: float, input_bytes: int) -> None:
    """Record a stage's compute time and the UTF-8 size of its input (for MB/s in the manifest)."""
    t = shard.stats.setdefault("timings", {})
    t[stage] = {"seconds": round(time.perf_counter() - start, 6), "bytes": input_bytes}


def text_bytes(essays: Iterable[Essay]) -> int:
    return sum(len(e.text.encode("utf-8")) for e in essays)


# -- 1. discover + ingest ----------------------------------------------------------------
def discover(raw_root: Path, cfg: PipelineConfig) -> tuple[list[str], list[QuarantineEntry]]:
    return ingest_mod.discover_sources(Path(raw_root), cfg.ingest)


def ingest_step(raw_root: Path, rel_paths: Sequence[str], cfg: PipelineConfig, work: Path) -> Path:
    raw_root = Path(raw_root)
    digests = []
    for rel in rel_paths:
        try:
            digests.append(rel + ":" + file_sha256(raw_root / rel))
        except OSError as exc:  # unreadable: ingest_file quarantines it
            digests.append(rel + ":unreadable:" + type(exc).__name__)
    out = Path(work) / "ingest" / f"{step_key('ingest', cfg, *digests)}.json"
    start = time.perf_counter()
    shard = Shard()
    for rel in rel_paths:
        part = ingest_mod.ingest_file(raw_root, rel, cfg.ingest)
        shard.essays.extend(part.essays)
        shard.sources.extend(part.sources)
        shard.quarantine.extend(part.quarantine)
    _timed(shard, "ingest", start, sum(s.bytes for s in shard.sources))
    return shard.write(out)


# -- 2. watermark: statistics first, then the corpus-level decision, then action ----------
def boilerplate_stats_step(shard_path: Path, cfg: PipelineConfig, work: Path) -> Path:
    """Document frequencies of boilerplate candidates in one shard, and its document count, as a file.

    A file, not a value: the frequencies run to thousands of keys a shard, and orchestrators copy,
    walk and persist every value passed between tasks.
    """
    out = Path(work) / "stats" / f"{step_key('stats', cfg, file_sha256(shard_path))}.json"
    shard = Shard.read(shard_path)
    stats = {
        "doc_freq": watermark_mod.collect_boilerplate_stats(shard.essays, cfg.watermark),
        "documents": len(shard.essays),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(stats, ensure_ascii=False, sort_keys=True), encoding="utf-8")
    return out


def select_boilerplate(stats_paths: Iterable[Path], cfg: PipelineConfig) -> list[str]:
    """The corpus-level decision: sum the shards' frequencies, then select against the corpus size."""
    total: dict[str, int] = {}
    n_docs = 0
    for p in stats_paths:
        stats = json.loads(Path(p).read_text(encoding="utf-8"))
        merge_counts(total, stats["doc_freq"])
        n_docs += stats["documents"]
    return watermark_mod.select_boilerplate(total, n_docs, cfg.watermark)


def watermark_step(shard_path: Path, boilerplate: Sequence[str], cfg: PipelineConfig, work: Path) -> Path:
    bp_key = hashlib.sha256("\n".join(boilerplate).encode()).hexdigest()
    out = Path(work) / "watermark" / f"{step_key('watermark', cfg, file_sha256(shard_path), bp_key)}.json"
    shard = Shard.read(shard_path)
    start = time.perf_counter()
    chars = text_bytes(shard.essays)
    removed = watermark_mod.remove_watermarks(shard.essays, cfg.watermark, boilerplate)
    _timed(shard, "watermark", start, chars)
    merge_counts(shard.stats.setdefault("removals_per_rule", {}), removed)
    return shard.write(out)


# -- 3. normalize ----------------------------------------------------------------------------
def normalize_step(shard_path: Path, cfg: PipelineConfig, work: Path) -> Path:
    out = Path(work) / "normalize" / f"{step_key('normalize', cfg, file_sha256(shard_path))}.json"
    shard = Shard.read(shard_path)
    start = time.perf_counter()
    chars = text_bytes(shard.essays)
    counts = normalize_mod.normalize_essays(shard.essays, cfg.normalize)
    _timed(shard, "normalize", start, chars)
    merge_counts(shard.stats.setdefault("normalize_counts", {}), counts)
    return shard.write(out)


# -- 4. section ------------------------------------------------------------------------------
def section_step(shard_path: Path, cfg: PipelineConfig, work: Path) -> dict[str, str]:
    """Outline every essay of a shard; write only the sections (the shard itself is unchanged).

    Returns ``{"shard": <input shard>, "sections": <sections file>}``; later steps read both.
    """
    out = Path(work) / "section" / f"{step_key('section', cfg, file_sha256(shard_path))}.json"
    shard = Shard.read(shard_path)
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    size = 0
    for e in shard.essays:
        text = e.text
        size += len(text.encode("utf-8"))
        for s in section_mod.section_text(text, cfg.section):
            rows.append(
                asdict(
                    SectionRow(
                        doc_id=e.doc_id,
                        path=s.path,
                        level=s.level,
                        ordinal=s.ordinal,
                        marker=s.marker,
                        marker_family=s.marker_family,
                        heading=s.heading,
                        char_start=s.char_start,
                        char_end=s.char_end,
                        parent_path=s.parent_path,
                    )
                )
            )
    timing = {"seconds": round(time.perf_counter() - start, 6), "bytes": size}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "timing": timing}, ensure_ascii=False, sort_keys=True), encoding="utf-8")
    return {"shard": str(shard_path), "sections": str(out)}


def _sections_file(sectioned: Mapping[str, str]) -> dict[str, Any]:
    return json.loads(Path(sectioned["sections"]).read_text(encoding="utf-8"))


def read_sections(sectioned: Mapping[str, str]) -> list[SectionRow]:
    return [SectionRow(**r) for r in _sections_file(sectioned)["rows"]]


def dedup_items(shard: Shard, sections: Sequence[SectionRow], cfg: PipelineConfig) -> tuple[list, list]:
    """Documents, and the section units to judge: leaf sections, or the paragraphs of a leaf section
    that has several (an essay without an outline is one long section, and a copied paragraph is a
    small share of it: judged whole it would never be found).  Unit ids are ``section_id`` or
    ``section_id#NNN``; all units of one document share a group so they are never paired together."""
    texts = {e.doc_id: e.text for e in shard.essays}
    docs = [dedup_mod.DedupItem(id=e.doc_id, text=e.text, quality=len(e.text)) for e in shard.essays]
    parents = {(s.doc_id, s.parent_path) for s in sections if s.parent_path}
    units = []
    for s in sections:
        if (s.doc_id, s.path) in parents:
            continue  # judged through its children; avoids parent/child containment noise
        sid = section_id(s.doc_id, s.path)
        text = texts[s.doc_id][s.char_start : s.char_end]
        paragraphs = [p for p in text.split("\n") if p.strip()]
        if len(paragraphs) <= 1:
            units.append(dedup_mod.DedupItem(id=sid, text=text, quality=len(text), group=s.doc_id))
            continue
        for k, para in enumerate(paragraphs):
            units.append(dedup_mod.DedupItem(id=f"{sid}#{k:03d}", text=para, quality=len(para), group=s.doc_id))
    return docs, units


def unit_section(unit_id: str) -> str:
    return unit_id.split("#", 1)[0]


def sections_from_units(pairs: Sequence[Any]) -> list[Any]:
    """Map paragraph-unit pairs to section pairs, keeping the strongest unit pair per section pair."""
    best: dict[tuple[str, str], Any] = {}
    for p in pairs:
        a, b = unit_section(p.a_id), unit_section(p.b_id)
        cab, cba = p.containment_ab, p.containment_ba
        if b < a:
            a, b, cab, cba = b, a, cba, cab
        q = dedup_mod.DuplicatePair(p.level, a, b, p.jaccard, p.jaccard_exact, cab, cba, p.relation)
        rank = (q.relation == "near_duplicate", q.jaccard_exact, max(cab, cba))
        old = best.get((a, b))
        if old is None or rank > (old.relation == "near_duplicate", old.jaccard_exact, max(old.containment_ab, old.containment_ba)):
            best[(a, b)] = q
    return [best[k] for k in sorted(best)]


# -- 5. dedup: signatures per shard, then one corpus-level pass over band keys -----------
def signature_step(sectioned: Mapping[str, str], cfg: PipelineConfig, work: Path) -> dict[str, str]:
    """Signatures of a shard's documents and section units, written beside the shard's outputs."""
    key = step_key("signature", cfg, file_sha256(Path(sectioned["shard"])), file_sha256(Path(sectioned["sections"])))
    base = Path(work) / "signature" / key
    base.parent.mkdir(parents=True, exist_ok=True)
    shard = Shard.read(Path(sectioned["shard"]))
    docs, secs = dedup_items(shard, read_sections(sectioned), cfg)
    out = {}
    for level, items in (("document", docs), ("section", secs)):
        table = dedup_mod.compute_signatures(items, cfg.dedup)
        p = base.with_name(f"{key}.{level}.parquet")
        pq.write_table(table, p)
        out[level] = str(p)
    return out


def dedup_step(
    sectioned: Sequence[Mapping[str, str]], signature_paths: Sequence[Mapping[str, str]], cfg: PipelineConfig, work: Path
) -> Path:
    """Candidates from band keys, exact verification, clusters; one JSON result for the corpus."""
    digest = step_key("dedup", cfg, *(file_sha256(Path(p)) for sp in signature_paths for p in sorted(sp.values())))
    out = Path(work) / "dedup" / f"{digest}.json"
    start = time.perf_counter()
    doc_items: dict[str, Any] = {}
    unit_items: dict[str, Any] = {}
    section_quality: dict[str, int] = {}
    for part in sectioned:
        shard = Shard.read(Path(part["shard"]))
        sections = read_sections(part)
        docs, units = dedup_items(shard, sections, cfg)
        doc_items.update((d.id, d) for d in docs)
        unit_items.update((u.id, u) for u in units)
        for s in sections:
            section_quality[section_id(s.doc_id, s.path)] = s.char_end - s.char_start
    result: dict[str, Any] = {"pairs": [], "clusters": {}, "stats": {}}
    for level, items in (("document", doc_items), ("section", unit_items)):
        lo = dedup_mod.min_length(cfg.dedup, level)
        sig_tables = [pq.read_table(sp[level]) for sp in signature_paths]
        band_tables = [dedup_mod.band_keys(t, cfg.dedup, min_length=lo) for t in sig_tables]
        candidates = dedup_mod.candidate_pairs(band_tables, max_bucket=cfg.dedup.max_bucket)
        sig_by_id: dict[str, Any] = {}
        for t in sig_tables:
            sig_by_id.update(dedup_mod.signatures_by_id(t))
        verified = dedup_mod.verify_pairs(candidates, items, sig_by_id, cfg.dedup, level)
        skipped = sum(dedup_mod.skipped_count(t, lo) for t in sig_tables)
        if level == "section":
            verified = sections_from_units(verified)
            clusters = dedup_mod.assign_clusters(sorted(section_quality), verified, section_quality)
        else:
            clusters = dedup_mod.assign_clusters(sorted(items), verified, {k: v.quality for k, v in items.items()})
        result["pairs"].extend(asdict(p) for p in verified)
        result["clusters"].update({k: list(v) for k, v in clusters.items()})
        result["stats"][level] = {
            "items": len(items),
            "skipped_short": skipped,
            "candidates": len(candidates),
            "near_duplicate": sum(1 for p in verified if p.relation == "near_duplicate"),
            "reuse": sum(1 for p in verified if p.relation == "reuse"),
            "clusters_with_duplicates": len({c for c, d in clusters.values() if d is not None}),
        }
    result["stats"]["seconds"] = round(time.perf_counter() - start, 6)
    result["stats"]["lsh"] = dedup_mod.lsh_params(cfg.dedup)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, sort_keys=True), encoding="utf-8")
    return out


def prune_work(work: Path, keep: Iterable[Path]) -> int:
    """Delete step outputs under ``work`` that this build did not use (earlier inputs or configs).

    Outputs are content-addressed, so without pruning every changed input would leave its old
    shards behind forever.  A cached task result naming a pruned file is recomputed by the flow.
    """
    keep_set = {Path(p).resolve() for p in keep}
    removed = 0
    for p in Path(work).rglob("*"):
        if p.is_file() and p.resolve() not in keep_set:
            p.unlink(missing_ok=True)
            removed += 1
    return removed


# -- 6. write + validate -----------------------------------------------------------------
class ReleaseExists(Exception):
    """The version being written already exists with different content (releases are immutable)."""


def _drop_identical_files(
    essays: list[Essay], sections: list[SectionRow]
) -> tuple[list[Essay], list[SectionRow], list[QuarantineEntry]]:
    """Byte-identical files give identical doc_ids (ids derive from content): keep the copy with the
    smallest path and list every other copy in the quarantine, naming the kept one."""
    kept: dict[str, Essay] = {}
    for e in sorted(essays, key=lambda e: (e.source_path, e.essay_index)):
        kept.setdefault(e.doc_id, e)
    dropped: dict[str, QuarantineEntry] = {}
    for e in essays:
        keep = kept[e.doc_id]
        if keep.source_path != e.source_path and e.source_path not in dropped:
            dropped[e.source_path] = QuarantineEntry(
                path=e.source_path,
                reason="duplicate_file",
                detail=f"byte-identical to {keep.source_path}; its essays are released from there",
                sha256=e.source_sha256,
            )
    if not dropped:
        return essays, sections, []
    unique_sections: dict[tuple[str, str], SectionRow] = {}
    for s in sections:
        unique_sections.setdefault((s.doc_id, s.path), s)
    return list(kept.values()), list(unique_sections.values()), list(dropped.values())


def assemble_tables(sectioned: Sequence[Mapping[str, str]], dedup_path: Path, quarantine: Sequence[QuarantineEntry]):
    """All release tables in memory plus what the manifest needs from the shards."""
    from corpuspipe.release import writer as rel
    from corpuspipe.stages.dedup.minhash import DuplicatePair

    essays: list[Essay] = []
    sections: list[SectionRow] = []
    sources = []
    quarantined = list(quarantine)
    stages: dict[str, dict[str, float]] = {}
    removals: dict[str, int] = {}
    norm_counts: dict[str, int] = {}
    for part in sectioned:
        shard = Shard.read(Path(part["shard"]))
        section_file = _sections_file(part)
        essays.extend(shard.essays)
        sections.extend(SectionRow(**r) for r in section_file["rows"])
        sources.extend(shard.sources)
        quarantined.extend(shard.quarantine)
        timings = {**shard.stats.get("timings", {}), "section": section_file["timing"]}
        for stage, t in timings.items():
            agg = stages.setdefault(stage, {"seconds": 0.0, "bytes": 0})
            agg["seconds"] += t["seconds"]
            agg["bytes"] += t["bytes"]
        merge_counts(removals, shard.stats.get("removals_per_rule", {}))
        merge_counts(norm_counts, shard.stats.get("normalize_counts", {}))
    essays, sections, dup_files = _drop_identical_files(essays, sections)
    quarantined.extend(dup_files)
    dd = json.loads(Path(dedup_path).read_text(encoding="utf-8"))
    clusters = {k: (v[0], v[1]) for k, v in dd["clusters"].items()}
    pairs = [DuplicatePair(**p) for p in dd["pairs"]]
    section_counts: dict[str, int] = {}
    for s in sections:
        section_counts[s.doc_id] = section_counts.get(s.doc_id, 0) + 1
    texts = {e.doc_id: e.text for e in essays}
    tables = {
        "documents": rel.documents_table(essays, clusters, section_counts),
        "sections": rel.sections_table(sections, texts, clusters),
        "duplicates": rel.duplicates_table(pairs),
        "edits": rel.edits_table(essays),
        "quarantine": rel.quarantine_table(quarantined),
    }
    flags: dict[str, int] = {}
    for e in essays:
        for f in e.flags:
            flags[f] = flags.get(f, 0) + 1
    facts = {
        "sources": sorted(sources, key=lambda s: s.path),
        "quarantine": sorted(quarantined, key=lambda q: (q.path, q.line or 0, q.reason)),
        "stage_timings": stages,
        "removals_per_rule": dict(sorted(removals.items())),
        "normalize_counts": dict(sorted(norm_counts.items())),
        "dedup_stats": dd["stats"],
        "flags": dict(sorted(flags.items())),
    }
    return tables, facts


def write_release_step(
    sectioned: Sequence[Mapping[str, str]],
    dedup_path: Path,
    quarantine: Sequence[QuarantineEntry],
    cfg: PipelineConfig,
    out_root: Path,
    version: str | None,
    created_at: str,
    stage_seconds: Mapping[str, float],
) -> Path:
    """Write the release into a temporary directory, validate it, then rename it into place.

    A crash never leaves a visible partial release: readers only ever see complete
    ``<out_root>/<version>/`` directories.
    """
    from corpuspipe.release import card
    from corpuspipe.release import changelog
    from corpuspipe.release import report
    from corpuspipe.release import versioning
    from corpuspipe.release import writer as rel

    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    tables, facts = assemble_tables(sectioned, dedup_path, quarantine)

    digests = {name: versioning.table_digest(t) for name, t in tables.items()}
    schema_fp = versioning.schema_fingerprint(schemas.TABLES)
    inputs = rel.source_inputs(facts["sources"])
    # the same digest versioning recomputes from a stored manifest, so an unchanged rebuild is bump "none"
    metadata_digest = versioning.metadata_digest(cfg.model_dump(mode="json"), __version__, inputs)
    previous_dir = versioning.latest_release(out_root)
    previous = versioning.read_manifest(previous_dir) if previous_dir else None
    version, bump = versioning.decide_version(previous, schema_fp, digests, metadata_digest, requested=version)
    final = out_root / version
    if final.exists():
        existing = versioning.read_manifest(final)
        if existing.get("table_digests") == digests and existing.get("schema_fingerprint") == schema_fp:
            return final  # same content already released under this version
        raise ReleaseExists(f"{final}: version {version} already exists with different content")

    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=out_root))
    os.chmod(tmp, 0o755)  # mkdtemp makes 0700; a release is for everyone to read
    try:
        outputs = rel.write_tables(tmp, tables, cfg, version)
        stages = {}
        for stage, t in facts["stage_timings"].items():
            mb = t["bytes"] / 1e6
            stages[stage] = {"seconds": round(t["seconds"], 3), "input_mb": round(mb, 3),
                             "mb_per_s": round(mb / t["seconds"], 2) if t["seconds"] else None}
        for stage, sec in stage_seconds.items():
            stages.setdefault(stage, {})["wall_seconds"] = round(sec, 3)
        docs, secs = tables["documents"], tables["sections"]
        levels: dict[str, int] = {}
        for lv in secs["level"].to_pylist():
            levels[str(lv)] = levels.get(str(lv), 0) + 1
        stage_counts = {
            "ingest": {"files": len(facts["sources"]), "essays": docs.num_rows, "quarantined": len(facts["quarantine"])},
            "watermark": {"chars_removed": sum(facts["removals_per_rule"].values()), "rules_hit": len(facts["removals_per_rule"])},
            "normalize": {"edits": sum(1 for _ in tables["edits"]["stage"].to_pylist() if "normalize" in _), **facts["flags"]},
            "section": {"sections": secs.num_rows, "per_level": dict(sorted(levels.items()))},
            "dedup": {k: v for k, v in facts["dedup_stats"].items() if k in ("document", "section")},
        }
        for stage, counts in stage_counts.items():
            stages.setdefault(stage, {})["counts"] = counts
        dstats = facts["dedup_stats"]
        parts = rel.ManifestParts(
            created_at=created_at,
            inputs=inputs,
            stages=stages,
            quarantine=facts["quarantine"],
            extra={
                "schema_fingerprint": schema_fp,
                "table_digests": digests,
                "metadata_digest": metadata_digest,
                "version_bump": bump,
                "previous_version": previous["version"] if previous else None,
                "dedup": {**dstats.get("lsh", {}), "document": dstats.get("document"), "section": dstats.get("section")},
                "removals_per_rule": facts["removals_per_rule"],
                "normalize": facts["normalize_counts"],
                "redactions": {k: v for k, v in facts["normalize_counts"].items() if k.startswith("pii")},
                "flags": facts["flags"],
                "counts": {name: t.num_rows for name, t in tables.items()},
            },
        )
        manifest = rel.build_manifest(cfg, version, outputs, parts)
        rel.write_json(tmp / rel.MANIFEST, manifest)
        rel.validate_release(tmp)
        # The card, Croissant, report and changelog are part of the release when it first becomes visible.
        card.write_card(tmp)
        card.write_croissant(tmp)
        report.write_report(tmp)
        if previous_dir is not None:
            changelog.write_changelog(previous_dir, tmp)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    versioning.register_release(out_root, version, manifest)
    return final
