"""Phases 2-3 of the dedup reduce: candidate pairs from band buckets, then gathered by range.

**Candidates** (:func:`candidates_task`, one task per group of band partitions, one partition in
memory at a time): a partition's band rows from every band task are sorted by (key, entity); a
bucket of up to ``max_bucket`` entities gives all its pairs, a larger one a star to its smallest
member plus a chain (linear).  Pairs inside one group (document) are dropped.  The result per
partition: *star* pairs (each bucket's first member with the others) and *other* pairs, each a
sorted unique array of (a, b, loc_a, loc_b) with a < b by entity hash (:data:`PAIR`), in runs: a
task expands and holds a number of pairs set by ``dedup.partition_rows``, however large the
buckets' families are.

**Gathered by range** (:func:`gather_task`, one task per range of the first entity's hash): a pair
is found again in every band its two entities share, in any partition, so the range's slice of
every partition's runs (memory-mapped: only the slice is read) is merged into one unique set,
star pairs first (a pair that is a star anywhere is a star).  Each range also lists the entities
its pairs need (hash and location), which the spill phase reads -- so every later task is keyed
by range and holds only its share of the pairs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Generator, Sequence

import numpy as np

from corpuspipe.stages.dedup import kernels
from corpuspipe.stages.dedup.bands import BAND_ROW
from corpuspipe.stages.dedup.shingles import mix64

PAIR = 4  # uint64 columns of a candidate pair: a, b (entity hashes, a < b), loc_a, loc_b
EMPTY_PAIRS = np.empty((0, PAIR), np.uint64)


def bucket_pairs(starts: np.ndarray, sizes: np.ndarray, max_bucket: int) -> tuple[np.ndarray, np.ndarray]:
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


def unique_pairs(p: np.ndarray) -> np.ndarray:
    """Rows of ``p`` (pairs with their locations) unique by (a, b), sorted by (a, b)."""
    if not p.size:
        return p.reshape(0, p.shape[1] if p.ndim == 2 else PAIR)
    order = np.lexsort((p[:, 1], p[:, 0]))
    p = p[order]
    keep = np.ones(len(p), bool)
    keep[1:] = (p[1:, 0] != p[:-1, 0]) | (p[1:, 1] != p[:-1, 1])
    return p[keep]


def minus(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Rows of sorted unique ``p`` whose (a, b) are not in sorted unique ``q``."""
    if not p.size or not q.size:
        return p
    kp = p[:, :2].copy().view([("a", "<u8"), ("b", "<u8")]).reshape(-1)
    kq = q[:, :2].copy().view([("a", "<u8"), ("b", "<u8")]).reshape(-1)
    i = np.minimum(np.searchsorted(kq, kp), kq.size - 1)
    return p[kq[i] != kp]


# Buckets of at least this many members are remembered by ``SeenBuckets``; smaller ones are always
# expanded (at most 21 pairs each, however often they recur).  Remembering every multi-member bucket
# held the 1 GB crawl's 13.2M section buckets (~99 % of them 2-3 members, nearly all distinct): the
# reduce's candidates phase went from 393 MB and 37 CPU s to 1,111 MB and 76 s, and the process
# tree to 1,543 MB.  That crawl has ~7,900 buckets of 8 or more members.
SEEN_MIN_MEMBERS = 8


class SeenBuckets:
    """128-bit fingerprints of the large bucket member sets already expanded into pairs (one task).

    Exact copies share every band, so one family's member set comes back in up to ``bands``
    buckets, each expanded again into the same pairs: the single 200 MB file of issue 11 (each
    report ~92 times, under ``max_bucket``) made ~60M pair rows per partition, 275 CPU s and a
    1.84 GB peak, for 1.8M unique candidates.  A bucket whose member set was seen is skipped: its
    pairs (star and other alike: both follow from the sorted members) are already in the set.
    Only sets of ``SEEN_MIN_MEMBERS`` or more are kept: each stands for at least 28 pairs of the
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


def bucket_fingerprints(eh: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two independent 64-bit sums over each bucket's (distinct) members: its member set's key."""
    with np.errstate(over="ignore"):
        f1 = np.add.reduceat(mix64(eh, seed=101), starts) ^ mix64(sizes.astype(np.uint64), seed=103)
        f2 = np.add.reduceat(mix64(eh, seed=202), starts) ^ mix64(sizes.astype(np.uint64), seed=203)
    return f1, f2


