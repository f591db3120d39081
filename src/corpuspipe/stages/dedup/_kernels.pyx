# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The compiled loops behind :mod:`corpuspipe.stages.dedup.kernels` (see its docstring).

Integer arithmetic in C's own widths (uint32 wraps mod 2**32, uint64 mod 2**64, as the numpy code
did) and float64 divisions of exact integers (no fast-math): the same numbers on every machine.
"""

from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc


cdef extern from "_minhash_loop.h" nogil:
    void cp_minhash_rows(const uint64_t *x, const int64_t *starts, int64_t n_sets, const uint32_t *a,
                         const uint32_t *b, int64_t n_perm, uint32_t *acc, uint32_t *out)
    ctypedef struct cp_band_row:
        uint64_t key
        uint64_t eh
        uint64_t gh
        uint64_t loc
    void cp_sort_band_rows(cp_band_row *a, int64_t n)
    void cp_argsort_u64(const uint64_t *keys, int64_t n, int64_t *order, uint64_t *sorted, uint64_t *k2, int64_t *i2)
    int64_t cp_char_minhash(const uint32_t *raw, const int64_t *raw_len, int64_t n_texts, const uint32_t *table,
                            int64_t n, uint64_t base, uint64_t seed_add, int64_t min_len, const uint32_t *a,
                            const uint32_t *b, int64_t n_perm, uint64_t *v, uint64_t *u, uint64_t *set,
                            uint32_t *acc, uint32_t *sig, int64_t *counts, int64_t *lengths)


def minhash(const uint64_t[::1] x, const int64_t[::1] starts, const uint32_t[::1] a, const uint32_t[::1] b,
            uint32_t[:, ::1] out):
    """out[i, p] = min over shingles s of set i of (a[p] * (s mod 2**32) + b[p]) mod 2**32;
    set i is x[starts[i]:starts[i + 1]] (the loop: ``_minhash_loop.h``)."""
    cdef int64_t n_perm = a.shape[0], n_sets = starts.shape[0] - 1
    cdef uint32_t *acc
    if n_sets <= 0 or n_perm <= 0:
        return
    if out.shape[0] < n_sets or out.shape[1] != n_perm or b.shape[0] != n_perm:
        raise ValueError("minhash: shapes of a, b and out do not match")
    acc = <uint32_t *> malloc(n_perm * sizeof(uint32_t))
    if acc == NULL:
        raise MemoryError()
    try:
        with nogil:
            cp_minhash_rows(&x[0] if x.shape[0] else NULL, &starts[0], n_sets, &a[0], &b[0], n_perm, acc, &out[0, 0])
    finally:
        free(acc)


def band_keys(const uint32_t[:, ::1] mat, Py_ssize_t bands, Py_ssize_t rows, uint64_t base, uint64_t seed_add,
              uint64_t[:, ::1] out, Py_ssize_t col0):
    """out[i, col0 + j] = splitmix64(seed_add + polynomial (base) of mat[i, j*rows:(j+1)*rows])."""
    cdef Py_ssize_t i, j, k
    cdef uint64_t h
    with nogil:
        for i in range(mat.shape[0]):
            for j in range(bands):
                h = 0
                for k in range(rows):
                    h = h * base + <uint64_t> mat[i, j * rows + k]
                h = h + seed_add
                h = h ^ (h >> 30)
                h = h * 0xBF58476D1CE4E5B9ull
                h = h ^ (h >> 27)
                h = h * 0x94D049BB133111EBull
                h = h ^ (h >> 31)
                out[i, col0 + j] = h


def intersect_count(const uint64_t[::1] a, const uint64_t[::1] b):
    """|a & b| of two sorted unique arrays (a merge)."""
    cdef Py_ssize_t i = 0, j = 0, na = a.shape[0], nb = b.shape[0]
    cdef int64_t n = 0
    with nogil:
        while i < na and j < nb:
            if a[i] == b[j]:
                n += 1
                i += 1
                j += 1
            elif a[i] < b[j]:
                i += 1
            else:
                j += 1
    return n


def best_pair(const uint64_t[::1] av, const int64_t[::1] alab, const int64_t[::1] asize, const uint64_t[::1] bv,
              const int64_t[::1] boff, bint swap):
    """(Jaccard, |A&B|/|A|, |A&B|/|B|) of the best paragraph pair: highest max containment, then
    highest Jaccard, then the first in row-major order of (a, b), or of (b, a) with ``swap`` (whose
    scores are then reported as (b, a)).  Side a: its paragraphs' shingles sorted together (``av``),
    each value's paragraph (``alab``), the sizes (``asize``); side b: paragraph k is
    bv[boff[k]:boff[k + 1]]."""
    cdef Py_ssize_t na = asize.shape[0], nb = boff.shape[0] - 1, n = av.shape[0]
    cdef Py_ssize_t kb, lo, hi, mid, r, c, rows, cols
    cdef int64_t t, i_ab, sr, sc
    cdef uint64_t x
    cdef double cab, cba, jac, key, best_key = -1.0, best_j = -1.0, best_ab = 0.0, best_ba = 0.0
    cdef int64_t *inter = <int64_t *> malloc(max(1, na * nb) * sizeof(int64_t))
    if inter == NULL:
        raise MemoryError()
    try:
        with nogil:
            for t in range(na * nb):
                inter[t] = 0
            for kb in range(nb):
                for t in range(boff[kb], boff[kb + 1]):
                    x = bv[t]
                    lo = 0
                    hi = n
                    while lo < hi:  # first position with av[pos] >= x
                        mid = (lo + hi) >> 1
                        if av[mid] < x:
                            lo = mid + 1
                        else:
                            hi = mid
                    while lo < n and av[lo] == x:
                        inter[alab[lo] * nb + kb] += 1
                        lo += 1
            if swap:
                rows, cols = nb, na
            else:
                rows, cols = na, nb
            for r in range(rows):
                for c in range(cols):
                    if swap:
                        i_ab = inter[c * nb + r]
                        sr = boff[r + 1] - boff[r]
                        sc = asize[c]
                    else:
                        i_ab = inter[r * nb + c]
                        sr = asize[r]
                        sc = boff[c + 1] - boff[c]
                    cab = <double> i_ab / <double> sr
                    cba = <double> i_ab / <double> sc
                    jac = <double> i_ab / <double> (sr + sc - i_ab)
                    key = cab if cab > cba else cba
                    if key > best_key or (key == best_key and jac > best_j):
                        best_key, best_j, best_ab, best_ba = key, jac, cab, cba
    finally:
        free(inter)
    return best_j, best_ab, best_ba


def sort_band_rows(uint64_t[:, ::1] rows):
    """Sort an (n, 4) array of band rows (key, entity hash, group hash, location) in place by
    (key, entity hash) (the loop: ``_minhash_loop.h``)."""
    if rows.shape[1] != 4:
        raise ValueError("sort_band_rows: rows must be (n, 4)")
    if rows.shape[0] > 1:
        with nogil:
            cp_sort_band_rows(<cp_band_row *> &rows[0, 0], rows.shape[0])


def scatter_band_rows(const uint64_t[:, ::1] keys, const uint64_t[::1] eh, const uint64_t[::1] gh,
                      const uint64_t[::1] loc, uint64_t parts, uint64_t[:, ::1] out, int64_t[::1] offsets):
    """Band rows (key, eh[i], gh[i], loc[i]) of every key of keys[i, :] grouped by partition (key
    mod ``parts``), in row-major order within a partition (a counting sort: the order of a stable
    sort by partition); offsets[p]:offsets[p + 1] are partition p's rows of ``out``."""
    cdef Py_ssize_t n = keys.shape[0], b = keys.shape[1], i, j
    cdef uint64_t p, k
    cdef int64_t at
    cdef int64_t *pos
    if eh.shape[0] != n or gh.shape[0] != n or loc.shape[0] != n or out.shape[0] != n * b or out.shape[1] != 4 \
            or offsets.shape[0] != <Py_ssize_t> parts + 1 or parts == 0:
        raise ValueError("scatter_band_rows: shapes do not match")
    pos = <int64_t *> malloc((parts + 1) * sizeof(int64_t))
    if pos == NULL:
        raise MemoryError()
    try:
        with nogil:
            for p in range(parts + 1):
                pos[p] = 0
            for i in range(n):
                for j in range(b):
                    pos[keys[i, j] % parts + 1] += 1
            for p in range(parts):
                pos[p + 1] += pos[p]
            for p in range(parts + 1):
                offsets[p] = pos[p]
            for i in range(n):
                for j in range(b):
                    k = keys[i, j]
                    p = k % parts
                    at = pos[p]
                    out[at, 0] = k
                    out[at, 1] = eh[i]
                    out[at, 2] = gh[i]
                    out[at, 3] = loc[i]
                    pos[p] = at + 1
    finally:
        free(pos)


