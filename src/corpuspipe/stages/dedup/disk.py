"""Near-duplicate detection over signature files, in bounded memory, with rows linear in cluster size.

Phases of ``find_duplicates`` (one call per level, after every shard ran ``write_signatures``):

1. **bands** — each signature file is read in batches (never its text) and its band keys are
   appended to one file per partition (``key mod P``) under ``work/<level>.bands/``.  P is chosen so
   one partition holds about ``dedup.partition_rows`` band rows (24 bytes each).
2. **candidates** — one partition at a time: its rows from every file are sorted by key; a bucket
   of up to ``max_bucket`` entities gives all its pairs, a larger one a star to its smallest member
   plus a chain (linear).  Pairs inside one group (document) are dropped.  Only the candidate pairs
   (linear in the duplicates found) outlive a partition.
3. **verify** — candidates are verified exactly (Jaccard and both containments of the shingle
   sets); estimates never decide.  An entity's **own** unit (id == entity: a document, a whole
   leaf section) gives the pair's scores and its relation (near_duplicate / reuse); the best
   paragraph pair of two sections (by containment, then Jaccard; paragraphs shorter than
   ``min_section_chars`` skipped, a one-paragraph section is its own paragraph) is reported beside
   them and makes the pair ``paragraph_reuse`` when only it passes -- so it is computed while
   verifying only when the whole units fail, and for a pair that is already near_duplicate/reuse
   only if its row is written (phase 5; most pairs of a large family never are), with one side's
   paragraphs sorted once across its pairs (the first side while verifying, the representative
   while writing).  Sections, verify CPU s: 100 MB crawl 14.6 -> 5.5-7.7 (byte-identical output),
   1 GB 364 -> 267 (plus 40 s in phase 5 for the 255k written rows' paragraph pairs).  The
   intersections and the best paragraph pair are compiled loops (``kernels``): at 100 MB the
   section reduce's verify + write went from 11.2 to 6.1 CPU s, its whole from 39 to 24, same bytes.
   Paragraph units find
   candidates; they never make two sections near-duplicates (before, a chapter and one of its
   subsections scored Jaccard 1.0).  Star
   edges first; a remaining candidate whose two sides are already connected by verified
   near-duplicate pairs waits (it cannot change the components) and is scored only if the
   representative split in phase 4 needs it.  A 500-copy family: 42,430 candidates, 8,942 exact
   comparisons, same clusters.  Before any score, every unit a score may need (the candidate
   entities' whole units and long paragraphs) is shingled **once**, file by file in one pass, into a
   spill file under ``work`` (uint64 shingles, plus the whole units' signatures), many units per
   numpy pass (``shingles.shingle_batch``: section units 3.8 -> ~50 MB/s per CPU second, same
   bytes); scores read their units back with ``os.pread`` (page cache, not process memory).  Before, pairs were grouped by
   their two files and each block re-read its files' row groups through a 128 MB shingle LRU: the
   1 GB crawl's section reduce ran > 27 min without finishing.  Storing shingles in the signature
   files instead would cost 8 bytes per character of *every* unit on disk (~2x the text, and
   incompressible); the spill holds only the candidates' (100 MB crawl: 111 MB documents, 210 MB
   sections).
4. **cluster** — no chaining: connected components of verified (whole-text) near-duplicate pairs are only
   *candidate* clusters.  In each, the best-ranked entity is the representative and every other
   member is verified against it; members that are near-duplicates of it join its cluster, the
   rest split into components of their own near-duplicate pairs and repeat (deterministic).
   **Representative rank**: fewest flags, then a Simplified original over a converted copy
   (``script == 'simplified'`` first), then the longer text, then the smallest id.
5. **write** — rows: every member against its representative (near_duplicate), plus the other
   verified pairs (reuse, near-duplicates across clusters first, then paragraph_reuse; each in
   (a_id, b_id) order) while one of the two sides still has ``extra_pairs_per_item`` budget.  A family of N copies writes at most
   ``N - 1 + N`` rows (500 copies: <= 999; before, buckets <= max_bucket wrote every pair:
   100 copies -> 4,950 rows).  Pairs between two non-representative members of one cluster are not
   written; they are recoverable.

**All pairs of a cluster** (e.g. to audit one): self-join the members on ``cluster_id`` and
re-verify, e.g. in DuckDB::

    SELECT a.id AS a_id, b.id AS b_id FROM 'clusters.parquet' a JOIN 'clusters.parquet' b
      ON a.cluster_id = b.cluster_id AND a.id < b.id

then score each pair with ``verify_texts`` (or ``compare_sets`` of ``shingle_hashes``) on the
two texts.  In a release, ``documents.parquet`` / ``sections.parquet`` carry ``cluster_id``.

**Determinism**: nothing depends on how items are split into files or on file order: ids are
ordered by a 64-bit xxh3 of the id string (a collision between two of 10^6 ids has probability
~3e-8 and is detected: it raises), candidate pairs are sets, representatives come from the rank,
and outputs are sorted by id strings.  1 shard vs 5 shards give byte-identical Parquet (tested).

**Memory**: one signature batch (phase 1), one partition (phase 2), one 512-row group's text and
one ``shingle_batch`` of <= 200k chars (the spill), the two units of the pair being scored (phase
3), and, as numpy columns, the candidate pairs (16 bytes each), the scored pairs (``_Verifier``:
key, six floats, a relation code: 57 bytes each) and the entities in them (``_Entities``, ~60
bytes per entity) (phases 3-5): the corpus's texts and shingles are never held at once.  The
near-duplicate graph of phase 4 is edge arrays (components by numpy hooking and pointer jumping)
and phase 5 gathers its rows as Arrow/numpy columns.  Before, the candidates as lists/sets of
tuples and the scores as a dict of tuples (~100 and ~400 bytes per pair) took the 1 GB crawl's
section reduce past 1.47 GB in phase 3-4; then adjacency dicts of sets and a ``DuplicatePair`` per
row set its peak (1.53 GB) in phases 4-5; then 1.06-1.09 GB, set in phase 2, where every band's
copy of a candidate pair was kept until the end (~10x the 1.59M unique pairs) and every matched
unit's name until phase 3.  Now candidates are merged as partitions come (``_PairSet``) and
``_load_entities`` keeps only whole units' names and long paragraphs: **620 MB** (the pool worker's
allocators; phases' peaks: bands 348, candidates 367, shingle 432, verify 620), same bytes.

**Measured** (``bench/scale_dedup.py``, documents stitched from the gov reports with edited and
Traditional copies and one 500-copy family; per CPU second on the shared 2-core machine):
50 MB / 200 MB: peak RSS of ``find_duplicates`` 359 / 374 MB (152 MB of it is imports;
partition_rows=500k gives 2 / 5 partitions), of signature writing 316 / 332 MB; MB/s per core
signatures 12-13, bands 67-580, candidates 34-35, verify 14, cluster 65-96; the family writes
499 rows; cluster-pair P/R 1.000/0.998 and 1.000/0.992.  On the 20 MB bench corpus (make_corpus)
cluster F1 falls from 1.000 (connected components) to 0.976: copies of one base with 8% edits are
J~0.25 to each other and no longer chain through their original when a copy is the representative.
"""

from __future__ import annotations

import os
import resource
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from corpuspipe.core import schemas
from corpuspipe.core.config import DedupConfig
from corpuspipe.core.io import atomic_path
from corpuspipe.stages.dedup import kernels
from corpuspipe.stages.dedup.minhash import (
    LEVELS,
    DedupItem,
    DuplicatePair,
    band_matrix,
    compare_sets,
    compute_signatures,
    fold_band,
    lsh_params,
    min_length,
    relation,
    signature_matrix,
)
from corpuspipe.stages.dedup.shingles import BATCH_CHARS, mix64, shingle_batches