# Unique pairs a task holds before it writes them out as a run: set by config
# (``RUN_BUDGET_PER_ROW`` x ``dedup.partition_rows``), never by the corpus.  A dup-heavy corpus
# (families of ~100 near copies, 50 MB) expanded 22M pair rows in one partition for 364k unique
# pairs (a family's pair comes back in most of its 74 bands, in member sets that differ by an
# edit, so ``SeenBuckets`` cannot skip them): 16.8 CPU s and a 1.6 GB worker, as four uint64
# columns sorted by ``np.lexsort``.  The pairs are now made per entity (``kernels.entity_pairs``):
# each found once, runs already sorted by (a, b) and disjoint.
RUN_BUDGET_PER_ROW = 4


def partition_candidate_runs(rows: np.ndarray, max_bucket: int, seen: SeenBuckets | None = None,
                             budget_rows: int = 1_000_000) -> Generator[tuple[np.ndarray, np.ndarray], None, None]:
    """(star, other) runs of one partition's band rows ((n, 4) uint64): each a sorted unique array of
    pairs with locations (:data:`PAIR`), about ``RUN_BUDGET_PER_ROW * budget_rows`` pairs; runs
    follow each other in (a, b) order, and a pair that is a star in one bucket is not an other
    pair.  Memory: the partition's rows (``budget_rows`` at most) and one run."""
    if not rows.size:
        return
    # by key, then entity, in place (a compiled sort: two stable numpy argsorts were ~0.46 s per
    # 10^6 rows, all of this phase); rows equal in both are one entity, kept once just below
    kernels.sort_band_rows(rows)
    key, eh, gh, loc = (rows[:, c].copy() for c in range(BAND_ROW))  # contiguous: strided
    del rows  # gathers and compares ran the partition 2x slower (measured)
    # one row per (bucket, entity): several paragraphs of one section may share a bucket
    keep = np.ones(key.size, bool)
    keep[1:] = (key[1:] != key[:-1]) | (eh[1:] != eh[:-1])
    key, eh, gh, loc = key[keep], eh[keep], gh[keep], loc[keep]
    starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    sizes = np.diff(np.append(starts, key.size))
    multi = sizes >= 2
    starts, sizes = starts[multi], sizes[multi]
    if seen is not None and starts.size:  # a large member set expanded before (another band): same pairs
        big = np.flatnonzero(sizes >= SEEN_MIN_MEMBERS)
        if big.size:
            first = np.ones(starts.size, bool)
            first[big] = seen.first_seen(*bucket_fingerprints(eh, starts[big], sizes[big]))
            starts, sizes = starts[first], sizes[first]
    if not starts.size:
        return
    # entities by local index (the order of their hashes: a < b inside a bucket sorted by hash);
    # a pair is one uint64, (local index of a) << 32 | (local index of b), so runs sort by (a, b)
    ents, first_row, local = np.unique(eh, return_index=True, return_inverse=True)
    if ents.size >= 1 << 32:
        raise ValueError("a band partition with 2^32 entities: lower dedup.partition_rows")
    ent_gh, ent_loc = gh[first_row], loc[first_row]
    if (ent_loc[local] != loc).any():  # one hash at two places: stop, never merge two texts
        check_one_location(eh, loc)
    local = local.astype(np.uint32).reshape(-1)
    n_rows, n_ents = local.size, ents.size
    del key, eh, gh, loc
    row_start = np.full(n_rows, -1, np.int64)
    row_size = np.zeros(n_rows, np.int64)
    member = np.repeat(np.arange(starts.size), sizes)
    at = np.repeat(starts, sizes) + (np.arange(member.size) - np.repeat(np.cumsum(sizes) - sizes, sizes))
    row_start[at], row_size[at] = starts[member], sizes[member]
    del member, at
    by_ent = np.argsort(local, kind="stable").astype(np.int64)
    ent_ptr = np.zeros(n_ents + 1, np.int64)
    np.cumsum(np.bincount(local, minlength=n_ents), out=ent_ptr[1:])
    budget = max(1, RUN_BUDGET_PER_ROW * budget_rows)
    stamp = np.full(n_ents, -1, np.int64)
    flag = np.zeros(n_ents, np.uint8)
    nb = np.empty(n_ents, np.uint32)
    star_out = np.empty(budget + n_ents, np.uint64)
    other_out = np.empty(budget + n_ents, np.uint64)

    def decoded(k: np.ndarray) -> np.ndarray:
        a, b = (k >> np.uint64(32)).astype(np.int64), (k & np.uint64(0xFFFFFFFF)).astype(np.int64)
        return np.stack((ents[a], ents[b], ent_loc[a], ent_loc[b]), axis=1)

    e = 0
    while e < n_ents:
        n_star, n_other, e = kernels.entity_pairs(local, row_start, row_size, by_ent, ent_ptr, ent_gh, max_bucket,
                                                  e, budget, stamp, flag, nb, star_out, other_out)
        if n_star or n_other:
            yield decoded(star_out[:n_star]), decoded(other_out[:n_other])