cdef extern from "stdlib.h" nogil:
    void qsort(void *base, size_t nmemb, size_t size, int (*compar)(const void *, const void *))


cdef int _cmp_u32(const void *x, const void *y) noexcept nogil:
    cdef uint32_t a = (<const uint32_t *> x)[0], b = (<const uint32_t *> y)[0]
    return (a > b) - (a < b)


def entity_pairs(const uint32_t[::1] local, const int64_t[::1] row_start, const int64_t[::1] row_size,
                 const int64_t[::1] by_ent, const int64_t[::1] ent_ptr, const uint64_t[::1] ent_gh,
                 int64_t max_bucket, int64_t e_lo, int64_t budget, int64_t[::1] stamp, uint8_t[::1] flag,
                 uint32_t[::1] nb, uint64_t[::1] star_out, uint64_t[::1] other_out):
    """Unique candidate pairs (a << 32 | b, local entity indexes, a < b) of the entities from ``e_lo``
    on, by a and then b, until ``budget`` pairs are out (whole entities only); returns
    (stars, others, next entity).  Rows sorted by (bucket, entity): row r's bucket starts at
    ``row_start[r]`` and has ``row_size[r]`` members (< 2: no bucket); ``by_ent[ent_ptr[e]:ent_ptr[e+1]]``
    are entity e's rows.  A bucket of at most ``max_bucket`` members pairs all its members: with the
    first as a star pair, among the others as other pairs; a larger one its first with every member
    (star) and each other member with the next (other).  A pair that is a star in any bucket is a
    star; pairs of one group (``ent_gh``) are never made.  The pairs of ``bucket_pairs`` + unique,
    without expanding each band's copy of a pair into memory."""
    cdef int64_t n_ents = ent_ptr.shape[0] - 1, e, k, r, s, z, pos, t, t_end, n, i
    cdef int64_t n_star = 0, n_other = 0
    cdef uint32_t f
    cdef uint64_t g, hi
    cdef bint first
    if stamp.shape[0] < n_ents or flag.shape[0] < n_ents or nb.shape[0] < n_ents \
            or star_out.shape[0] < budget + n_ents or other_out.shape[0] < budget + n_ents \
            or row_start.shape[0] != local.shape[0] or row_size.shape[0] != local.shape[0]:
        raise ValueError("entity_pairs: shapes do not match")
    e = e_lo
    with nogil:
        while e < n_ents and n_star + n_other < budget:
            n = 0
            g = ent_gh[e]
            for k in range(ent_ptr[e], ent_ptr[e + 1]):
                r = by_ent[k]
                z = row_size[r]
                if z < 2:
                    continue
                s = row_start[r]
                pos = r - s
                first = pos == 0
                if first or z <= max_bucket:
                    t_end = s + z
                else:
                    t_end = r + 2 if r + 2 <= s + z else s + z  # the chain: the next member only
                for t in range(r + 1, t_end):
                    f = local[t]
                    if ent_gh[f] == g:
                        continue
                    if stamp[f] != e:
                        stamp[f] = e
                        flag[f] = first
                        nb[n] = f
                        n += 1
                    elif first:
                        flag[f] = 1
            if n > 1:
                qsort(&nb[0], n, sizeof(uint32_t), _cmp_u32)
            hi = (<uint64_t> e) << 32
            for i in range(n):
                f = nb[i]
                if flag[f]:
                    star_out[n_star] = hi | f
                    n_star += 1
                else:
                    other_out[n_other] = hi | f
                    n_other += 1
            e += 1
    return n_star, n_other, e