# Verification reads only the row groups holding candidates: 512 rows of ~2k-char documents is
# ~3 MB of text, small enough that a few candidates do not decompress a whole shard.
_SIG_ROW_GROUP = 512
_EMPTY_SIG = np.uint32(0xFFFFFFFF)
_READ_BATCH = 8192
_RELATIONS = ("near_duplicate", "reuse", "paragraph_reuse")  # codes of the verifier's rel column
_NEAR = 0
_FLOAT_COLS = ("est", "j", "cab", "cba", "pj", "pc")
_LAZY = "lazy"  # pj/pc not computed yet: the whole texts decided the relation (_Verifier._score)
# One band row as written by phase 1: every file appends its rows of partition p to ``<p>.bands``,
# so phase 2 reads one file per partition.  Before, each partition opened every file's arrays
# (files x partitions np.load calls: 307 x 81 x 4 at the 1 GB crawl's section level).
_BAND_ROW = np.dtype([("key", "<u8"), ("eh", "<u8"), ("gh", "<u8")])  # signature rows per read in the band phase: 8k x 128 x 4 B = 4 MB
_PAIR_FLUSH = 1 << 20  # pending candidate rows (16 B each) before _PairSet merges them
_PARQUET = dict(compression="zstd", compression_level=3, use_dictionary=False, write_statistics=False)
# Signature files (written once per shard in pass 1, read by the reduce): zstd 1.  Their signatures
# are random 32-bit words that no level compresses; on a 14.5 MB slice of the 100 MB crawl level 3
# cost 0.73 CPU s for 21.6 MB of files, level 1 0.46 s for 26.2 MB.
_SIG_PARQUET = {**_PARQUET, "compression_level": 1}


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
            pa.field("text", pa.string(), nullable=False),
        ]
    )


CLUSTERS = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("cluster_id", pa.string(), nullable=False),
        pa.field("duplicate_of", pa.string()),
        pa.field("cluster_size", pa.int32(), nullable=False),
    ]
)


@dataclass(frozen=True)
class DedupOutcome:
    pairs_path: Path  # schemas.DUPLICATES rows of this level, sorted by (a_id, b_id)
    clusters_path: Path  # (id, cluster_id, duplicate_of, cluster_size), members of clusters >= 2, by id
    stats: dict


class _Phases:
    """Wall and CPU seconds of each phase of ``find_duplicates``, and the process's peak RSS after
    it (which phase sets the reduce's peak; CPU seconds are what MB/s per core should use on a
    busy machine)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.peak: dict[str, int] = {}
        self._t, self._c = time.perf_counter(), time.process_time()

    def done(self, name: str) -> None:
        t, c = time.perf_counter(), time.process_time()
        self.seconds[name], self.cpu[name] = t - self._t, c - self._c
        self.peak[name] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        self._t, self._c = t, c

    def stats(self) -> dict:
        return {"seconds": {k: round(v, 6) for k, v in self.seconds.items()},
                "cpu_seconds": {k: round(v, 6) for k, v in self.cpu.items()},
                "peak_rss_mb_after": self.peak}


def _h64(strings: Sequence[str]) -> np.ndarray:
    return np.fromiter((xxhash.xxh3_64_intdigest(s.encode("utf-8")) for s in strings), np.uint64, len(strings))


def _write(table: pa.Table, path: Path, row_group_size: int | None = None, options: dict = _PARQUET) -> None:
    """Atomic, deterministic Parquet write (fixed options, no timestamps)."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, row_group_size=row_group_size, **options)


# -- per shard -------------------------------------------------------------------------------