def partition_candidates(rows: np.ndarray, max_bucket: int, seen: SeenBuckets | None = None,
                         budget_rows: int = 1_000_000) -> tuple[np.ndarray, np.ndarray]:
    """(star, other) unique pairs with locations of one partition's band rows ((n, 4) uint64), no
    pair in both: its runs (:func:`partition_candidate_runs`) one after the other."""
    runs = list(partition_candidate_runs(rows, max_bucket, seen, budget_rows))
    return tuple(np.concatenate([EMPTY_PAIRS] + [r[k] for r in runs]) for k in (0, 1))  # type: ignore[return-value]


def candidates_task(parts: Sequence[int], band_dir: str, max_bucket: int, out_dir: str,
                    budget_rows: int = 1_000_000) -> dict:
    """Star and other pairs of each partition in ``parts``, as sorted unique runs
    (``<out_dir>/<p>.<run>.star.npy``, ``.other.npy``), one partition in memory at a time; returns
    how many of each (a pair in two partitions counts twice) and their :func:`pair_histogram`."""
    seen = SeenBuckets()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_star = n_other = 0
    hist = np.zeros(1 << HIST_BITS, np.int64)
    for p in parts:
        folder = Path(band_dir) / f"{p:05d}"
        files = sorted(folder.glob("*.bands")) if folder.is_dir() else []
        rows = np.concatenate([np.fromfile(f, np.uint64) for f in files]).reshape(-1, BAND_ROW) if files \
            else np.empty((0, BAND_ROW), np.uint64)
        for k, (star, other) in enumerate(partition_candidate_runs(rows, max_bucket, seen, budget_rows)):
            np.save(out / f"{p:05d}.{k:03d}.star.npy", star)
            np.save(out / f"{p:05d}.{k:03d}.other.npy", other)
            n_star += len(star)
            n_other += len(other)
            hist += pair_histogram(star, other)
        del rows
    return {"star": n_star, "other": n_other, "hist": hist}


def check_one_location(eh: np.ndarray, loc: np.ndarray) -> None:
    """Every entity hash must name one place (one own unit in one signature file): a hash at two
    places is a 64-bit id hash collision (probability ~3e-8 for 10^6 ids) or one document's items
    split over two shards; either way two texts would be merged, so it is an error."""
    if eh.size < 2:
        return
    order = np.lexsort((loc, eh))
    e, l_ = eh[order], loc[order]
    bad = np.flatnonzero((e[1:] == e[:-1]) & (l_[1:] != l_[:-1]))
    if bad.size:
        raise ValueError(f"entity hash {int(e[bad[0]]):#x} names units in two places (a 64-bit id hash collision, "
                         "or one document's items in two shards)")


