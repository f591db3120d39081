"""The numba-compiled loops of :mod:`corpuspipe.stages.dedup.kernels` (imported on first use:
``import numba`` costs ~1.7 s).  Module level, so that ``cache=True`` keeps the compiled code
between processes (next to this file, in ``__pycache__``)."""

from __future__ import annotations

import numba
import numpy as np

u64 = np.uint64
m32 = u64(0xFFFFFFFF)
njit = numba.njit(cache=True, nogil=True)


@njit
def minhash(x: np.ndarray, starts: np.ndarray, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out[i, p] = min over shingles s of set i of (a[p] * (s mod 2**32) + b[p]) mod 2**32.
    ``x``: the sets' uint64 shingles concatenated; set i is x[starts[i]:starts[i + 1]]."""
    n_perm = a.shape[0]
    acc = np.empty(n_perm, np.uint32)
    for i in range(starts.shape[0] - 1):
        acc[:] = np.uint32(0xFFFFFFFF)
        for k in range(starts[i], starts[i + 1]):
            v = np.uint32(x[k] & m32)
            for p in range(n_perm):
                acc[p] = min(acc[p], np.uint32(a[p] * v + b[p]))  # computed wide, truncated: mod 2**32
        for p in range(n_perm):
            out[i, p] = np.uint32(acc[p])

@njit
def band_keys(mat: np.ndarray, bands: int, rows: int, base: np.uint64, seed_add: np.uint64,
              out: np.ndarray, col0: int) -> None:
    """out[i, col0 + j] = splitmix64(polynomial of band j's rows of mat[i]) (see band_matrix)."""
    for i in range(mat.shape[0]):
        for j in range(bands):
            h = u64(0)
            for k in range(rows):
                h = h * base + u64(mat[i, j * rows + k])
            h = h + seed_add
            h = h ^ (h >> u64(30))
            h = h * u64(0xBF58476D1CE4E5B9)
            h = h ^ (h >> u64(27))
            h = h * u64(0x94D049BB133111EB)
            h = h ^ (h >> u64(31))
            out[i, col0 + j] = h

@njit
def intersect_count(a: np.ndarray, b: np.ndarray) -> int:
    """|a & b| of two sorted unique arrays (a merge)."""
    i = j = n = 0
    while i < a.shape[0] and j < b.shape[0]:
        x, y = a[i], b[j]
        if x == y:
            n += 1
            i += 1
            j += 1
        elif x < y:
            i += 1
        else:
            j += 1
    return n

@njit
def best_pair(av: np.ndarray, alab: np.ndarray, asize: np.ndarray, bv: np.ndarray, boff: np.ndarray,
              swap: bool) -> tuple:
    """The best pair of paragraphs of two sides: (Jaccard, |A&B|/|A|, |A&B|/|B|).

    Side a: its paragraphs' shingles concatenated and sorted (``av``), each value's paragraph
    (``alab``) and the sizes (``asize``).  Side b: paragraph k is bv[boff[k]:boff[k + 1]]
    (each sorted unique).  Best: highest max containment, then highest Jaccard, then the first
    in row-major order of (a, b) -- of (b, a) with ``swap``, whose scores are then reported
    as (b, a): exactly ``_best_of`` over the intersection matrix (or its transpose)."""
    na, nb = asize.shape[0], boff.shape[0] - 1
    inter = np.zeros((na, nb), np.int64)
    n = av.shape[0]
    for kb in range(nb):
        for t in range(boff[kb], boff[kb + 1]):
            x = bv[t]
            lo, hi = 0, n
            while lo < hi:  # first position with av[pos] >= x
                mid = (lo + hi) >> 1
                if av[mid] < x:
                    lo = mid + 1
                else:
                    hi = mid
            while lo < n and av[lo] == x:
                inter[alab[lo], kb] += 1
                lo += 1
    rows, cols = (nb, na) if swap else (na, nb)
    best_key, best_j, best_ab, best_ba = -1.0, -1.0, 0.0, 0.0
    for r in range(rows):
        for c in range(cols):
            if swap:
                i_ab, sr, sc = inter[c, r], boff[r + 1] - boff[r], asize[c]
            else:
                i_ab, sr, sc = inter[r, c], asize[r], boff[c + 1] - boff[c]
            cab = i_ab / sr
            cba = i_ab / sc
            jac = i_ab / (sr + sc - i_ab)
            key = max(cab, cba)
            if key > best_key or (key == best_key and jac > best_j):
                best_key, best_j, best_ab, best_ba = key, jac, cab, cba
    return best_j, best_ab, best_ba