def write_signatures(items: Sequence[DedupItem], level: str, cfg: DedupConfig, path: Path) -> dict:
    """One shard's items -> one Parquet file (rows sorted by id); returns small stats."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    start, start_cpu = time.perf_counter(), time.process_time()
    items = sorted(items, key=lambda it: it.id)
    sig = compute_signatures(items, cfg, min_len=min_length(cfg, level))
    entities = [it.key for it in items]
    groups = [it.group for it in items]
    table = pa.Table.from_arrays(
        [
            sig.column("id"),
            pa.array(entities, pa.string()),
            pa.array(groups, pa.string()),
            pa.array(_h64(entities), pa.uint64()),
            pa.array(_h64([g if g is not None else e for g, e in zip(groups, entities)]), pa.uint64()),
            pa.array([it.flags for it in items], pa.int16()),
            pa.array([0 if it.script == "simplified" else 1 for it in items], pa.int8()),
            pa.array([it.quality for it in items], pa.int32()),
            sig.column("length"),
            sig.column("n_shingles"),
            sig.column("signature"),
            pa.array([it.text for it in items], pa.string()),
        ],
        schema=sig_file_schema(cfg.num_perm),
    )
    _write(table, path, row_group_size=_SIG_ROW_GROUP, options=_SIG_PARQUET)
    lo = min_length(cfg, level)
    lengths = sig.column("length").to_numpy()
    nsh = sig.column("n_shingles").to_numpy()
    return {
        "items": len(items),
        "bytes": sum(len(it.text.encode("utf-8")) for it in items),
        "skipped_short": int(((lengths < lo) | (nsh == 0)).sum()),
        "seconds": round(time.perf_counter() - start, 6),
        "cpu_seconds": round(time.process_time() - start_cpu, 6),
    }


# -- phase 1: bands --------------------------------------------------------------------------


def _partition_count(sig_paths: Sequence[Path], cfg: DedupConfig, lo: int) -> int:
    """Partitions of about ``partition_rows`` band rows, counting only the units that are banded:
    counting every row, the 100 MB crawl's section partitions held 43 % of the budget (57 % of
    its units are paragraphs shorter than ``min_section_chars``)."""
    p = lsh_params(cfg)
    units = 0
    for f in sig_paths:
        t = pq.read_table(f, columns=["length", "n_shingles"])
        units += int(((t.column("n_shingles").to_numpy() > 0) & (t.column("length").to_numpy() >= lo)).sum())
    rows = units * (p["bands"] + p["reuse_bands"])
    return max(1, -(-rows // max(1, cfg.partition_rows)))


def _write_bands(fi: int, path: Path, cfg: DedupConfig, lo: int, parts: int, out: Path) -> dict:
    """Append one signature file's band rows to the partition files (``<p>.bands``, ``_BAND_ROW``),
    each partition's rows in the file's order.  The rows are grouped by partition with one compiled
    counting sort (``kernels.scatter_band_rows``): repeating each entity's hashes per band, a stable
    argsort by partition and three gathers into a structured array moved ~24 bytes a band row 6
    times (100 MB crawl, sections: 14M rows, ~5.6 CPU s for the phase)."""
    keys, ehs, ghs = [], [], []
    items = skipped = 0
    pf = pq.ParquetFile(path)
    for batch in pf.iter_batches(batch_size=_READ_BATCH, columns=["eh", "gh", "length", "n_shingles", "signature"]):
        n = batch.num_rows
        items += n
        ok = (batch.column("n_shingles").to_numpy() > 0) & (batch.column("length").to_numpy() >= lo)
        skipped += int(n - ok.sum())
        idx = np.flatnonzero(ok)
        if not idx.size:
            continue
        width = batch.schema.field("signature").type.list_size
        mat = batch.column("signature").flatten().to_numpy(zero_copy_only=False).reshape(n, width)[idx]
        keys.append(fold_band(band_matrix(mat, cfg)))  # (m, bands)
        ehs.append(batch.column("eh").to_numpy()[idx])
        ghs.append(batch.column("gh").to_numpy()[idx])
    if not keys:
        return {"items": items, "skipped_short": skipped, "band_rows": 0}
    key = np.ascontiguousarray(np.concatenate(keys))
    eh = np.ascontiguousarray(np.concatenate(ehs), dtype=np.uint64)
    gh = np.ascontiguousarray(np.concatenate(ghs), dtype=np.uint64)
    rows = np.empty((key.size, 3), np.uint64)  # _BAND_ROW: key, eh, gh
    offsets = np.empty(parts + 1, np.int64)
    kernels.scatter_band_rows(key, eh, gh, parts, rows, offsets)
    offsets = offsets.tolist()
    for p in range(parts):
        if offsets[p] < offsets[p + 1]:
            with open(out / f"{p:05d}.bands", "ab") as f:
                f.write(rows[offsets[p] : offsets[p + 1]].tobytes())
    return {"items": items, "skipped_short": skipped, "band_rows": int(key.size)}


# -- phase 2: candidates ---------------------------------------------------------------------


def _bucket_pairs(starts: np.ndarray, sizes: np.ndarray, max_bucket: int) -> tuple[np.ndarray, np.ndarray]:
    """(star, other) row-index pairs of buckets (``starts``/``sizes`` into a sorted partition).

    star: every member with the first (smallest); other: the remaining pairs of a bucket of at most
    ``max_bucket`` members, else a chain of neighbours (linear).  Vectorized per bucket size (at
    most ``max_bucket`` sizes): a Python loop per bucket took 10 of the 18 CPU s of the section
    candidates on a third of the 100 MB crawl (19k buckets).
    """
    stars, others = [np.empty((0, 2), np.int64)], [np.empty((0, 2), np.int64)]
    for z in np.unique(sizes).tolist():
        s = starts[sizes == z].astype(np.int64)
        if z <= max_bucket:
            rest = np.arange(1, z)
            stars.append((s[:, None, None] + np.stack((np.zeros(z - 1, np.int64), rest), axis=1)[None]).reshape(-1, 2))
            i, j = np.triu_indices(z - 1, 1)
            if i.size:
                others.append((s[:, None, None] + np.stack((rest[i], rest[j]), axis=1)[None]).reshape(-1, 2))
        else:
            for b in s.tolist():  # a few boilerplate buckets
                rest = np.arange(b + 1, b + z)
                stars.append(np.stack((np.full(z - 1, b), rest), axis=1))
                others.append(np.stack((rest[:-1], rest[1:]), axis=1))
    return np.concatenate(stars), np.concatenate(others)


def _unique_pairs(p: np.ndarray) -> np.ndarray:
    if not p.size:
        return p.reshape(0, 2)
    order = np.lexsort((p[:, 1], p[:, 0]))
    p = p[order]
    keep = np.ones(len(p), bool)
    keep[1:] = (p[1:, 0] != p[:-1, 0]) | (p[1:, 1] != p[:-1, 1])
    return p[keep]


# Buckets of at least this many members are remembered by ``_SeenBuckets``; smaller ones are always
# expanded (at most 21 pairs each, however often they recur).  Remembering every multi-member bucket
# held the 1 GB crawl's 13.2M section buckets (~99 % of them 2-3 members, nearly all distinct): the
# reduce's candidates phase went from 393 MB and 37 CPU s to 1,111 MB and 76 s, and the process
# tree to 1,543 MB.  That crawl has ~7,900 buckets of 8 or more members.
_SEEN_MIN_MEMBERS = 8


class _SeenBuckets:
    """128-bit fingerprints of the large bucket member sets already expanded into pairs (one level).

    Exact copies share every band, so one family's member set comes back in up to ``bands``
    buckets, each expanded again into the same pairs: the single 200 MB file of issue 11 (each
    report ~92 times, under ``max_bucket``) made ~60M pair rows per partition, 275 CPU s and a
    1.84 GB peak, for 1.8M unique candidates.  A bucket whose member set was seen is skipped: its
    pairs (star and other alike: both follow from the sorted members) are already in the set.
    Only sets of ``_SEEN_MIN_MEMBERS`` or more are kept: each stands for at least 28 pairs of the
    candidate set, so this memory is a small fraction of the candidates' own."""

    def __init__(self) -> None:
        self.f1 = np.empty(0, np.uint64)  # sorted
        self.f2 = np.empty(0, np.uint64)  # beside f1

    def first_seen(self, f1: np.ndarray, f2: np.ndarray) -> np.ndarray:
        """Mask of the fingerprints met for the first time (in this call too); remembers them."""
        n = f1.size
        if not n:
            return np.zeros(0, bool)
        order = np.lexsort((f2, f1))
        a, b = f1[order], f2[order]
        first = np.ones(n, bool)
        first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
        lo = np.searchsorted(self.f1, a, side="left")
        hi = np.searchsorted(self.f1, a, side="right")
        seen = np.zeros(n, bool)
        one = np.flatnonzero(hi - lo == 1)
        seen[one] = self.f2[lo[one]] == b[one]
        for i in np.flatnonzero(hi - lo > 1).tolist():  # equal first halves: ~never
            seen[i] = bool((self.f2[lo[i]:hi[i]] == b[i]).any())
        new = first & ~seen
        if new.any():
            f1_all = np.concatenate((self.f1, a[new]))
            merged = np.argsort(f1_all, kind="stable")  # two sorted runs: a linear merge
            self.f1, self.f2 = f1_all[merged], np.concatenate((self.f2, b[new]))[merged]
        out = np.empty(n, bool)
        out[order] = new
        return out