def char_minhash(const uint32_t[::1] raw, const int64_t[::1] raw_len, const uint32_t[::1] table, int64_t n,
                 uint64_t base, uint64_t seed_add, int64_t min_len, const uint32_t[::1] a, const uint32_t[::1] b,
                 uint32_t[:, ::1] sig, int64_t[::1] counts, int64_t[::1] lengths):
    """sig[i] = the MinHash signature of text i's character n-gram shingles, counts[i] = how many
    distinct shingles it has, lengths[i] = its stripped length; text i is the next raw_len[i] code
    points of ``raw`` (the loop: ``_minhash_loop.h``, ``cp_char_minhash``).  Returns the sum of counts."""
    cdef Py_ssize_t t, n_texts = raw_len.shape[0]
    cdef int64_t n_perm = a.shape[0], max_len = 0, total = 0, pos = 0
    cdef uint64_t cap = 16
    cdef uint64_t *v = NULL
    cdef uint64_t *u = NULL
    cdef uint64_t *hset = NULL
    cdef uint32_t *acc = NULL
    if n < 1 or b.shape[0] != n_perm or sig.shape[0] < n_texts or sig.shape[1] != n_perm \
            or counts.shape[0] < n_texts or lengths.shape[0] < n_texts:
        raise ValueError("char_minhash: shapes do not match")
    if table.shape[0] < 0x110000:
        raise ValueError("char_minhash: the table must cover every code point")
    for t in range(n_texts):
        if raw_len[t] < 0:
            raise ValueError("char_minhash: negative text length")
        max_len = max(max_len, raw_len[t])
        pos += raw_len[t]
    if pos > raw.shape[0]:
        raise ValueError("char_minhash: the texts are longer than raw")
    while cap < <uint64_t> (2 * max_len):
        cap <<= 1
    try:
        v = <uint64_t *> malloc(max(1, max_len) * sizeof(uint64_t))
        u = <uint64_t *> malloc(max(1, max_len) * sizeof(uint64_t))
        hset = <uint64_t *> malloc(cap * sizeof(uint64_t))
        acc = <uint32_t *> malloc(max(1, n_perm) * sizeof(uint32_t))
        if v == NULL or u == NULL or hset == NULL or acc == NULL:
            raise MemoryError()
        if n_texts:
            with nogil:
                total = cp_char_minhash(&raw[0] if raw.shape[0] else NULL, &raw_len[0], n_texts, &table[0], n, base,
                                        seed_add, min_len, &a[0], &b[0], n_perm, v, u, hset, acc, &sig[0, 0],
                                        &counts[0], &lengths[0])
    finally:
        free(v)
        free(u)
        free(hset)
        free(acc)
    return total


def argsort_u64(const uint64_t[::1] keys, int64_t[::1] order, uint64_t[::1] sorted_keys):
    """order = a stable argsort of ``keys``, sorted_keys = keys[order] (an LSD radix sort: the loop
    ``cp_argsort_u64`` in ``_minhash_loop.h``)."""
    cdef Py_ssize_t n = keys.shape[0]
    cdef uint64_t *k2 = NULL
    cdef int64_t *i2 = NULL
    if order.shape[0] != n or sorted_keys.shape[0] != n:
        raise ValueError("argsort_u64: shapes do not match")
    if n == 0:
        return
    try:
        k2 = <uint64_t *> malloc(n * sizeof(uint64_t))
        i2 = <int64_t *> malloc(n * sizeof(int64_t))
        if k2 == NULL or i2 == NULL:
            raise MemoryError()
        with nogil:
            cp_argsort_u64(&keys[0], n, &order[0], &sorted_keys[0], k2, i2)
    finally:
        free(k2)
        free(i2)
