"""Near-duplicate detection over signature files, in bounded memory, with rows linear in cluster size.

Phases of ``find_duplicates`` (one call per level, after every shard ran ``write_signatures``):

1. **bands** — each signature file is read in batches (never its text) and its band keys are
   written to ``work/bands/`` as numpy arrays ordered by partition (``key mod P``).  P is chosen so
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
   them and makes the pair ``paragraph_reuse`` when only it passes.  Paragraph units find
   candidates; they never make two sections near-duplicates (before, a chapter and one of its
   subsections scored Jaccard 1.0).  Star
   edges first; a remaining candidate whose two sides are already connected by verified
   near-duplicate pairs waits (it cannot change the components) and is scored only if the
   representative split in phase 4 needs it.  A 500-copy family: 42,430 candidates, 8,942 exact
   comparisons, same clusters.  Pairs are grouped by the files their two sides live in, so each
   file's text column is read once per file pair that has candidates, and only the candidates'
   rows are shingled.
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

**Memory**: one signature batch (phase 1), one partition (phase 2), the candidates' rows of two
shards (shingles; only their 512-row groups are read) (phase 3), and the candidate pairs and the
info of the entities in them (phases 3-5): the corpus's texts are never held at once.

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

import shutil
from collections import OrderedDict
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from corpuspipe.core import schemas
from corpuspipe.core.config import DedupConfig
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
from corpuspipe.stages.dedup.shingles import shingle_hashes
from corpuspipe.stages.dedup.unionfind import UnionFind

# Verification reads only the row groups holding candidates: 512 rows of ~2k-char documents is
# ~3 MB of text, small enough that a few candidates do not decompress a whole shard.
_SIG_ROW_GROUP = 512
_EMPTY_SIG = np.uint32(0xFFFFFFFF)
_SHINGLE_CACHE_BYTES = 128 << 20  # shingle sets kept between verification blocks (uint64: 8 B per char)
_READ_BATCH = 8192  # signature rows per read in the band phase: 8k x 128 x 4 B = 4 MB
_PARQUET = dict(compression="zstd", compression_level=3, use_dictionary=False, write_statistics=False)


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


def _h64(strings: Sequence[str]) -> np.ndarray:
    return np.fromiter((xxhash.xxh3_64_intdigest(s.encode("utf-8")) for s in strings), np.uint64, len(strings))


def _write(table: pa.Table, path: Path, row_group_size: int | None = None) -> None:
    """Atomic, deterministic Parquet write (fixed options, no timestamps)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, row_group_size=row_group_size, **_PARQUET)
    tmp.replace(path)


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
    _write(table, path, row_group_size=_SIG_ROW_GROUP)
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