def _bucket_fingerprints(eh: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two independent 64-bit sums over each bucket's (distinct) members: its member set's key."""
    with np.errstate(over="ignore"):
        f1 = np.add.reduceat(mix64(eh, seed=101), starts) ^ mix64(sizes.astype(np.uint64), seed=103)
        f2 = np.add.reduceat(mix64(eh, seed=202), starts) ^ mix64(sizes.astype(np.uint64), seed=203)
    return f1, f2


def _partition_candidates(band_dir: Path, part: int, max_bucket: int,
                          seen: _SeenBuckets | None = None) -> tuple[np.ndarray, np.ndarray]:
    path = band_dir / f"{part:05d}.bands"
    if not path.exists():
        return np.empty((0, 2), np.uint64), np.empty((0, 2), np.uint64)
    rows = np.fromfile(path, np.uint64).reshape(-1, 3)  # _BAND_ROW: key, eh, gh
    # by key, then entity, in place (a compiled sort: two stable numpy argsorts were ~0.46 s per
    # 10^6 rows, all of this phase); rows equal in both are one entity, kept once just below
    kernels.sort_band_rows(rows)
    key, eh, gh = rows[:, 0].copy(), rows[:, 1].copy(), rows[:, 2].copy()  # contiguous: strided
    del rows  # gathers and compares ran the partition 2x slower (measured)
    # one row per (bucket, entity): several paragraphs of one section may share a bucket
    keep = np.ones(key.size, bool)
    keep[1:] = (key[1:] != key[:-1]) | (eh[1:] != eh[:-1])
    key, eh, gh = key[keep], eh[keep], gh[keep]
    starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    sizes = np.diff(np.append(starts, key.size))
    multi = sizes >= 2
    starts, sizes = starts[multi], sizes[multi]
    if seen is not None and starts.size:  # a large member set expanded before (another band): same pairs
        big = np.flatnonzero(sizes >= _SEEN_MIN_MEMBERS)
        if big.size:
            first = np.ones(starts.size, bool)
            first[big] = seen.first_seen(*_bucket_fingerprints(eh, starts[big], sizes[big]))
            starts, sizes = starts[first], sizes[first]
    star_idx, other_idx = _bucket_pairs(starts, sizes, max_bucket)

    def clean(idx: np.ndarray) -> np.ndarray:
        idx = idx[gh[idx[:, 0]] != gh[idx[:, 1]]]  # same group (document) never pairs
        return _unique_pairs(np.stack((eh[idx[:, 0]], eh[idx[:, 1]]), axis=1))  # (lo, hi): sorted by eh

    return clean(star_idx), clean(other_idx)


class _PairSet:
    """Unique (lo, hi) pairs gathered partition by partition, merged as they come.

    One pair of entities is found again in every band they share (up to ``bands`` partitions):
    kept as found until the end, the 1 GB crawl's section candidates held ~10x their unique count
    and took the reduce from 0.43 to 1.0 GB within phase 2.  Merging whenever the pending rows
    outgrow the merged ones (and a floor of ``_PAIR_FLUSH`` rows) bounds memory by about twice
    the unique pairs; the result is the same sorted set."""

    def __init__(self) -> None:
        self._merged = np.empty((0, 2), np.uint64)
        self._pending: list[np.ndarray] = []
        self._rows = 0

    def add(self, p: np.ndarray) -> None:
        if not p.size:
            return
        self._pending.append(p)
        self._rows += len(p)
        if self._rows >= max(_PAIR_FLUSH, len(self._merged)):
            self._merge()

    def _merge(self) -> None:
        self._merged = _unique_pairs(np.concatenate([self._merged, *self._pending]))
        self._pending, self._rows = [], 0

    def pairs(self) -> np.ndarray:
        if self._pending:
            self._merge()
        return self._merged


# -- entities and verification ---------------------------------------------------------------


@dataclass
class _Entities:
    """The entities of the candidate pairs as columns (position = order of the entity hash).

    Python objects per entity (a dataclass with lists of rows) grew the 1 GB crawl's reduce worker
    past 1.7 GB; these columns cost ~60 bytes per entity plus ~20 per unit.
    """

    eh: np.ndarray  # uint64, sorted: the position of an entity is its index here
    names: pa.Array  # string, by position
    file: np.ndarray  # int32: the signature file of all its units
    rank: np.ndarray  # int64: position in the representative order (flags, script, -quality, name)
    whole: np.ndarray  # int64: unit index of its own text (id == entity)
    par_off: np.ndarray  # int64 (n + 1): its paragraph units are par_units[par_off[i]:par_off[i + 1]]
    par_units: np.ndarray  # int64 unit indices (paragraphs at least ``lo`` stripped chars long)
    unit_file: np.ndarray  # int32
    unit_row: np.ndarray  # int64: row in its signature file
    name_rank: np.ndarray  # int64: position of its name in code point order (output order)

    def __len__(self) -> int:
        return int(self.eh.size)

    def name(self, i: int) -> str:
        return self.names[i].as_py()

    def paragraph_units(self, i: int) -> list[int]:
        """A one-paragraph section is its own paragraph."""
        p = self.par_units[self.par_off[i] : self.par_off[i + 1]]
        return p.tolist() if p.size else [int(self.whole[i])]


def _member(x: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """``np.isin(x, sorted_set)`` for a sorted set, without re-sorting the set per call: per
    signature file, ``np.isin`` sorted all wanted entities again (files x entities)."""
    if not sorted_set.size:
        return np.zeros(x.size, bool)
    i = np.minimum(np.searchsorted(sorted_set, x), sorted_set.size - 1)
    return sorted_set[i] == x


def _load_entities(sig_paths: Sequence[Path], wanted: np.ndarray, lo: int) -> _Entities:
    """Info and unit rows of the entities that appear in candidate pairs (and only those).

    Every entity needs a unit whose id is the entity (its whole text: ``units.items_for_document``
    makes one per leaf section); its other units are paragraphs, kept for the paragraph score when
    at least ``lo`` stripped characters long (a short line such as 「各位代表！」 recurs in every
    report and would otherwise score 1.0).  Shorter paragraphs are dropped as each file is read,
    names are checked file by file (all units of one entity live in one file) and only the whole
    unit's name is kept: at the 1 GB crawl's section level every matched unit's name, kept until
    the end, was ~0.2 GB of the reduce's peak."""
    n = wanted.size
    cols = ["id", "entity", "eh", "length", "flags", "script_rank", "quality"]
    u_pos, u_file, u_row, u_whole, w_names, w_info = [], [], [], [], [], []
    seen = np.zeros(n, bool)
    for fi, path in enumerate(sig_paths):
        t = pq.read_table(path, columns=cols)
        eh = t.column("eh").to_numpy()
        rows = np.flatnonzero(_member(eh, wanted))
        if not rows.size:
            continue
        idx = pa.array(rows, pa.int64())
        ids, ents = t.column("id").take(idx).combine_chunks(), t.column("entity").take(idx).combine_chunks()
        pos = np.searchsorted(wanted, eh[rows])
        seen[pos] = True
        # one name per entity hash in this file (else a 64-bit hash collision)
        by = np.argsort(pos, kind="stable")
        first = by[np.concatenate(([True], pos[by][1:] != pos[by][:-1]))]
        head = np.empty(pos.size, np.int64)
        head[by] = first[np.searchsorted(pos[first], pos[by])]
        same = pc.equal(ents, ents.take(pa.array(head, pa.int64()))).to_numpy(zero_copy_only=False)
        if not same.all():
            k = int(np.flatnonzero(~same)[0])
            raise ValueError(f"64-bit id hash collision between {ents[int(head[k])].as_py()!r} and {ents[k].as_py()!r}")
        whole = pc.equal(ids, ents).to_numpy(zero_copy_only=False)
        keep = whole | (t.column("length").to_numpy()[rows] >= lo)
        u_pos.append(pos[keep])
        u_file.append(np.full(int(keep.sum()), fi, np.int32))
        u_row.append(rows[keep])
        u_whole.append(whole[keep])
        w = np.flatnonzero(whole)
        w_names.append(ents.take(pa.array(w, pa.int64())))
        r = rows[w]
        w_info.append(np.stack([t.column(c).to_numpy()[r].astype(np.int64)
                                for c in ("flags", "script_rank", "quality")], axis=1))
        del t, ids, ents
    if not seen.all():  # candidate entities without any unit row cannot happen: pairs come from these files
        raise ValueError(f"{int((~seen).sum())} candidate entities have no rows in the signature files")
    if not u_pos:
        e = np.empty(0, np.int64)
        return _Entities(wanted, pa.array([], pa.string()), e.astype(np.int32), e, e, np.zeros(1, np.int64), e,
                         e.astype(np.int32), e, e)
    pos, ufile, urow = np.concatenate(u_pos), np.concatenate(u_file), np.concatenate(u_row)
    whole_m = np.concatenate(u_whole)
    wseq = np.cumsum(whole_m) - 1  # a whole row's index among the whole rows as read (names, info)
    wnames = pa.concat_arrays(w_names)
    winfo = np.concatenate(w_info)
    del u_pos, u_file, u_row, u_whole, w_names, w_info
    order = np.lexsort((urow, ufile, pos))  # by entity, then file and row (ids sort "<sid>" < "<sid>#NNN")
    pos, ufile, urow, whole_m, wseq = pos[order], ufile[order], urow[order], whole_m[order], wseq[order]
    del order
    m = n
    whole = np.full(m, -1, np.int64)
    w = np.flatnonzero(whole_m)
    whole[pos[w]] = w  # the last row wins, as before
    if (whole < 0).any():  # checked first: an entity without its own unit may have no kept row at all
        e = int(np.flatnonzero(whole < 0)[0])
        raise ValueError(f"entity {_name_of_hash(sig_paths, wanted[e])!r} has no unit of its own "
                         "(id == entity): its own text is needed")
    first = np.searchsorted(pos, np.arange(m))
    bad_file = np.flatnonzero(ufile != ufile[first][pos])
    if bad_file.size:
        raise ValueError(f"entity {_name_of_hash(sig_paths, wanted[pos[bad_file[0]]])!r} has units in two "
                         "signature files; keep a document's items in one shard")
    par = np.flatnonzero(~whole_m)
    par_off = np.searchsorted(pos[par], np.arange(m + 1))
    pick = pa.array(wseq[whole], pa.int64())
    names = wnames.take(pick)
    info = winfo[wseq[whole]]
    flags, script, quality = info[:, 0], info[:, 1], info[:, 2]
    name_order = pc.sort_indices(names).to_numpy()  # UTF-8 byte order == code point order
    name_rank = np.empty(m, np.int64)
    name_rank[name_order] = np.arange(m)
    by_rank = np.lexsort((name_rank, -quality, script, flags))
    rank = np.empty(m, np.int64)
    rank[by_rank] = np.arange(m)
    return _Entities(wanted, names, ufile[first].astype(np.int32), rank, whole, par_off, par,
                     ufile.astype(np.int32), urow, name_rank)


def _name_of_hash(sig_paths: Sequence[Path], eh: np.uint64) -> str:
    """The entity name of an entity hash (for an error message)."""
    for path in sig_paths:
        t = pq.read_table(path, columns=["entity", "eh"])
        hit = np.flatnonzero(t.column("eh").to_numpy() == eh)
        if hit.size:
            return t.column("entity")[int(hit[0])].as_py()
    return f"<hash {int(eh):#x}>"


class _Verifier:
    """Exact scores of entity pairs.  The shingle sets of every unit a score may need are computed
    once, file by file in one pass, and spilled to ``work/<level>.shingles`` (uint64, plus the
    whole units' signatures); a score reads its units back with ``os.pread`` (page cache, not RSS).

    Before, pairs were grouped by their two files and each block re-read its files' row groups
    through a 128 MB shingle LRU: on the 1 GB crawl the section reduce ran > 27 min without
    finishing, each file's text read once per partner file.
    """

    def __init__(self, sig_paths: Sequence[Path], ent: _Entities, cfg: DedupConfig, spill: Path) -> None:
        self.paths = list(sig_paths)
        self.ent = ent
        self.cfg = cfg
        # Scored pairs as columns sorted by key = lo * n + hi (positions, lo < hi): rel is an index
        # into _RELATIONS or -1 (not a duplicate); paragraph columns NaN when there is no paragraph
        # pair.  A dict of tuples cost ~400 bytes per scored pair (the 1 GB crawl's section reduce
        # scores ~10^6); these columns cost 57.
        self.n = max(1, len(ent))
        self.keys = np.empty(0, np.int64)
        self.cols = {k: np.empty(0, np.float64) for k in _FLOAT_COLS}
        self.rel = np.empty(0, np.int8)
        self.lazy = np.empty(0, bool)  # pj/pc still to compute (paragraph_score), only if written
        self._side_a = None  # (entity, _ParagraphSide): the last first side's prepared paragraphs
        self.rows_read = 0
        n_units = ent.unit_row.size
        self.off = np.zeros(n_units, np.int64)
        self.cnt = np.zeros(n_units, np.int64)
        self.sig_slot = np.full(n_units, -1, np.int64)
        need = np.zeros(n_units, bool)
        need[ent.whole] = True
        need[ent.par_units] = True
        is_whole = np.zeros(n_units, bool)
        is_whole[ent.whole] = True
        self.sh_path, self.sig_path = spill.with_suffix(".shingles"), spill.with_suffix(".sigs")
        self.sh_path.parent.mkdir(parents=True, exist_ok=True)
        pos = slots = 0
        with open(self.sh_path, "wb") as fsh, open(self.sig_path, "wb") as fsg:
            needed = np.flatnonzero(need)
            needed = needed[np.lexsort((ent.unit_row[needed], ent.unit_file[needed]))]  # by file, then row
            fb = np.searchsorted(ent.unit_file[needed], np.arange(len(self.paths) + 1))
            for fi in np.flatnonzero(np.diff(fb)).tolist():
                units = needed[fb[fi] : fb[fi + 1]]
                for u, sh, cnt, sg in self._read(fi, ent.unit_row[units], is_whole[units], units):
                    fsh.write(sh.tobytes())
                    self.off[u] = pos + np.cumsum(cnt) - cnt
                    self.cnt[u] = cnt
                    pos += sh.size
                    w = np.flatnonzero(is_whole[u])
                    fsg.write(sg.tobytes())
                    self.sig_slot[u[w]] = slots + np.arange(w.size)
                    slots += w.size
        self.spill_bytes = pos * 8 + slots * cfg.num_perm * 4
        self._fsh = os.open(self.sh_path, os.O_RDONLY)
        self._fsg = os.open(self.sig_path, os.O_RDONLY)

    def close(self) -> None:
        for fd in (self._fsh, self._fsg):
            os.close(fd)
        self.sh_path.unlink(missing_ok=True)
        self.sig_path.unlink(missing_ok=True)

    def _read(self, fi: int, rows: np.ndarray, whole: np.ndarray, units: np.ndarray):
        """Batches of (units, their shingle sets concatenated, set sizes, signatures of the whole
        units among them) of some rows of one file, reading only their row groups.

        Texts are shingled ``BATCH_CHARS`` at a time with ``shingle_batch`` (one numpy
        pass over many texts): per text, the 100 MB crawl's section units (~130 chars) shingled at
        3.8 MB/s, batched at ~35 MB/s."""
        pf = pq.ParquetFile(self.paths[fi])
        bounds = np.cumsum([0] + [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)])
        grp = np.searchsorted(bounds, rows, side="right") - 1
        width = self.cfg.num_perm
        texts: list[str] = []
        sels: list[np.ndarray] = []
        mats: list[np.ndarray] = []
        chars = 0

        def flush():
            sel = np.concatenate(sels)
            sh, cnt = shingle_batches(texts, self.cfg)  # BATCH_CHARS per call, even in one large row group
            w = whole[sel]
            sg = np.concatenate(mats)[w]
            unsigned = np.flatnonzero((cnt[w] > 0) & (sg == _EMPTY_SIG).all(axis=1))
            if unsigned.size:  # a unit too short to band was not signed
                ends = np.cumsum(cnt)
                wi = np.flatnonzero(w)[unsigned]
                sg[unsigned] = signature_matrix([sh[ends[k] - cnt[k] : ends[k]] for k in wi.tolist()], self.cfg)
            return units[sel], sh, cnt, sg

        for g in np.unique(grp).tolist():
            sel = np.flatnonzero(grp == g)
            t = pf.read_row_group(g, columns=["text", "signature"])
            idx = pa.array(rows[sel] - bounds[g], pa.int64())
            got = t.column("text").take(idx).to_pylist()
            mats.append(t.column("signature").take(idx).combine_chunks().flatten().to_numpy(zero_copy_only=False).reshape(-1, width))
            texts.extend(got)
            sels.append(sel)
            chars += sum(map(len, got))
            self.rows_read += sel.size
            if chars >= BATCH_CHARS:
                yield flush()
                texts, sels, mats, chars = [], [], [], 0
        if texts:
            yield flush()

    def _shingles(self, u: int) -> np.ndarray:
        n = int(self.cnt[u])
        if not n:
            return np.empty(0, np.uint64)
        return np.frombuffer(os.pread(self._fsh, n * 8, int(self.off[u]) * 8), np.uint64)

    def _signature(self, u: int) -> np.ndarray:
        w = self.cfg.num_perm * 4
        return np.frombuffer(os.pread(self._fsg, w, int(self.sig_slot[u]) * w), np.uint32)

    def score(self, pairs) -> None:
        """Score the pairs (an (n, 2) array or pairs of positions) not yet scored, in order of their
        first side's spill offset (the spill is read mostly forward), then (a, b)."""
        p = np.asarray(pairs, np.int64).reshape(-1, 2)
        if not p.size:
            return
        n = max(1, len(self.ent))
        keys = np.unique(np.minimum(p[:, 0], p[:, 1]) * n + np.maximum(p[:, 0], p[:, 1]))
        lo, hi = keys // n, keys % n
        new = ~_member(keys, self.keys)
        keys, lo, hi = keys[new], lo[new], hi[new]
        order = np.lexsort((hi, lo, self.off[self.ent.whole[lo]]))
        k = keys.size
        cols = {c: np.full(k, np.nan) for c in _FLOAT_COLS}
        rel = np.full(k, -1, np.int8)
        lazy = np.zeros(k, bool)
        for i, a, b in zip(order.tolist(), lo[order].tolist(), hi[order].tolist()):
            r = self._score(a, b)
            if r is None:
                continue
            est, j, cab, cba, relation_, pj, pc_ = r
            rel[i] = _RELATIONS.index(relation_)
            if pj is _LAZY:
                lazy[i] = True
                pj = pc_ = None
            for c, v in zip(_FLOAT_COLS, (est, j, cab, cba, pj, pc_)):
                if v is not None:
                    cols[c][i] = v
        self._side_a = None
        keys = np.concatenate((self.keys, keys))
        merged = np.argsort(keys, kind="stable")
        self.keys = keys[merged]
        self.rel = np.concatenate((self.rel, rel))[merged]
        self.lazy = np.concatenate((self.lazy, lazy))[merged]
        for c in _FLOAT_COLS:
            self.cols[c] = np.concatenate((self.cols[c], cols[c]))[merged]

    def relations(self, pairs) -> np.ndarray:
        """Relation codes (index into _RELATIONS, -1 none) of scored pairs (any side order)."""
        p = np.asarray(pairs, np.int64).reshape(-1, 2)
        keys = np.minimum(p[:, 0], p[:, 1]) * self.n + np.maximum(p[:, 0], p[:, 1])
        i = np.searchsorted(self.keys, keys)
        if keys.size and not (self.keys[np.minimum(i, self.keys.size - 1)] == keys).all():
            raise KeyError("pair not scored")
        return self.rel[i]

    def near_pairs(self) -> np.ndarray:
        """(lo, hi) of the verified near-duplicate pairs, sorted."""
        k = self.keys[self.rel == _NEAR]
        return np.stack((k // self.n, k % self.n), axis=1)

    def _score(self, a: int, b: int):
        """The two entities' own scores (whole texts) decide near_duplicate / reuse; the best paragraph
        pair (by containment, then Jaccard) is reported beside them and, when only it passes,
        makes the pair paragraph_reuse.  None: not a duplicate at all.

        When the whole texts already decide the relation, the paragraph pair cannot change it: its
        (pj, pc) are left NaN and the pair is marked ``lazy``; ``paragraph_score`` computes them for
        the rows actually written (most near-duplicate pairs of a large family are never written).
        """
        ent = self.ent
        wa, wb = int(ent.whole[a]), int(ent.whole[b])
        sa, sb = self._shingles(wa), self._shingles(wb)
        if not sa.size or not sb.size:
            return None
        j, cab, cba = compare_sets(sa, sb)
        rel = relation(self.cfg, j, cab, cba)
        if rel is not None:
            pj = pc_ = _LAZY
        else:
            pj, pc_, prel = self._paragraphs(a, b, wa, wb, sa, sb, j, cab, cba)
            if prel is None:
                return None
            rel = "paragraph_reuse"
        ga, gb = self._signature(wa), self._signature(wb)
        return (np.count_nonzero(ga == gb) / ga.size, j, cab, cba, rel, pj, pc_)

    def _paragraphs(self, a: int, b: int, wa: int, wb: int, sa: np.ndarray, sb: np.ndarray, j: float,
                    cab: float, cba: float, pivot_b: bool = False):
        """(pj, pc, relation) of the best paragraph pair; (None, None, None) when there is none.

        One side's paragraph arrays (a's, or b's with ``pivot_b``), sorted and concatenated, are
        kept across consecutive pairs with the same pivot (``score`` visits pairs by their first
        side; the write phase by representative): a representative meets many candidates."""
        ent = self.ent
        ra_list, rb_list = ent.paragraph_units(a), ent.paragraph_units(b)
        if ra_list == [wa] and rb_list == [wb]:
            return j, max(cab, cba), relation(self.cfg, j, cab, cba)
        if pivot_b:
            a, b, wa, wb, sa, sb, ra_list, rb_list = b, a, wb, wa, sb, sa, rb_list, ra_list
        if self._side_a is None or self._side_a[0] != a:
            la = [sa if u == wa else self._shingles(u) for u in ra_list]
            self._side_a = (a, _ParagraphSide(la))
        side = self._side_a[1]
        got = side.best([sb if u == wb else self._shingles(u) for u in rb_list], swap=pivot_b)
        if got is None:
            return None, None, None
        pj, uab, uba = got
        return pj, max(uab, uba), relation(self.cfg, pj, uab, uba)

    def paragraph_score(self, a: int, b: int, pivot_b: bool = False) -> tuple[float, float]:
        """(pj, pc) of a ``lazy`` pair (NaN, NaN when there is no paragraph pair)."""
        wa, wb = int(self.ent.whole[a]), int(self.ent.whole[b])
        sa, sb = self._shingles(wa), self._shingles(wb)
        j, cab, cba = compare_sets(sa, sb)
        pj, pc_, _ = self._paragraphs(a, b, wa, wb, sa, sb, j, cab, cba, pivot_b)
        return (np.nan, np.nan) if pj is None else (pj, pc_)


class _ParagraphSide:
    """One side's non-empty paragraph shingle arrays, concatenated and sorted once, to meet many
    other sides (``best_paragraph_pair`` with its a side prepared)."""

    def __init__(self, la: Sequence[np.ndarray]) -> None:
        self.ia = [k for k, s in enumerate(la) if s.size]
        if not self.ia:
            return
        self.size = np.array([la[k].size for k in self.ia], np.int64)
        v = np.concatenate([la[k] for k in self.ia])
        lab = np.repeat(np.arange(len(self.ia)), self.size)
        order = np.argsort(v, kind="stable")
        self.v, self.lab = v[order], lab[order]

    def best(self, lb: Sequence[np.ndarray], swap: bool = False) -> tuple[float, float, float] | None:
        """(Jaccard, c_ab, c_ba) of the best pair of this side (a) against ``lb`` (b), or None when
        one side has no non-empty array.  ``swap``: this side is the pair's b side, ``lb`` its a
        side: the scores and the tie order are then the pair's own (a, b)'s.

        One compiled loop (``kernels.best_pair``) builds the intersection counts (a binary search
        of each b shingle in the sorted a side) and picks the best: the numpy version (searchsorted,
        repeat, bincount, then ``_best_of`` over the matrix) was ~200 us of call overhead per pair
        of sections, ~60 % of the section verification."""
        ib = [k for k, s in enumerate(lb) if s.size]
        if not self.ia or not ib:
            return None
        size_b = np.array([lb[k].size for k in ib], np.int64)
        boff = np.zeros(len(ib) + 1, np.int64)
        np.cumsum(size_b, out=boff[1:])
        bv = np.concatenate([lb[k] for k in ib])
        return kernels.best_pair(self.v, self.lab, self.size, bv, boff, swap)


def best_paragraph_pair(la: Sequence[np.ndarray], lb: Sequence[np.ndarray]) -> tuple[float, float, float] | None:
    """(Jaccard, c_ab, c_ba) of the best pair of two lists of sorted unique shingle arrays: the
    highest max containment, then the highest Jaccard, then the first in (a, b) order; empty arrays
    never pair.  None when one side has no non-empty array.

    One intersection-count matrix instead of a ``compare_sets`` call per paragraph pair: a
    40-paragraph section against another made 1,600 calls of ~20 us each.  The verifier keeps one
    side prepared (:class:`_ParagraphSide`) across a representative's many pairs; this is the
    same computation for one pair.
    """
    return _ParagraphSide(la).best(lb)


# -- phase 4: clusters -----------------------------------------------------------------------


def _components(n: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Connected components of the edges (u, v) over 0..n-1: each node's label is the smallest
    node of its component.  Numpy hooking (a root hooks onto the smaller label of an edge) and
    pointer jumping instead of a Python union-find over adjacency sets (~250 bytes per edge as
    dicts of sets at the 1 GB crawl)."""
    lab = np.arange(n, dtype=np.int64)
    while u.size:
        lu, lv = lab[u], lab[v]
        diff = lu != lv
        if not diff.any():
            break
        lu, lv = lu[diff], lv[diff]
        m = np.minimum(lu, lv)
        np.minimum.at(lab, lu, m)  # labels are roots (lab[r] == r) after the jumps below
        np.minimum.at(lab, lv, m)
        while True:
            nxt = lab[lab]
            if (nxt == lab).all():
                break
            lab = nxt
    return lab


def _near_components(ver: _Verifier) -> np.ndarray:
    """entity position -> component label (smallest member) over the verified near-duplicate
    pairs; -1 for an entity in none."""
    near = ver.near_pairs()
    label = _components(len(ver.ent), near[:, 0], near[:, 1])
    inside = np.zeros(len(ver.ent), bool)
    inside[near.reshape(-1)] = True
    return np.where(inside, label, -1)


def _clusters(deferred: np.ndarray, ver: _Verifier) -> np.ndarray:
    """entity -> representative (-1: in no cluster of >= 2), by position (no chaining; module doc).

    Candidates whose two sides were already connected by verified near-duplicate pairs
    (``deferred``) were not scored: they cannot change the components.  They are scored here only
    when both sides are left over from one component after its representative took its members,
    so the split of the remainder is the same as if every candidate had been scored first.
    The graph is edge arrays and each round's components are arrays (``_components``).
    """
    n = len(ver.ent)
    rep_of = np.full(max(1, n), -1, np.int64)
    edges = ver.near_pairs()
    if not edges.size:
        return rep_of
    rank = ver.ent.rank
    deferred = np.asarray(deferred, np.int64).reshape(-1, 2)
    group = np.full(n, -1, np.int64)  # members still to place: the rest (or component) they are in
    group[edges.reshape(-1)] = 0
    while True:
        # components of the near-duplicate edges inside each group, of >= 2 members
        u, v = edges[:, 0], edges[:, 1]
        keep = (group[u] >= 0) & (group[u] == group[v])
        lab = _components(n, u[keep], v[keep])
        mem = np.flatnonzero(group >= 0)
        comp = lab[mem]
        mem = mem[np.lexsort((rank[mem], comp))]  # by component, then rank: first is the representative
        comp = lab[mem]
        start = np.concatenate(([True], comp[1:] != comp[:-1]))
        size = np.diff(np.append(np.flatnonzero(start), mem.size))
        multi = np.repeat(size >= 2, size)
        mem, comp, start = mem[multi], comp[multi], start[multi]
        if not mem.size:
            break
        rep = mem[np.flatnonzero(start)][np.cumsum(start) - 1]
        others = ~start
        against_rep = np.stack((mem[others], rep[others]), axis=1)
        ver.score(against_rep)
        near = ver.relations(against_rep) == _NEAR
        joined = mem[others][near]
        rep_of[joined] = rep[others][near]
        rep_of[rep[others][near]] = rep[others][near]
        # the rest of each component: members not near-duplicates of its representative
        rest, rest_comp = mem[others][~near], comp[others][~near]
        group[:] = -1
        if not rest.size:
            break
        rs = np.concatenate(([True], rest_comp[1:] != rest_comp[:-1])) if rest.size else np.zeros(0, bool)
        # rest_comp follows mem's order (by component), so equal labels are adjacent
        rsize = np.diff(np.append(np.flatnonzero(rs), rest.size))
        big = np.repeat(rsize > 1, rsize)
        group[rest[big]] = rest_comp[big]
        if deferred.size:
            da, db = deferred[:, 0], deferred[:, 1]
            todo = deferred[(group[da] >= 0) & (group[da] == group[db])]
            ver.score(todo)
            if todo.size:
                edges = np.concatenate((edges, todo[ver.relations(todo) == _NEAR]))
    return rep_of


# -- the corpus-level call -------------------------------------------------------------------


def find_duplicates(sig_paths: Sequence[Path], level: str, cfg: DedupConfig, work: Path) -> DedupOutcome:
    """Pairs and clusters of one level from every shard's signature file (see module docstring).

    On a failure (a full disk, most likely: the band files and the verification spill are the
    largest scratch of a build, ~210 MB at 100 MB) the scratch is removed before the error goes on,
    so a failed build does not keep the disk full (issue 24 #7)."""
    try:
        return _find_duplicates(sig_paths, level, cfg, work)
    except BaseException:
        scratch = Path(work) / f"{level}.verify"
        shutil.rmtree(Path(work) / f"{level}.bands", ignore_errors=True)
        for p in (scratch.with_suffix(".shingles"), scratch.with_suffix(".sigs")):
            p.unlink(missing_ok=True)
        raise


def _find_duplicates(sig_paths: Sequence[Path], level: str, cfg: DedupConfig, work: Path) -> DedupOutcome:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    work = Path(work)
    sig_paths = [Path(p) for p in sig_paths]
    lo = min_length(cfg, level)
    phase = _Phases()

    band_dir = work / f"{level}.bands"
    shutil.rmtree(band_dir, ignore_errors=True)
    band_dir.mkdir(parents=True)
    parts = _partition_count(sig_paths, cfg, lo)
    items = skipped = 0
    for fi, path in enumerate(sig_paths):
        s = _write_bands(fi, path, cfg, lo, parts, band_dir)
        items += s["items"]
        skipped += s["skipped_short"]
    phase.done("bands")

    star, other, seen = _PairSet(), _PairSet(), _SeenBuckets()
    for p in range(parts):
        s, o = _partition_candidates(band_dir, p, cfg.max_bucket, seen)
        star.add(s)
        other.add(o)
    star, other = star.pairs(), other.pairs()
    del seen
    shutil.rmtree(band_dir, ignore_errors=True)
    phase.done("candidates")

    wanted = np.unique(np.concatenate((star.reshape(-1), other.reshape(-1))))
    entities = _load_entities(sig_paths, wanted, lo)
    # candidate pairs as entity positions (the order of the hashes, so (lo, hi) stays (lo, hi))
    star_pos = np.searchsorted(wanted, star)
    other_pos = np.searchsorted(wanted, other)
    del star, other, wanted
    ver = _Verifier(sig_paths, entities, cfg, work / f"{level}.verify")
    phase.done("shingle")
    # Pairs stay numpy (keys a * n + b, sorted): at the 1 GB crawl, lists and sets of tuples of the
    # candidates cost ~100 bytes per pair.
    n_ent = max(1, len(entities))
    star_keys = star_pos[:, 0] * n_ent + star_pos[:, 1]  # sorted and unique: positions follow the hashes
    other_keys = other_pos[:, 0] * n_ent + other_pos[:, 1]
    other_keys = other_keys[~_member(other_keys, star_keys)]
    n_candidates = int(star_keys.size + other_keys.size)
    ver.score(star_pos)
    del star_pos, other_pos, star_keys
    label = _near_components(ver)
    oa, ob = other_keys // n_ent, other_keys % n_ent
    wait = (label[oa] >= 0) & (label[oa] == label[ob])
    deferred = np.stack((oa[wait], ob[wait]), axis=1)
    ver.score(np.stack((oa[~wait], ob[~wait]), axis=1))
    del oa, ob, wait, other_keys, label
    phase.done("verify")

    rep_of = _clusters(deferred, ver)
    phase.done("cluster")

    pairs = _pair_table(ver, rep_of, cfg, level)
    ver.close()
    pairs_path = work / f"{level}.duplicates.parquet"
    _write(pairs, pairs_path)
    rel_counts = {r: 0 for r in _RELATIONS}
    for v in pc.value_counts(pairs.column("relation")).to_pylist():
        rel_counts[v["values"]] = v["counts"]
    del pairs
    clusters, cluster_sizes = _cluster_table(rep_of, entities)
    clusters_path = work / f"{level}.clusters.parquet"
    _write(clusters, clusters_path)
    del clusters
    phase.done("write")

    stats = {
        "items": items,
        "skipped_short": skipped,
        "partitions": parts,
        "candidates": n_candidates,
        "verified_pairs": int(ver.keys.size),  # exact comparisons: candidates inside a verified component wait
        "rows_read_for_verify": ver.rows_read,  # units shingled once into the spill
        "spill_mb": round(ver.spill_bytes / 1e6, 1),
        **rel_counts,
        "clusters_with_duplicates": int(cluster_sizes.size),
        "largest_cluster": int(cluster_sizes.max(initial=0)),
        **phase.stats(),
    }
    return DedupOutcome(pairs_path, clusters_path, stats)


def _cluster_table(rep_of: np.ndarray, ent: _Entities) -> tuple[pa.Table, np.ndarray]:
    """CLUSTERS rows (by id) as Arrow columns, and the sizes of the clusters."""
    m = np.flatnonzero(rep_of[: len(ent)] >= 0)
    r = rep_of[m]
    size = np.bincount(r, minlength=len(ent)) if r.size else np.zeros(0, np.int64)
    order = np.argsort(ent.name_rank[m], kind="stable")
    m, r = m[order], r[order]
    table = pa.Table.from_arrays(
        [
            ent.names.take(pa.array(m, pa.int64())),
            ent.names.take(pa.array(r, pa.int64())),
            ent.names.take(pa.array(r, pa.int64(), mask=m == r)),
            pa.array(size[r].astype(np.int32), pa.int32()) if r.size else pa.array([], pa.int32()),
        ],
        schema=CLUSTERS,
    )
    return table, size[size > 0]


def _pair_table(ver: _Verifier, rep: np.ndarray, cfg: DedupConfig, level: str) -> pa.Table:
    """The written DUPLICATES rows, sorted by (a_id, b_id), as Arrow columns (module doc, phase 5).

    Before, a ``DuplicatePair`` per row (and a tuple per candidate extra row) set the 1 GB crawl's
    section reduce peak (1.53 GB) in this phase."""
    ent = ver.ent
    n = len(ent)
    hit = np.flatnonzero(ver.rel >= 0)
    a, b = ver.keys[hit] // ver.n, ver.keys[hit] % ver.n
    ra, rb = rep[a], rep[b]
    same = (ra >= 0) & (ra == rb)
    fixed = same & ((ra == a) | (ra == b))  # member against its representative: always written
    # two members of one cluster (same, not fixed): not written, recoverable (module docstring)
    extra = np.flatnonzero(~same)
    nr = ent.name_rank
    # Whole-text relations take the per-item budget first, then paragraph reuse (a long section
    # shares paragraphs with many others), each in (a_id, b_id) order.
    ea, eb = a[extra], b[extra]
    lo, hi = np.minimum(nr[ea], nr[eb]), np.maximum(nr[ea], nr[eb])
    order = np.lexsort((hi, lo, ver.rel[hit][extra] == _RELATIONS.index("paragraph_reuse")))
    budget = [cfg.extra_pairs_per_item] * max(1, n)
    take = []
    for k, x, y in zip(order.tolist(), ea[order].tolist(), eb[order].tolist()):
        bx, by = budget[x], budget[y]
        if bx <= 0 and by <= 0:
            continue
        budget[x], budget[y] = bx - 1, by - 1
        take.append(k)
    del budget, ea, eb, lo, hi, order
    sel = np.sort(np.concatenate((np.flatnonzero(fixed), extra[np.asarray(take, np.int64)])))
    del take, fixed, extra, same, ra, rb
    rows = hit[sel]
    a, b = a[sel], b[sel]
    c = ver.cols
    est, j, cab, cba = c["est"][rows], c["j"][rows], c["cab"][rows], c["cba"][rows]
    if level == "document":
        pj = pcont = np.full(rows.size, np.nan)
    else:
        pj, pcont = c["pj"][rows].copy(), c["pc"][rows].copy()
        lazy = np.flatnonzero(ver.lazy[rows])
        # by pivot (the representative when one side is, else a): its paragraphs are prepared once
        pivot_b = rep[b[lazy]] == b[lazy]
        pivot = np.where(pivot_b, b[lazy], a[lazy])
        lazy, pivot_b = lazy[np.argsort(pivot, kind="stable")], pivot_b[np.argsort(pivot, kind="stable")]
        for k, x, y, pb in zip(lazy.tolist(), a[lazy].tolist(), b[lazy].tolist(), pivot_b.tolist()):
            pj[k], pcont[k] = ver.paragraph_score(x, y, pb)
    swap = nr[b] < nr[a]
    a, b = np.where(swap, b, a), np.where(swap, a, b)
    cab, cba = np.where(swap, cba, cab), np.where(swap, cab, cba)
    out = np.lexsort((nr[b], nr[a]))
    rel_names = pa.array(list(_RELATIONS), pa.string())

    def f32(x: np.ndarray) -> pa.Array:
        x = x[out]
        return pa.array(x, pa.float64(), mask=np.isnan(x)).cast(pa.float32())

    return pa.Table.from_arrays(
        [
            pa.array(np.full(rows.size, level, object), pa.string()) if rows.size else pa.array([], pa.string()),
            ent.names.take(pa.array(a[out], pa.int64())),
            ent.names.take(pa.array(b[out], pa.int64())),
            f32(est), f32(j), f32(cab), f32(cba),
            rel_names.take(pa.array(ver.rel[rows][out].astype(np.int64), pa.int64())),
            f32(pj), f32(pcont),
        ],
        schema=schemas.DUPLICATES,
    )


# -- in memory, over the same path -----------------------------------------------------------


def dedup_in_memory(
    items: Sequence[DedupItem], cfg: DedupConfig, level: str, *, shards: int = 1
) -> tuple[list[DuplicatePair], dict[str, tuple[str, str | None]], dict]:
    """Tests and small callers: the on-disk path in a temporary directory.

    Returns the pairs, ``entity -> (cluster_id, duplicate_of)`` for *every* entity (singletons map to
    themselves), and the stats.  ``shards`` splits the items round-robin by document group.
    """
    with tempfile.TemporaryDirectory(prefix="dedup-") as tmp:
        tmp_path = Path(tmp)
        by_shard: list[list[DedupItem]] = [[] for _ in range(max(1, shards))]
        for it in items:
            g = it.group if it.group is not None else it.key
            by_shard[xxhash.xxh3_64_intdigest(g.encode()) % len(by_shard)].append(it)
        paths = []
        for k, part in enumerate(by_shard):
            p = tmp_path / f"sig-{k:03d}.parquet"
            write_signatures(part, level, cfg, p)
            paths.append(p)
        out = find_duplicates(paths, level, cfg, tmp_path / "work")
        ptab = pq.read_table(out.pairs_path).to_pylist()
        ctab = pq.read_table(out.clusters_path).to_pylist()
    pairs = [DuplicatePair(**r) for r in ptab]
    clusters = {it.key: (it.key, None) for it in items}
    clusters.update({r["id"]: (r["cluster_id"], r["duplicate_of"]) for r in ctab})
    return pairs, clusters, out.stats
