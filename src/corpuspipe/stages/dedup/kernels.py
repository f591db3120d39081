"""Compiled (numba) loops of the dedup hot paths: the same numbers as the numpy code they replace.

Why: after batching, what was left of MinHash, banding and verification was numpy *call overhead*
on small arrays (a section's paragraph pairs are tens of shingles each; one verification made ~20
numpy calls) and full-size temporaries (a ``(perm x shingles)`` matrix per MinHash batch, a uint64
copy of every signature to band it).  A loop compiled once does each in one pass.  Measured on the
100 MB crawl: see ``bench/profile_dedup_kernels.py`` (numbers in the README's benchmark table).

Every kernel is integer arithmetic or the same float64 divisions as before, so its output is
byte-identical to the numpy version (tested against it on real text: ``tests/test_dedup_kernels.py``).
Integer typing: numba widens integer arithmetic to 64 bits, so 32-bit wraparound is written out
(``& 0xFFFFFFFF``) and every uint64 constant is a ``np.uint64`` (mixing uint64 with a plain int
literal would give float64).

numba itself is imported only when a kernel is first called (``import numba`` costs ~1.7 s, which
the CLI's unchanged re-run and pass 0 never need); compiled code is cached next to this file.
"""

from __future__ import annotations

import functools
from types import ModuleType

import numpy as np


@functools.lru_cache(maxsize=1)
def _compiled() -> ModuleType:
    from corpuspipe.stages.dedup import _jit

    return _jit



def minhash(x: np.ndarray, starts: np.ndarray, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    _compiled().minhash(x, starts, a, b, out)


def band_keys(mat: np.ndarray, bands: int, rows: int, base: int, seed_add: int, out: np.ndarray, col0: int) -> None:
    _compiled().band_keys(mat, bands, rows, np.uint64(base), np.uint64(seed_add), out, col0)


def intersect_count(a: np.ndarray, b: np.ndarray) -> int:
    return int(_compiled().intersect_count(a, b))


def best_pair(av: np.ndarray, alab: np.ndarray, asize: np.ndarray, bv: np.ndarray, boff: np.ndarray,
              swap: bool) -> tuple[float, float, float]:
    j, ab, ba = _compiled().best_pair(av, alab, asize, bv, boff, swap)
    return float(j), float(ab), float(ba)
