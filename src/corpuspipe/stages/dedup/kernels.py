"""Compiled loops of the dedup hot paths (Cython, ``_kernels.pyx``): the numbers of the numpy code
they replace, faster.  (Also one generic loop other stages use: ``argsort_u64``, the quality
stage's n-gram sort; this is the project's only compiled module.)

Why: after batching, what was left of MinHash, banding and verification was numpy *call overhead*
on small arrays (a section's paragraph pairs are tens of shingles each; one verification made ~20
numpy calls) and full-size temporaries (a ``(perm x shingles)`` matrix per MinHash batch, a uint64
copy of every signature to band it).  A compiled loop does each in one pass.

Every kernel is integer arithmetic or the same float64 divisions of exact integers as before, so
its output is byte-identical to the numpy version (tested against it on real text:
``tests/stages/dedup/test_dedup_kernels.py`` keeps the numpy code as the reference).

Why Cython and not numba: numba was close (MinHash 25 vs 14.5 ns a shingle) but ``import numba``
plus its LLVM JIT cost ~180 MB of RSS in every worker process (measured: 52 -> 233 MB) and 1.7 s of
import; the tree's memory bound at 1 GB (1.5 GB) could not take that.  The extension (~1.3 MB on
disk) is built by ``make setup`` (pyproject's build requires Cython; this machine kind has gcc).
"""

from __future__ import annotations

import numpy as np

try:
    from corpuspipe.stages.dedup import _kernels
except ImportError as exc:  # a source tree whose extension was never built (or built for another Python)
    raise ImportError("corpuspipe's compiled dedup loops (stages/dedup/_kernels.pyx) are not built for this "
                      "Python: run `make setup`, or `pip install -e .` in the repository") from exc


def minhash(x: np.ndarray, starts: np.ndarray, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out[i] = the MinHash signature of set i = x[starts[i]:starts[i + 1]] (uint64 shingles, their
    low 32 bits permuted by (a*x + b) mod 2**32)."""
    _kernels.minhash(x, starts, a, b, out)


def char_minhash(raw: np.ndarray, raw_len: np.ndarray, table: np.ndarray, n: int, base: int, seed_add: int,
                 min_len: int, a: np.ndarray, b: np.ndarray, sig: np.ndarray, counts: np.ndarray,
                 lengths: np.ndarray) -> int:
    """MinHash signatures of the character n-gram shingles of texts joined in ``raw``, their
    distinct shingle counts and stripped lengths, in one loop (see ``minhash.char_signatures``)."""
    return _kernels.char_minhash(raw, raw_len, table, n, base, seed_add, min_len, a, b, sig, counts, lengths)


def argsort_u64(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a stable argsort of ``keys``, the sorted keys): an LSD radix sort, ~2.5x numpy's argsort on
    the quality stage's 60-bit n-gram keys (32k keys: 0.55 vs 1.37 ms)."""
    keys = np.ascontiguousarray(keys, dtype=np.uint64)
    order = np.empty(keys.size, np.int64)
    sorted_keys = np.empty(keys.size, np.uint64)
    _kernels.argsort_u64(keys, order, sorted_keys)
    return order, sorted_keys


def band_keys(mat: np.ndarray, bands: int, rows: int, base: int, seed_add: int, out: np.ndarray, col0: int) -> None:
    """Columns col0 .. col0 + bands of ``out``: each band's key (see ``minhash.band_matrix``)."""
    _kernels.band_keys(mat, bands, rows, base, seed_add, out, col0)


def intersect_count(a: np.ndarray, b: np.ndarray) -> int:
    """|a & b| of two sorted unique uint64 arrays."""
    return _kernels.intersect_count(a, b)


def best_pair(av: np.ndarray, alab: np.ndarray, asize: np.ndarray, bv: np.ndarray, boff: np.ndarray,
              swap: bool) -> tuple[float, float, float]:
    """The best paragraph pair's (Jaccard, c_ab, c_ba) (see ``disk._ParagraphSide.best``)."""
    return _kernels.best_pair(av, alab, asize, bv, boff, swap)


def sort_band_rows(rows: np.ndarray) -> None:
    """Sort an (n, 4) uint64 array of band rows (key, entity hash, group hash, location) in place
    by (key, entity hash); rows equal in both come in no defined order."""
    _kernels.sort_band_rows(rows)


def scatter_band_rows(keys: np.ndarray, eh: np.ndarray, gh: np.ndarray, loc: np.ndarray, parts: int,
                      out: np.ndarray, offsets: np.ndarray) -> None:
    """(key, eh[i], gh[i], loc[i]) for every key of row i of ``keys``, grouped by partition (key
    mod ``parts``) in row-major order; partition p is out[offsets[p]:offsets[p + 1]]."""
    _kernels.scatter_band_rows(keys, eh, gh, loc, parts, out, offsets)


def entity_pairs(local, row_start, row_size, by_ent, ent_ptr, ent_gh, max_bucket: int, e_lo: int, budget: int,
                 stamp, flag, nb, star_out, other_out) -> tuple[int, int, int]:
    """The next run of unique candidate pairs of a band partition, entity by entity (see
    ``candidates.partition_candidate_runs`` and the loop's docstring in ``_kernels.pyx``)."""
    return _kernels.entity_pairs(local, row_start, row_size, by_ent, ent_ptr, ent_gh, max_bucket, e_lo, budget,
                                 stamp, flag, nb, star_out, other_out)