def hash_ranges(n: int) -> list[tuple[int, int]]:
    """``n`` contiguous ranges [lo, hi) covering all 64-bit entity hashes (the last ends at 2**64)."""
    bounds = [(k << 64) // n for k in range(n + 1)]
    return [(bounds[k], bounds[k + 1]) for k in range(n)]


HIST_BITS = 12  # pairs counted per 1/4096 of the hash space, to cut ranges of equal work


def pair_histogram(*pairs: np.ndarray) -> np.ndarray:
    """How many pairs have their first entity hash in each of the 2**HIST_BITS slices of the space."""
    shift = np.uint64(64 - HIST_BITS)
    return sum((np.bincount((p[:, 0] >> shift).astype(np.int64), minlength=1 << HIST_BITS) for p in pairs),
               np.zeros(1 << HIST_BITS, np.int64))


def balanced_ranges(hist: np.ndarray, n: int) -> list[tuple[int, int]]:
    """At most ``n`` contiguous ranges covering all 64-bit hashes, cut at slice bounds so each holds
    about the same number of pairs (``hist``: :func:`pair_histogram`).  Equal slices of the space
    were not equal work: a bucket's star pairs all start at its smallest hash, so the low ranges
    held the large families' stars (dup-heavy corpus: one of 8 star tasks had 60 % of the CPU)."""
    total = int(hist.sum())
    if total == 0 or n <= 1:
        return hash_ranges(max(1, n))
    cum = np.cumsum(hist)
    cuts = np.searchsorted(cum, total * np.arange(1, n) / n, side="left") + 1
    cuts = np.unique(cuts[(cuts > 0) & (cuts < hist.size)])
    bounds = [0] + [int(c) << (64 - HIST_BITS) for c in cuts.tolist()] + [1 << 64]
    return [(bounds[k], bounds[k + 1]) for k in range(len(bounds) - 1)]


def _slice(path: Path, lo: int, hi: int) -> np.ndarray:
    arr = np.load(path, mmap_mode="r")
    if not arr.size:
        return EMPTY_PAIRS
    first = arr[:, 0]
    a = int(np.searchsorted(first, np.uint64(lo), side="left"))
    b = int(np.searchsorted(first, np.uint64(hi - 1), side="right"))
    return np.array(arr[a:b])


def gather_task(q: int, lo: int, hi: int, cand_dir: str, parts: int, out_dir: str) -> dict:
    """The unique star and other pairs whose first entity hash is in [lo, hi), from every partition
    (``<out_dir>/q<q>.star.npy``, ``.other.npy``), and the entities they need
    (``<out_dir>/q<q>.need.npy``: hash and location, sorted by location)."""
    cdir, out = Path(cand_dir), Path(out_dir)
    runs = sorted(cdir.glob("*.star.npy")) if cdir.is_dir() else []  # every partition's runs
    star = unique_pairs(np.concatenate([EMPTY_PAIRS] + [_slice(f, lo, hi) for f in runs]))
    other = unique_pairs(np.concatenate([EMPTY_PAIRS] + [_slice(f.with_name(f.name.replace(".star.", ".other.")), lo, hi)
                                                         for f in runs]))
    other = minus(other, star)
    both = np.concatenate((star, other))
    need = np.concatenate((both[:, [0, 2]], both[:, [1, 3]]))
    need = need[np.lexsort((need[:, 0], need[:, 1]))]  # by location, then hash
    if need.size:
        keep = np.ones(len(need), bool)
        keep[1:] = (need[1:, 0] != need[:-1, 0]) | (need[1:, 1] != need[:-1, 1])
        need = need[keep]
        check_one_location(need[:, 0], need[:, 1])
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / f"q{q:04d}.star.npy", star)
    np.save(out / f"q{q:04d}.other.npy", other)
    np.save(out / f"q{q:04d}.need.npy", need.reshape(-1, 2))
    return {"star": len(star), "other": len(other), "entities": len(need)}
