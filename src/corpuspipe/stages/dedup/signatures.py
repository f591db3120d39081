"""Per shard: the signature file every later dedup phase reads (written by the stage's ``collect``).

One Parquet file per shard and level, rows sorted by unit id: the id, the entity it judges (a
document, or a leaf section for its paragraph units), its group (pairs inside one document are
never reported), the 64-bit hashes of entity and group (the order key of every later phase), what
the representative rule needs (flags, script, quality), the unit's stripped length, its MinHash
signature and its text.  Sorting by id keeps an entity's units together: its own unit (id ==
entity) first, then its paragraphs (``<id>#NNN``), which later phases read as one run of rows.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from corpuspipe.stages.dedup.config import DedupConfig
from corpuspipe.core.io import atomic_path
from corpuspipe.stages.dedup.minhash import LEVELS, DedupItem, compute_signatures, lsh_params, min_length
from corpuspipe.stages.dedup.shingles import paragraph_fingerprints

# Verification reads only the row groups holding candidates: 512 rows of ~2k-char documents is
# ~3 MB of text, small enough that a few candidates do not decompress a whole shard.
SIG_ROW_GROUP = 512
PARQUET = dict(compression="zstd", compression_level=3, use_dictionary=False, write_statistics=False)
# Signature files (written once per shard in pass 1, read by the reduce): lz4.  On a 14.5 MB slice
# of the 100 MB crawl zstd level 3 cost 0.73 CPU s for 21.6 MB of files, level 1 0.46 s for
# 26.2 MB; the slice's six files again (CPU s, best of 5, write / read all / size): zstd 1
# 0.268 / 0.166 / 26.1 MB, lz4 0.186 / 0.107 / 34.2 MB.  (The never-banded units' all-0xFFFFFFFF
# signatures are what compresses; the banded ones' random words do not.)
SIG_PARQUET = {**{k: v for k, v in PARQUET.items() if k != "compression_level"}, "compression": "lz4"}


def sig_file_schema(num_perm: int) -> pa.Schema:
    """One shard's signatures and what verification and the representative rule need."""
    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("entity", pa.string(), nullable=False),  # what pairs/clusters are reported for
            pa.field("group", pa.string()),  # pairs within one group are never reported
            pa.field("eh", pa.uint64(), nullable=False),  # xxh3 of entity: the order key
            pa.field("gh", pa.uint64(), nullable=False),  # xxh3 of group (of entity when no group)
            pa.field("flags", pa.int16(), nullable=False),
            pa.field("script_rank", pa.int8(), nullable=False),  # 0 simplified, 1 other
            pa.field("quality", pa.int32(), nullable=False),  # length of the judged text
            pa.field("length", pa.int32(), nullable=False),  # stripped chars of this unit
            pa.field("n_shingles", pa.int32(), nullable=False),
            pa.field("signature", pa.list_(pa.uint32(), num_perm), nullable=False),
            # documents: fingerprints of their long paragraphs (shingles.paragraph_fingerprints),
            # extra bucket keys that make a page holding a copied essay its candidate
            pa.field("fingerprints", pa.list_(pa.uint64()), nullable=False),
            pa.field("text", pa.string(), nullable=False),
        ]
    )


def h64(strings: Sequence[str]) -> np.ndarray:
    """xxh3-64 of each string's UTF-8: the order key of entities and groups."""
    return np.fromiter((xxhash.xxh3_64_intdigest(s.encode("utf-8")) for s in strings), np.uint64, len(strings))


def write_parquet(table: pa.Table, path: Path, row_group_size: int | None = None, options: dict = PARQUET) -> None:
    """Atomic, deterministic Parquet write (fixed options, no timestamps); a failed write leaves nothing."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, row_group_size=row_group_size, **options)


def write_signatures(items: Sequence[DedupItem], level: str, cfg: DedupConfig, path: Path) -> dict:
    """One shard's items -> one Parquet file (rows sorted by id); returns small stats, among them
    ``banded`` (units long enough to be banded) and ``band_rows`` (what the reduce sizes its
    partitions by, without opening the files)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    start, start_cpu = time.perf_counter(), time.process_time()
    items = sorted(items, key=lambda it: it.id)
    lo = min_length(cfg, level)
    sig = compute_signatures(items, cfg, min_len=lo)
    entities = [it.key for it in items]
    groups = [it.group for it in items]
    lengths = sig.column("length").to_numpy()
    nsh = sig.column("n_shingles").to_numpy()
    banded = (lengths >= lo) & (nsh > 0)
    if level == "document":
        fps = paragraph_fingerprints([it.text if ok else "" for it, ok in zip(items, banded.tolist())],
                                     cfg.min_section_chars, cfg.seed)
    else:
        fps = [np.empty(0, np.uint64)] * len(items)
    n_fp = sum(f.size for f in fps)
    offsets = np.zeros(len(items) + 1, np.int32)
    np.cumsum([f.size for f in fps], out=offsets[1:])
    fp_col = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()),
                                      pa.array(np.concatenate(fps) if n_fp else np.empty(0, np.uint64), pa.uint64()))
    table = pa.Table.from_arrays(
        [
            sig.column("id"),
            pa.array(entities, pa.string()),
            pa.array(groups, pa.string()),
            pa.array(h64(entities), pa.uint64()),
            pa.array(h64([g if g is not None else e for g, e in zip(groups, entities)]), pa.uint64()),
            pa.array([it.flags for it in items], pa.int16()),
            pa.array([0 if it.script == "simplified" else 1 for it in items], pa.int8()),
            pa.array([it.quality for it in items], pa.int32()),
            sig.column("length"),
            sig.column("n_shingles"),
            sig.column("signature"),
            fp_col,
            pa.array([it.text for it in items], pa.string()),
        ],
        schema=sig_file_schema(cfg.num_perm),
    )
    write_parquet(table, path, row_group_size=SIG_ROW_GROUP, options=SIG_PARQUET)
    p = lsh_params(cfg)
    return {
        "items": len(items),
        "skipped_short": int(len(items) - banded.sum()),
        "banded": int(banded.sum()),
        # band rows the reduce will write for this file: its partitions are sized by them
        "band_rows": int(banded.sum()) * (p["bands"] + p["reuse_bands"]) + int(n_fp),
        "seconds": round(time.perf_counter() - start, 6),
        "cpu_seconds": round(time.process_time() - start_cpu, 6),
    }