def _partition_count(sig_paths: Sequence[Path], cfg: DedupConfig) -> int:
    p = lsh_params(cfg)
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in sig_paths) * (p["bands"] + p["reuse_bands"])
    return max(1, -(-rows // max(1, cfg.partition_rows)))


def _write_bands(fi: int, path: Path, cfg: DedupConfig, lo: int, parts: int, out: Path) -> dict:
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
        k = fold_band(band_matrix(mat, cfg))  # (m, bands)
        keys.append(k.reshape(-1))
        ehs.append(np.repeat(batch.column("eh").to_numpy()[idx], k.shape[1]))
        ghs.append(np.repeat(batch.column("gh").to_numpy()[idx], k.shape[1]))
    key = np.concatenate(keys) if keys else np.empty(0, np.uint64)
    eh = np.concatenate(ehs) if ehs else np.empty(0, np.uint64)
    gh = np.concatenate(ghs) if ghs else np.empty(0, np.uint64)
    part = key % np.uint64(parts)
    order = np.argsort(part, kind="stable")
    offsets = np.searchsorted(part[order], np.arange(parts + 1, dtype=np.uint64))
    np.save(out / f"{fi:05d}.key.npy", key[order])
    np.save(out / f"{fi:05d}.eh.npy", eh[order])
    np.save(out / f"{fi:05d}.gh.npy", gh[order])
    np.save(out / f"{fi:05d}.off.npy", offsets.astype(np.int64))
    return {"items": items, "skipped_short": skipped, "band_rows": int(key.size)}


# -- phase 2: candidates ---------------------------------------------------------------------


def _bucket_pairs(z: int, max_bucket: int) -> tuple[np.ndarray, np.ndarray]:
    """(star, other) index pairs into one bucket of z sorted unique members.

    star: every member with the first (smallest); other: the remaining pairs if the bucket has at
    most ``max_bucket`` members, else a chain of neighbours (linear).
    """
    rest = np.arange(1, z)
    star = np.stack((np.zeros(z - 1, np.int64), rest), axis=1)
    if z <= max_bucket:
        i, j = np.triu_indices(z - 1, 1)
        other = np.stack((rest[i], rest[j]), axis=1)
    else:
        other = np.stack((rest[:-1], rest[1:]), axis=1)
    return star, other


def _unique_pairs(p: np.ndarray) -> np.ndarray:
    if not p.size:
        return p.reshape(0, 2)
    order = np.lexsort((p[:, 1], p[:, 0]))
    p = p[order]
    keep = np.ones(len(p), bool)
    keep[1:] = (p[1:, 0] != p[:-1, 0]) | (p[1:, 1] != p[:-1, 1])
    return p[keep]


def _partition_candidates(band_dir: Path, n_files: int, part: int, max_bucket: int) -> tuple[np.ndarray, np.ndarray]:
    keys, ehs, ghs = [], [], []
    for fi in range(n_files):
        off = np.load(band_dir / f"{fi:05d}.off.npy")
        a, b = int(off[part]), int(off[part + 1])
        if a == b:
            continue
        for lst, name in ((keys, "key"), (ehs, "eh"), (ghs, "gh")):
            lst.append(np.load(band_dir / f"{fi:05d}.{name}.npy", mmap_mode="r")[a:b].copy())
    if not keys:
        return np.empty((0, 2), np.uint64), np.empty((0, 2), np.uint64)
    key, eh, gh = np.concatenate(keys), np.concatenate(ehs), np.concatenate(ghs)
    del keys, ehs, ghs
    order = np.lexsort((eh, key))
    key, eh, gh = key[order], eh[order], gh[order]
    del order
    # one row per (bucket, entity): several paragraphs of one section may share a bucket
    keep = np.ones(key.size, bool)
    keep[1:] = (key[1:] != key[:-1]) | (eh[1:] != eh[:-1])
    key, eh, gh = key[keep], eh[keep], gh[keep]
    starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    sizes = np.diff(np.append(starts, key.size))
    stars, others = [], []
    two = starts[sizes == 2]
    stars.append(np.stack((two, two + 1), axis=1))
    for s, z in zip(starts[sizes > 2].tolist(), sizes[sizes > 2].tolist()):
        for out, pr in zip((stars, others), _bucket_pairs(z, max_bucket)):
            out.append(pr + s)  # row indices into the sorted partition

    def clean(chunks: list[np.ndarray]) -> np.ndarray:
        if not chunks:
            return np.empty((0, 2), np.uint64)
        idx = np.concatenate(chunks)
        idx = idx[gh[idx[:, 0]] != gh[idx[:, 1]]]  # same group (document) never pairs
        return _unique_pairs(np.stack((eh[idx[:, 0]], eh[idx[:, 1]]), axis=1))  # (lo, hi): sorted by eh

    return clean(stars), clean(others)


# -- entities and verification ---------------------------------------------------------------


@dataclass
class _Entity:
    name: str
    rank: tuple  # (flags, script_rank, -quality, name): smallest is the representative
    file: int
    whole: int = -1  # the row of the unit whose id is the entity: the entity's own text
    paragraphs: list[int] | None = None  # rows of its paragraph units (id "<entity>#NNN") long enough to compare

    def paragraph_rows(self) -> list[int]:
        """A one-paragraph section is its own paragraph."""
        return self.paragraphs if self.paragraphs else [self.whole]

    def compared_rows(self) -> list[int]:
        return [self.whole, *(self.paragraphs or ())]


def _load_entities(sig_paths: Sequence[Path], wanted: np.ndarray, lo: int) -> dict[int, _Entity]:
    """Info and unit rows of the entities that appear in candidate pairs (and only those).

    Every entity needs a unit whose id is the entity (its whole text: ``units.items_for_document``
    makes one per leaf section); its other units are paragraphs, kept for the paragraph score when
    at least ``lo`` stripped characters long (a short line such as 「各位代表！」 recurs in every
    report and would otherwise score 1.0)."""
    out: dict[int, _Entity] = {}
    cols = ["id", "entity", "eh", "flags", "script_rank", "quality", "length"]
    for fi, path in enumerate(sig_paths):
        t = pq.read_table(path, columns=cols)
        eh = t.column("eh").to_numpy()
        rows = np.flatnonzero(np.isin(eh, wanted))
        if not rows.size:
            continue
        ids = t.column("id").take(rows).to_pylist()
        names = t.column("entity").take(rows).to_pylist()
        fl = t.column("flags").to_numpy()[rows].tolist()
        sr = t.column("script_rank").to_numpy()[rows].tolist()
        q = t.column("quality").to_numpy()[rows].tolist()
        ln = t.column("length").to_numpy()[rows].tolist()
        for r, h, uid, name, f, s, qq, n in zip(rows.tolist(), eh[rows].tolist(), ids, names, fl, sr, q, ln):
            ent = out.get(h)
            if ent is None:
                ent = out[h] = _Entity(name, (f, s, -qq, name), fi, paragraphs=[])
            elif ent.name != name:
                raise ValueError(f"64-bit id hash collision between {ent.name!r} and {name!r}")
            elif ent.file != fi:
                raise ValueError(f"entity {name!r} has units in two signature files; keep a document's items in one shard")
            if uid == name:
                ent.whole = r
            elif n >= lo:
                ent.paragraphs.append(r)
    for ent in out.values():
        if ent.whole < 0:
            raise ValueError(f"entity {ent.name!r} has no unit of its own (id == entity): its own text is needed")
    return out


class _Verifier:
    """Exact scores of entity pairs, computed block by block (pairs grouped by their two files)."""

    def __init__(self, sig_paths: Sequence[Path], entities: dict[int, _Entity], cfg: DedupConfig) -> None:
        self.paths = list(sig_paths)
        self.ent = entities
        self.cfg = cfg
        # (lo, hi) eh -> (est, j, c_lo_hi, c_hi_lo, rel, paragraph_j, paragraph_c) | None
        self.results: dict[tuple[int, int], tuple | None] = {}
        self.units_scored = 0
        self.rows_read = 0
        # Shingle sets are the expensive part (strip + hash): keep the most recently used ones, up to
        # a byte budget, so a row needed by pairs in several file blocks or rounds is shingled once
        # (on the 100 MB crawl bench the reduce re-shingled rows per block: 5+ min, now seconds).
        self.cache: OrderedDict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self.cache_bytes = 0
        self.cache_budget = _SHINGLE_CACHE_BYTES

    def _load(self, fi: int, rows: set[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Shingles and signatures of some rows of one file: cached ones from the cache, the rest
        read from only their row groups."""
        out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        missing = []
        for r in rows:
            hit = self.cache.get((fi, r))
            if hit is None:
                missing.append(r)
            else:
                self.cache.move_to_end((fi, r))
                out[r] = hit
        if missing:
            for r, val in self._read(fi, missing).items():
                out[r] = val
                self.cache[(fi, r)] = val
                self.cache_bytes += val[0].nbytes + val[1].nbytes
            while self.cache_bytes > self.cache_budget and len(self.cache) > len(out):
                _, (sh, sg) = self.cache.popitem(last=False)
                self.cache_bytes -= sh.nbytes + sg.nbytes
        return out

    def _read(self, fi: int, rows: Sequence[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        pf = pq.ParquetFile(self.paths[fi])
        bounds = np.cumsum([0] + [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)])
        want = np.array(sorted(rows), np.int64)
        groups = sorted(set((np.searchsorted(bounds, want, side="right") - 1).tolist()))
        t = pf.read_row_groups(groups, columns=["text", "signature"])
        # row index in the file -> row index in the table of the groups read
        base = np.cumsum([0] + [int(bounds[g + 1] - bounds[g]) for g in groups])
        local = np.empty(want.size, np.int64)
        for k, g in enumerate(groups):
            sel = (want >= bounds[g]) & (want < bounds[g + 1])
            local[sel] = want[sel] - bounds[g] + base[k]
        idx = pa.array(local, pa.int64())
        texts = t.column("text").take(idx).to_pylist()
        sig = t.column("signature").take(idx)
        width = sig.type.list_size
        mat = sig.combine_chunks().flatten().to_numpy(zero_copy_only=False).reshape(-1, width)
        self.rows_read += want.size
        out = {}
        for k, (r, x) in enumerate(zip(want.tolist(), texts)):
            sh, sg = shingle_hashes(x, self.cfg), mat[k].copy()
            if sh.size and (sg == _EMPTY_SIG).all():  # a unit too short to band was not signed
                sg = signature_matrix([sh], self.cfg)[0]
            out[r] = (sh, sg)
        return out

    def score(self, pairs: Sequence[tuple[int, int]]) -> None:
        """Score pairs not yet scored.  Per file fa (in order), the rows of fa that any pair needs are
        loaded once; then per partner file fb, only the rows that pairs with fa need: memory is two
        shards' candidate rows at most, and each file is opened once per partner file."""
        todo = sorted({(min(a, b), max(a, b)) for a, b in pairs} - self.results.keys())
        blocks: dict[int, dict[int, list[tuple[int, int]]]] = {}
        for a, b in todo:
            fa, fb = sorted((self.ent[a].file, self.ent[b].file))
            blocks.setdefault(fa, {}).setdefault(fb, []).append((a, b))
        for fa in sorted(blocks):
            need_a: set[int] = set()
            for block in blocks[fa].values():
                for a, b in block:
                    for h in (a, b):
                        if self.ent[h].file == fa:
                            need_a.update(self.ent[h].compared_rows())
            units = {fa: self._load(fa, need_a)}
            for fb in sorted(blocks[fa]):
                block = blocks[fa][fb]
                if fb != fa:
                    need_b = {r for a, b in block for h in (a, b) if self.ent[h].file == fb for r in self.ent[h].compared_rows()}
                    units[fb] = self._load(fb, need_b)
                for a, b in block:
                    self.results[(a, b)] = self._score(units, a, b)
                if fb != fa:
                    del units[fb]

    def _score(self, units, a: int, b: int):
        """The two entities' own scores (whole texts) decide near_duplicate / reuse; the best paragraph
        pair (by containment, then Jaccard) is reported beside them and, when only it passes,
        makes the pair paragraph_reuse.  None: not a duplicate at all."""
        ea, eb = self.ent[a], self.ent[b]
        sa, ga = units[ea.file][ea.whole]
        sb, gb = units[eb.file][eb.whole]
        if not sa.size or not sb.size:
            return None
        self.units_scored += 1
        j, cab, cba = compare_sets(sa, sb)
        rel = relation(self.cfg, j, cab, cba)
        best_key, pj, pc, prel = None, j, max(cab, cba), rel
        ra_list, rb_list = ea.paragraph_rows(), eb.paragraph_rows()
        if ra_list != [ea.whole] or rb_list != [eb.whole]:
            for ra in ra_list:
                pa_, _ = units[ea.file][ra]
                if not pa_.size:
                    continue
                for rb in rb_list:
                    pb_, _ = units[eb.file][rb]
                    if not pb_.size:
                        continue
                    self.units_scored += 1
                    uj, uab, uba = compare_sets(pa_, pb_)
                    key = (max(uab, uba), uj)
                    if best_key is None or key > best_key:
                        best_key, pj, pc, prel = key, uj, max(uab, uba), relation(self.cfg, uj, uab, uba)
            if best_key is None:
                pj = pc = prel = None
        if rel is None and prel is not None:
            rel = "paragraph_reuse"
        if rel is None:
            return None
        return (np.count_nonzero(ga == gb) / ga.size, j, cab, cba, rel, pj, pc)


# -- phase 4: clusters -----------------------------------------------------------------------


def _near_components(ver: _Verifier) -> dict[int, int]:
    """entity -> component label (smallest member hash) over the verified near-duplicate pairs."""
    near = sorted(p for p, r in ver.results.items() if r is not None and r[4] == "near_duplicate")
    nodes = sorted({h for p in near for h in p})
    pos = {h: i for i, h in enumerate(nodes)}
    uf = UnionFind(len(nodes))
    for a, b in near:
        uf.union(pos[a], pos[b])
    return {nodes[i]: nodes[c[0]] for c in uf.components() for i in c}


def _clusters(deferred: Sequence[tuple[int, int]], ver: _Verifier) -> dict[int, int]:
    """entity -> representative, for members of clusters of >= 2 (no chaining; see module doc).

    Candidates whose two sides were already connected by verified near-duplicate pairs
    (``deferred``) were not scored: they cannot change the components.  They are scored here only
    when both sides are left over from one component after its representative took its members,
    so the split of the remainder is the same as if every candidate had been scored first.
    """
    near = [(a, b) for (a, b), r in ver.results.items() if r is not None and r[4] == "near_duplicate"]
    nodes = sorted({h for p in near for h in p})
    if not nodes:
        return {}
    rank = {h: ver.ent[h].rank for h in set(nodes) | {h for p in deferred for h in p}}
    adj: dict[int, set[int]] = {}
    for a, b in near:
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    waiting: dict[int, list[int]] = {}
    for a, b in deferred:
        waiting.setdefault(a, []).append(b)

    def components(members: set[int]) -> list[list[int]]:
        order = sorted(members, key=rank.__getitem__)
        pos = {h: i for i, h in enumerate(order)}
        uf = UnionFind(len(order))
        for h in order:
            for g in adj.get(h, ()):
                if g in pos:
                    uf.union(pos[h], pos[g])
        return [[order[i] for i in c] for c in uf.components() if len(c) > 1]

    rep_of: dict[int, int] = {}
    pending = components(set(nodes))
    while pending:
        ver.score([(m, c[0]) for c in pending for m in c[1:]])  # members list in rank order: c[0] is the representative
        rests = []
        for c in pending:
            rep, rest = c[0], set()
            for m in c[1:]:
                r = ver.results[(min(m, rep), max(m, rep))]
                if r is not None and r[4] == "near_duplicate":
                    rep_of[m] = rep
                    rep_of[rep] = rep
                else:
                    rest.add(m)
            if len(rest) > 1:
                rests.append(rest)
        todo = [(a, b) for rest in rests for a in sorted(rest) for b in waiting.get(a, ()) if b in rest]
        ver.score(todo)
        for a, b in todo:
            r = ver.results[(a, b)]
            if r is not None and r[4] == "near_duplicate":
                adj.setdefault(a, set()).add(b)
                adj.setdefault(b, set()).add(a)
        pending = [c for rest in rests for c in components(rest)]
    return rep_of


# -- the corpus-level call -------------------------------------------------------------------


def find_duplicates(sig_paths: Sequence[Path], level: str, cfg: DedupConfig, work: Path) -> DedupOutcome:
    """Pairs and clusters of one level from every shard's signature file (see module docstring)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    work = Path(work)
    sig_paths = [Path(p) for p in sig_paths]
    lo = min_length(cfg, level)
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}
    t, c = time.perf_counter(), time.process_time()

    band_dir = work / f"{level}.bands"
    shutil.rmtree(band_dir, ignore_errors=True)
    band_dir.mkdir(parents=True)
    parts = _partition_count(sig_paths, cfg)
    items = skipped = 0
    for fi, path in enumerate(sig_paths):
        s = _write_bands(fi, path, cfg, lo, parts, band_dir)
        items += s["items"]
        skipped += s["skipped_short"]
    seconds["bands"], cpu["bands"] = time.perf_counter() - t, time.process_time() - c
    t, c = time.perf_counter(), time.process_time()

    star_parts, other_parts = zip(*[_partition_candidates(band_dir, len(sig_paths), p, cfg.max_bucket) for p in range(parts)])
    star = _unique_pairs(np.concatenate(star_parts))
    other = _unique_pairs(np.concatenate(other_parts))
    shutil.rmtree(band_dir, ignore_errors=True)
    seconds["candidates"], cpu["candidates"] = time.perf_counter() - t, time.process_time() - c
    t, c = time.perf_counter(), time.process_time()

    entities = _load_entities(sig_paths, np.unique(np.concatenate((star.reshape(-1), other.reshape(-1)))), lo)
    ver = _Verifier(sig_paths, entities, cfg)
    star_list = [tuple(p) for p in star.tolist()]
    ver.score(star_list)
    other_list = sorted({tuple(p) for p in other.tolist()} - set(star_list))
    linked = _near_components(ver)
    deferred = [(a, b) for a, b in other_list if a in linked and linked.get(a) == linked.get(b)]
    ver.score([(a, b) for a, b in other_list if not (a in linked and linked.get(a) == linked.get(b))])
    seconds["verify"], cpu["verify"] = time.perf_counter() - t, time.process_time() - c
    t, c = time.perf_counter(), time.process_time()

    rep_of = _clusters(deferred, ver)
    seconds["cluster"], cpu["cluster"] = time.perf_counter() - t, time.process_time() - c
    t, c = time.perf_counter(), time.process_time()

    rows = _pair_rows(ver, rep_of, cfg, level)
    pairs_path = work / f"{level}.duplicates.parquet"
    _write(_pairs_table(rows), pairs_path)
    members: dict[int, list[int]] = {}
    for m, r in rep_of.items():
        members.setdefault(r, []).append(m)
    crow = sorted(
        (entities[m].name, entities[r].name, None if m == r else entities[r].name, len(members[r]))
        for m, r in rep_of.items()
    )
    clusters_path = work / f"{level}.clusters.parquet"
    _write(pa.Table.from_pylist([dict(zip(CLUSTERS.names, c)) for c in crow], schema=CLUSTERS), clusters_path)
    seconds["write"], cpu["write"] = time.perf_counter() - t, time.process_time() - c

    stats = {
        "items": items,
        "skipped_short": skipped,
        "partitions": parts,
        "candidates": len(star_list) + len(other_list),
        "verified_pairs": len(ver.results),  # exact comparisons: candidates inside a verified component wait
        "rows_read_for_verify": ver.rows_read,
        "near_duplicate": sum(r.relation == "near_duplicate" for r in rows),
        "reuse": sum(r.relation == "reuse" for r in rows),
        "paragraph_reuse": sum(r.relation == "paragraph_reuse" for r in rows),
        "clusters_with_duplicates": len(members),
        "largest_cluster": max((len(v) for v in members.values()), default=0),
        "seconds": {k: round(v, 6) for k, v in seconds.items()},
        "cpu_seconds": {k: round(v, 6) for k, v in cpu.items()},  # what MB/s per core should use on a busy machine
    }
    return DedupOutcome(pairs_path, clusters_path, stats)


def _pair_rows(ver: _Verifier, rep_of: dict[int, int], cfg: DedupConfig, level: str) -> list[DuplicatePair]:
    ent = ver.ent

    def row(a: int, b: int, r: tuple) -> DuplicatePair:
        est, j, cab, cba, rel, pj, pc = r
        na, nb = ent[a].name, ent[b].name
        if nb < na:
            na, nb, cab, cba = nb, na, cba, cab
        if level == "document":
            pj = pc = None
        return DuplicatePair(level, na, nb, est, j, cab, cba, rel, pj, pc)

    fixed: list[DuplicatePair] = []
    extra: list[tuple[tuple[str, str], int, int, DuplicatePair]] = []
    for (a, b), r in ver.results.items():
        if r is None:
            continue
        ra, rb = rep_of.get(a), rep_of.get(b)
        same = ra is not None and ra == rb
        if same and (ra in (a, b)):
            fixed.append(row(a, b, r))  # member against its representative: always written
        elif same:
            continue  # two members of one cluster: recoverable (module docstring)
        else:
            p = row(a, b, r)
            extra.append(((p.a_id, p.b_id), a, b, p))
    # Whole-text relations take the per-item budget first, then paragraph reuse (a long section
    # shares paragraphs with many others), each in (a_id, b_id) order.
    budget: dict[int, int] = {}
    for _, a, b, p in sorted(extra, key=lambda x: (x[3].relation == "paragraph_reuse", x[0])):
        ba, bb = budget.get(a, cfg.extra_pairs_per_item), budget.get(b, cfg.extra_pairs_per_item)
        if ba <= 0 and bb <= 0:
            continue
        budget[a], budget[b] = ba - 1, bb - 1
        fixed.append(p)
    fixed.sort(key=lambda p: (p.a_id, p.b_id))
    return fixed


def _pairs_table(rows: Sequence[DuplicatePair]) -> pa.Table:
    cols = {f.name: [getattr(p, f.name) for p in rows] for f in schemas.DUPLICATES}
    return pa.Table.from_pydict(cols, schema=schemas.DUPLICATES)


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
