"""Near-duplicate stage API over the in-memory MinHash functions (to be replaced by the on-disk version).

``items_for_document`` -> ``write_signatures`` (per shard) -> ``find_duplicates`` (once per level).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from corpuspipe.core.config import DedupConfig
from corpuspipe.core.records import SectionRow, section_id
from corpuspipe.stages.dedup import minhash

DedupItem = minhash.DedupItem


@dataclass(frozen=True)
class DedupOutcome:
    pairs_path: Path
    clusters_path: Path
    stats: dict


def items_for_document(doc_id: str, text: str, sections: Sequence[SectionRow], *, flags: Sequence[str], script: str,
                       cfg: DedupConfig) -> tuple[DedupItem, list[DedupItem]]:
    """The document, and the section units to judge: leaf sections, or the paragraphs of a leaf
    section that has several (``section_id#NNN``); all units of one document share a group."""
    doc = DedupItem(id=doc_id, text=text, quality=len(text))
    parents = {s.parent_path for s in sections if s.parent_path}
    units = []
    for s in sections:
        if s.path in parents:
            continue
        sid = section_id(doc_id, s.path)
        body = text[s.char_start:s.char_end]
        paragraphs = [p for p in body.split("\n") if p.strip()]
        if len(paragraphs) <= 1:
            units.append(DedupItem(id=sid, text=body, quality=s.char_end - s.char_start, group=doc_id))
            continue
        for k, para in enumerate(paragraphs):
            units.append(DedupItem(id=f"{sid}#{k:03d}", text=para, quality=s.char_end - s.char_start, group=doc_id))
    return doc, units


def write_signatures(items: Sequence[DedupItem], level: str, cfg: DedupConfig, path: Path) -> dict:
    table = minhash.compute_signatures(items, cfg)
    table = table.append_column("text", pa.array([it.text for it in items], pa.large_string()))
    table = table.append_column("quality", pa.array([it.quality for it in items], pa.int64()))
    table = table.append_column("group", pa.array([it.group for it in items], pa.string()))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd", compression_level=1)
    tmp.replace(path)
    return {"items": len(items)}


def _unit_section(unit_id: str) -> str:
    return unit_id.split("#", 1)[0]


def _sections_from_units(pairs: Sequence[Any]) -> list[Any]:
    best: dict[tuple[str, str], Any] = {}
    for p in pairs:
        a, b = _unit_section(p.a_id), _unit_section(p.b_id)
        cab, cba = p.containment_ab, p.containment_ba
        if b < a:
            a, b, cab, cba = b, a, cba, cab
        q = minhash.DuplicatePair(p.level, a, b, p.jaccard, p.jaccard_exact, cab, cba, p.relation)
        rank = (q.relation == "near_duplicate", q.jaccard_exact, max(cab, cba))
        old = best.get((a, b))
        if old is None or rank > (old.relation == "near_duplicate", old.jaccard_exact,
                                  max(old.containment_ab, old.containment_ba)):
            best[(a, b)] = q
    return [best[k] for k in sorted(best)]


CLUSTERS = pa.schema([("id", pa.string()), ("cluster_id", pa.string()), ("duplicate_of", pa.string()),
                      ("cluster_size", pa.int32())])


def find_duplicates(sig_paths: Sequence[Path], level: str, cfg: DedupConfig, work: Path) -> DedupOutcome:
    sig_tables = [pq.read_table(p) for p in sig_paths]
    items: dict[str, DedupItem] = {}
    for t in sig_tables:
        for i, txt, q, g in zip(t["id"].to_pylist(), t["text"].to_pylist(), t["quality"].to_pylist(),
                                t["group"].to_pylist()):
            items[i] = DedupItem(id=i, text=txt, quality=q, group=g)
    lo = minhash.min_length(cfg, level)
    band_tables = [minhash.band_keys(t, cfg, min_length=lo) for t in sig_tables]
    candidates = minhash.candidate_pairs(band_tables, max_bucket=cfg.max_bucket)
    sig_by_id: dict[str, Any] = {}
    for t in sig_tables:
        sig_by_id.update(minhash.signatures_by_id(t))
    verified = minhash.verify_pairs(candidates, items, sig_by_id, cfg, level)
    if level == "section":
        verified = _sections_from_units(verified)
        quality = {_unit_section(i): it.quality for i, it in items.items()}
    else:
        quality = {i: it.quality for i, it in items.items()}
    clusters = minhash.assign_clusters(sorted(quality), verified, quality)
    sizes: dict[str, int] = {}
    for cid, _ in clusters.values():
        sizes[cid] = sizes.get(cid, 0) + 1
    rows = sorted((i, c, d, sizes[c]) for i, (c, d) in clusters.items() if sizes[c] > 1)
    work.mkdir(parents=True, exist_ok=True)
    pairs_path, clusters_path = work / "pairs.parquet", work / "clusters.parquet"
    pq.write_table(minhash.pairs_table(verified), pairs_path)
    pq.write_table(pa.table([pa.array([r[k] for r in rows], CLUSTERS.field(k).type) for k in range(4)],
                            schema=CLUSTERS), clusters_path)
    stats = {
        "items": len(items),
        "skipped_short": sum(minhash.skipped_count(t, lo) for t in sig_tables),
        "candidates": len(candidates),
        "near_duplicate": sum(1 for p in verified if p.relation == "near_duplicate"),
        "reuse": sum(1 for p in verified if p.relation == "reuse"),
        "clusters_with_duplicates": len({c for c, d in clusters.values() if d is not None}),
    }
    return DedupOutcome(pairs_path, clusters_path, stats)
