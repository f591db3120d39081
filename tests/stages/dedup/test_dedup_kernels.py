"""The compiled dedup loops (stages/dedup/kernels.py) give the numbers of the numpy code they replaced.

The references below are that numpy code, kept here verbatim as the specification: MinHash as one
``(perm x shingles)`` matrix and ``minimum.reduceat``; band keys as a uint64 polynomial over a
strided cube then ``mix64``; intersections by ``np.intersect1d``.  Inputs are real text (the
2013-2017 government work reports in tests/data/dedup, cut into paragraphs and sections) plus
hypothesis-drawn arrays for the edges (empty sets, one shingle, all equal).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.helpers import paths

from corpuspipe.config import DedupConfig
from corpuspipe.stages.dedup import kernels
from corpuspipe.stages.dedup.minhash import (
    _bandings,
    _permutations,
    _signatures_by_sets,
    char_signatures,
    band_matrix,
    compare_sets,
    signature_matrix,
)
from corpuspipe.stages.dedup.shingles import mix64, shingle_batches

DATA = paths.DATA / "dedup" / "gov_reports_2013_2017.jsonl"
CFG = DedupConfig()


def _texts() -> list[str]:
    out = []
    for line in DATA.read_text(encoding="utf-8").splitlines():
        content = json.loads(line)["content"]
        paras = [p for p in content.split("\n") if p.strip()]
        out.extend(paras)  # paragraphs: ~20 to ~2,000 characters
        out.extend("\n".join(paras[i : i + 7]) for i in range(0, len(paras), 7))  # section-sized
    return out


@pytest.fixture(scope="module")
def shingle_sets() -> list[np.ndarray]:
    texts = _texts()
    hv, counts = shingle_batches(texts, CFG)
    sets = np.split(hv, np.cumsum(counts)[:-1])
    assert len(sets) > 500 and sum(s.size for s in sets) > 100_000
    return sets


def _minhash_numpy(sets: list[np.ndarray], cfg: DedupConfig) -> np.ndarray:
    a, b = _permutations(cfg)
    sig = np.full((len(sets), cfg.num_perm), np.uint32(0xFFFFFFFF), np.uint32)
    for i, s in enumerate(sets):
        if s.size:
            x = s.astype(np.uint32)
            m = a[:, None] * x[None, :]
            m += b[:, None]
            sig[i] = m.min(axis=1)
    return sig


def _bands_numpy(mat: np.ndarray, cfg: DedupConfig) -> np.ndarray:
    mat = mat.astype(np.uint64)
    out = []
    for nb, nr in _bandings(cfg):
        cube = mat[:, : nb * nr].reshape(mat.shape[0], nb, nr)
        h = np.zeros((mat.shape[0], nb), np.uint64)
        with np.errstate(over="ignore"):
            for k in range(nr):
                h = h * np.uint64(0x100000001B3) + cube[:, :, k]
        out.append(mix64(h, seed=cfg.seed + nr))
    return np.concatenate(out, axis=1)


def test_minhash_kernel_equals_the_numpy_matrix_on_real_text(shingle_sets):
    sets = shingle_sets + [np.empty(0, np.uint64)]  # an empty set: all 0xFFFFFFFF, never banded
    for cfg in (CFG, DedupConfig(num_perm=64, seed=7)):
        got = signature_matrix(sets, cfg)
        want = _minhash_numpy(sets, cfg)
        assert got.dtype == np.uint32 and np.array_equal(got, want)
        assert (got[-1] == 0xFFFFFFFF).all()


def test_char_signatures_equal_the_shingle_sets_path_on_real_text():
    """The one-loop signatures (shingles made distinct by a hash set, never sorted) give the
    lengths, distinct-shingle counts and MinHash matrix of shingle_batch + signature_matrix, for
    documents and paragraphs of real reports, Traditional copies, and every size at the edges."""
    texts = _texts()
    from corpuspipe.zh.opencc import converter

    s2t = converter("s2t")
    texts += [s2t.convert(t) for t in texts[:40]]  # Traditional: shingled through the t2s table
    texts += ["", "。。，", "一", "一二", "一二三四", "一二三四五", "a b", "哈哈哈哈哈哈哈哈", "ａｂｃ１２３", "\n\n", "🀄🀄字字"]
    for cfg, min_len in ((CFG, 0), (CFG, 50), (DedupConfig(num_perm=64, seed=7, ngram=3), 1),
                         (DedupConfig(ngram=1), 0), (DedupConfig(ngram=9), 200)):
        want = _signatures_by_sets(texts, cfg, min_len)
        got = char_signatures(texts, cfg, min_len)
        for g, w in zip(got, want):
            assert np.array_equal(g, w)
        assert got[1].sum() > 10_000 and (got[2][got[1] == 0] == 0xFFFFFFFF).all()


def test_char_minhash_keeps_the_hash_value_zero_apart():
    """0 marks a free slot of the kernel's hash set, so a shingle whose hash is 0 is counted aside:
    with 1-grams and seed_add = -(ord("a") + 1), mix64(0) = 0 is the hash of every "a"."""
    text = "abacab"
    raw = np.frombuffer(text.encode("utf-32-le"), np.uint32)
    table = np.arange(0x110000, dtype=np.uint32)
    a, b = _permutations(CFG)
    seed_add = 2**64 - (ord("a") + 1)
    sig = np.empty((1, CFG.num_perm), np.uint32)
    counts, lengths = np.empty(1, np.int64), np.empty(1, np.int64)
    kernels.char_minhash(raw, np.array([len(text)], np.int64), table, 1, 0x100000001B3, seed_add, 1, a, b, sig,
                         counts, lengths)
    with np.errstate(over="ignore"):
        hv = np.unique(mix64(raw.astype(np.uint64) + np.uint64(1) + np.uint64(seed_add), seed=0))
    assert 0 in hv.tolist() and counts[0] == hv.size == 3 and lengths[0] == 6
    assert np.array_equal(sig, _minhash_numpy([hv], CFG))


def test_band_keys_kernel_equals_the_numpy_polynomial(shingle_sets):
    for cfg in (CFG, DedupConfig(num_perm=64, seed=7, threshold=0.5)):
        sig = signature_matrix(shingle_sets[:3000], cfg)
        assert np.array_equal(band_matrix(sig, cfg), _bands_numpy(sig, cfg))
    assert band_matrix(np.empty((0, CFG.num_perm), np.uint32), CFG).shape[0] == 0


def test_compare_sets_merge_equals_intersect1d_on_real_pairs(shingle_sets):
    rng = np.random.default_rng(3)
    nonempty = [s for s in shingle_sets if s.size]
    for _ in range(2000):
        i, j = rng.integers(0, len(nonempty), 2)
        sa, sb = nonempty[i], nonempty[j]
        inter = np.intersect1d(sa, sb, assume_unique=True).size
        assert compare_sets(sa, sb) == (inter / (sa.size + sb.size - inter), inter / sa.size, inter / sb.size)
    s = nonempty[0]
    assert compare_sets(s, s) == (1.0, 1.0, 1.0)  # a text against itself (the neighbours above overlap)


@given(st.lists(st.integers(0, 2**64 - 1), max_size=60), st.lists(st.integers(0, 2**64 - 1), max_size=60))
@settings(max_examples=300, deadline=None)
def test_intersect_count_on_arbitrary_sorted_sets(xa, xb):
    a = np.unique(np.array(xa, np.uint64))
    b = np.unique(np.array(xb + xa[: len(xa) // 2], np.uint64))  # some shared values
    assert kernels.intersect_count(a, b) == np.intersect1d(a, b).size


@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 4), st.integers(0, 2**64 - 1), st.integers(0, 2**40)),
                max_size=300), st.booleans())
@settings(max_examples=300, deadline=None)
def test_sort_band_rows_orders_by_key_then_entity_and_keeps_every_row(rows, wide):
    """Small keys force big buckets and ties (a boilerplate bucket holds thousands of rows)."""
    a = np.array(rows, np.uint64).reshape(-1, 4)
    if wide:  # full-width hashes in the high bits too
        a[:, 0] = a[:, 0] * np.uint64(0x9E3779B97F4A7C15)
    want = a[np.lexsort((a[:, 1], a[:, 0]))]
    got = a.copy()
    kernels.sort_band_rows(got)
    assert np.array_equal(got[:, :2], want[:, :2])
    assert sorted(map(tuple, got.tolist())) == sorted(map(tuple, a.tolist()))


def _candidates_numpy(rows: np.ndarray, max_bucket: int) -> tuple[np.ndarray, np.ndarray]:
    """candidates.partition_candidates as it was with two stable numpy argsorts and every bucket's
    pairs expanded (the reference), a star pair left out of the other pairs."""
    from corpuspipe.stages.dedup.candidates import bucket_pairs, unique_pairs

    key, eh, gh, loc = (rows[:, c].copy() for c in range(4))
    order = np.argsort(eh, kind="stable")
    order = order[np.argsort(key[order], kind="stable")]
    key, eh, gh, loc = key[order], eh[order], gh[order], loc[order]
    keep = np.ones(key.size, bool)
    keep[1:] = (key[1:] != key[:-1]) | (eh[1:] != eh[:-1])
    key, eh, gh, loc = key[keep], eh[keep], gh[keep], loc[keep]
    starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    sizes = np.diff(np.append(starts, key.size))
    star_idx, other_idx = bucket_pairs(starts[sizes >= 2], sizes[sizes >= 2], max_bucket)

    def clean(idx):
        idx = idx[gh[idx[:, 0]] != gh[idx[:, 1]]]
        i, j = idx[:, 0], idx[:, 1]
        return unique_pairs(np.stack((eh[i], eh[j], loc[i], loc[j]), axis=1))

    star, other = clean(star_idx), clean(other_idx)
    is_star = {tuple(r) for r in star[:, :2].tolist()}  # a star in any bucket is a star
    return star, other[np.array([tuple(r) not in is_star for r in other[:, :2].tolist()], bool).reshape(-1)]


def _band_rows(keys: np.ndarray, eh: np.ndarray, gh: np.ndarray) -> np.ndarray:
    """(n*b, 4) band rows of an (n, b) key matrix; an entity's location is derived from its hash."""
    n, b = keys.shape
    loc = eh >> np.uint64(20)
    return np.stack((keys.reshape(-1), np.repeat(eh, b), np.repeat(gh, b), np.repeat(loc, b)), axis=1)


def test_partition_candidates_equal_the_argsort_version_on_real_band_rows(shingle_sets):
    """Band rows of real section-sized texts (each text its own entity, every third pair of texts
    one group, plus repeated rows as several paragraphs of one section give): same candidates."""
    from corpuspipe.stages.dedup.candidates import partition_candidates
    from corpuspipe.stages.dedup.minhash import fold_band

    sig = signature_matrix(shingle_sets, CFG)
    keys = fold_band(band_matrix(sig, CFG))
    n, b = keys.shape
    eh = np.arange(n, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    gh = (np.arange(n, dtype=np.uint64) // np.uint64(3)) + np.uint64(1)
    rows = _band_rows(keys, eh, gh)
    rows = np.concatenate((rows, rows[: 5 * b]))  # the same entity twice in its buckets
    rows = rows[np.random.default_rng(5).permutation(len(rows))]
    for max_bucket in (100, 3):
        got = partition_candidates(rows.copy(), max_bucket)
        want = _candidates_numpy(rows, max_bucket)
        assert all(np.array_equal(g, w) for g, w in zip(got, want))
    assert got[0].size > 0  # the reports repeat phrases: some texts share buckets


@pytest.mark.parametrize("parts", [1, 7, 300])
def test_scatter_band_rows_equals_a_stable_sort_by_partition(shingle_sets, parts):
    """The band phase's counting sort gives the rows (and so the partition files' bytes) of the
    numpy version: each entity's hashes repeated per band, stable argsort by key mod parts."""
    from corpuspipe.stages.dedup.minhash import fold_band

    keys = fold_band(band_matrix(signature_matrix(shingle_sets[:2000], CFG), CFG))
    n, b = keys.shape
    rng = np.random.default_rng(parts)
    eh = rng.integers(0, 2**63, n, dtype=np.uint64)
    gh = rng.integers(0, 2**63, n, dtype=np.uint64)
    loc = rng.integers(0, 2**63, n, dtype=np.uint64)
    flat = keys.reshape(-1)
    part = flat % np.uint64(parts)
    order = np.argsort(part, kind="stable")
    want = np.stack((flat[order], np.repeat(eh, b)[order], np.repeat(gh, b)[order], np.repeat(loc, b)[order]), axis=1)
    got = np.empty((n * b, 4), np.uint64)
    offsets = np.empty(parts + 1, np.int64)
    kernels.scatter_band_rows(keys, eh, gh, loc, parts, got, offsets)
    assert got.tobytes() == want.tobytes()
    assert offsets.tolist() == np.searchsorted(part[order], np.arange(parts + 1, dtype=np.uint64)).tolist()
    with pytest.raises(ValueError):
        kernels.scatter_band_rows(keys, eh[:-1], gh, loc, parts, got, offsets)


def _copies_partition(keys: np.ndarray, copies: int) -> tuple[np.ndarray, int]:
    """Band rows of ``keys`` (texts x bands) repeated ``copies`` times, each copy an entity of its
    own group: every band of a text shared by its copies.  Returns the rows and the number of texts."""
    n, b = keys.shape
    eh = (np.arange(n * copies, dtype=np.uint64) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
    return _band_rows(np.tile(keys, (copies, 1)), eh, np.arange(n * copies, dtype=np.uint64)), n


def test_buckets_with_a_member_set_already_expanded_add_no_pair(shingle_sets):
    """Exact copies share every band: the same member set in many buckets.  Expanding it once gives
    the same candidates (the single 200 MB file of issue 11: 275 -> 5 CPU s, 1.84 GB -> 0.45 GB)."""
    from corpuspipe.stages.dedup.candidates import SEEN_MIN_MEMBERS, SeenBuckets, partition_candidates
    from corpuspipe.stages.dedup.minhash import fold_band

    keys = fold_band(band_matrix(signature_matrix(shingle_sets[:400], CFG), CFG))
    rows, n = _copies_partition(keys, SEEN_MIN_MEMBERS + 1)
    for max_bucket in (100, 3):  # all pairs, and star + chain
        plain = partition_candidates(rows.copy(), max_bucket)
        seen = SeenBuckets()
        once = partition_candidates(rows.copy(), max_bucket, seen)
        assert all(np.array_equal(x, y) for x, y in zip(plain, once)) and plain[0].size + plain[1].size > n
        again = partition_candidates(rows.copy(), max_bucket, seen)  # every member set seen: nothing new
        assert again[0].size == 0 and again[1].size == 0


def test_small_member_sets_are_expanded_each_time_and_not_remembered():
    """Sets under ``SEEN_MIN_MEMBERS`` are never remembered (the 1 GB crawl's 13M section buckets of
    2-3 members, all remembered, grew the reduce by 0.7 GB) and give the same pairs every time."""
    from corpuspipe.stages.dedup.candidates import SEEN_MIN_MEMBERS, SeenBuckets, partition_candidates

    keys = np.random.default_rng(7).integers(0, 2**63, size=(200, 9), dtype=np.uint64)  # no two texts share a key
    for copies in (2, SEEN_MIN_MEMBERS - 1):
        rows, _ = _copies_partition(keys, copies)
        plain = partition_candidates(rows.copy(), 100)
        seen = SeenBuckets()
        got = [partition_candidates(rows.copy(), 100, seen) for _ in range(2)]
        assert seen.f1.size == 0 and plain[0].shape == (200 * (copies - 1), 4)
        assert all(np.array_equal(x, y) for g in got for x, y in zip(plain, g))


def test_seen_buckets_marks_first_sightings_within_and_across_calls():
    from corpuspipe.stages.dedup.candidates import SeenBuckets

    s = SeenBuckets()
    f1 = np.array([5, 3, 5, 9, 3], np.uint64)
    f2 = np.array([1, 2, 1, 9, 7], np.uint64)  # (3, 2) and (3, 7) differ in their second half
    assert s.first_seen(f1, f2).tolist() == [True, True, False, True, True]
    assert s.first_seen(np.array([3, 3, 4], np.uint64), np.array([7, 8, 0], np.uint64)).tolist() == [False, True, True]
    assert s.first_seen(np.empty(0, np.uint64), np.empty(0, np.uint64)).tolist() == []


def test_candidates_in_small_chunks_and_runs_are_the_same_pairs(shingle_sets, tmp_path):
    """A family-shaped partition (each real text in 12 near copies: a few bands changed per copy)
    made a few thousand pairs at a time, written as several runs and gathered by range, gives
    the candidates of one whole-partition expansion (the reference: the argsort version)."""
    from corpuspipe.stages.dedup.bands import BAND_ROW
    from corpuspipe.stages.dedup.candidates import (candidates_task, gather_task, hash_ranges,
                                                    partition_candidate_runs, partition_candidates)
    from corpuspipe.stages.dedup.minhash import fold_band

    keys = fold_band(band_matrix(signature_matrix(shingle_sets[:300], CFG), CFG))
    rng = np.random.default_rng(11)
    copies = np.tile(keys, (12, 1))
    edited = rng.random(copies.shape) < 0.3  # a copy's band differs from its text's in 30 % of bands
    copies[edited] = rng.integers(0, 2**63, int(edited.sum()), dtype=np.uint64)
    n = len(copies)
    eh = (np.arange(n, dtype=np.uint64) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
    rows = _band_rows(copies, eh, np.arange(n, dtype=np.uint64) // np.uint64(2))  # pairs of copies: one group
    for max_bucket in (100, 5):
        want = _candidates_numpy(rows, max_bucket)
        runs = list(partition_candidate_runs(rows.copy(), max_bucket, budget_rows=3000))
        assert len(runs) > 1 and want[1].size > 0
        for r in runs:  # each run sorted and unique
            for arr in r:
                k = arr[:, 0].astype(object) * 2**64 + arr[:, 1].astype(object)
                assert (np.diff(k.astype(float)) >= 0).all() and len(set(k.tolist())) == len(k)
        got = partition_candidates(rows.copy(), max_bucket, budget_rows=3000)
        assert all(np.array_equal(g, w) for g, w in zip(got, want))
        # through the task's files and the gather by range
        band = tmp_path / f"bands{max_bucket}" / "00000"
        band.mkdir(parents=True)
        rows.astype(np.uint64).tofile(band / "t0.bands")
        cand = tmp_path / f"cand{max_bucket}"
        candidates_task([0], str(band.parent), max_bucket, str(cand), 3000)
        assert len(list(cand.glob("*.star.npy"))) > 1
        pairs = tmp_path / f"pairs{max_bucket}"
        ranges = hash_ranges(3)
        for q, (lo, hi) in enumerate(ranges):
            gather_task(q, lo, hi, str(cand), 1, str(pairs))
        star = np.concatenate([np.load(pairs / f"q{q:04d}.star.npy") for q in range(3)]).reshape(-1, BAND_ROW)
        other = np.concatenate([np.load(pairs / f"q{q:04d}.other.npy") for q in range(3)]).reshape(-1, BAND_ROW)
        assert np.array_equal(star, want[0])
        star_keys = set(map(tuple, want[0][:, :2].tolist()))  # a star anywhere is a star
        assert other.tolist() == [r for r in want[1].tolist() if tuple(r[:2]) not in star_keys]


@given(st.lists(st.integers(0, 2**64 - 1), max_size=3000), st.integers(0, 64))
@settings(max_examples=200, deadline=None)
def test_argsort_u64_is_a_stable_argsort(values, shift):
    """The radix argsort (the quality stage's n-gram keys) orders like numpy's stable argsort,
    ties included, for keys of every width (a shift leaves only the high bits: many ties)."""
    keys = np.array(values, np.uint64) >> np.uint64(shift) if shift < 64 else np.zeros(len(values), np.uint64)
    order, sorted_keys = kernels.argsort_u64(keys)
    want = np.argsort(keys, kind="stable")
    assert np.array_equal(order, want) and np.array_equal(sorted_keys, keys[want])
