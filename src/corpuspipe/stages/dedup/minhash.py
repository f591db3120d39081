"""MinHash near-duplicate and text-reuse detection, in stages that shard and partition.

The building blocks: parameters (``lsh_params``), signatures (``compute_signatures``), band keys
(``band_matrix``/``fold_band``) and the exact comparison (``compare_sets``/``relation``).  The
stage itself, over signature files in bounded memory and parallel steps, is ``reduce.py``.

Choices (measured, see NOTES and bench/eval_dedup.py):
- Signatures: ``(a*x + b) mod 2**32`` permutations over 32-bit shingle hashes, in one compiled
  loop (``kernels``, Cython; numpy batches were ~5x slower, datasketch's ``update_batch`` 3-10x
  slower than those).  datasketch is used for what it
  does well: the optimal bands/rows computation (``_optimal_param``) and, optionally,
  ``MinHashLSHEnsemble`` over ``MinHash(hashvalues=...)`` for containment candidates.
- Banding is done on the signature matrix in one compiled loop (same candidates as ``MinHashLSH``).
- Reuse (asymmetric copy) gets a second, lower-threshold banding: containment c of A in B with
  ``|B| <= r*|A|`` implies ``J >= c / (1 + r - c)``, so banding at that Jaccard finds it.
- Every candidate is verified exactly; estimates never decide.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from corpuspipe.stages.dedup.config import DedupConfig
from corpuspipe.stages.dedup import kernels
from corpuspipe.stages.dedup.shingles import _BASE as _SHINGLE_BASE
from corpuspipe.stages.dedup.shingles import (
    _GOLDEN,
    _strip_t2s_table,
    char_chunks,
    mix64,
    shingle_batches,
    stripped_lengths,
)

LEVELS = ("document", "section")
_SIG_EMPTY = np.uint32(0xFFFFFFFF)
_BAND_BASE = np.uint64(0x100000001B3)


class DedupItem(NamedTuple):
    """One unit dedup judges.  A NamedTuple (was a frozen dataclass, whose ``__init__`` sets each
    field through ``object.__setattr__``): the collect makes one per document, leaf section and
    paragraph, ~65k per 14.5 MB of crawl text."""

    id: str  # doc_id or section_id
    text: str  # cleaned Simplified text
    quality: int  # e.g. clean char count; the representative rule prefers the highest
    # Pairs inside one group are never reported: pass the doc_id for sections, whose outline is
    # nested (a parent's text contains its children's, which would otherwise all be "reuse").
    group: str | None = None
    # What pairs and clusters are reported for: a paragraph unit ``<section_id>#NNN`` judges its
    # section, whose score is its best unit pair.  None = the item itself.
    entity: str | None = None
    flags: int = 0  # number of quality flags: the representative rule prefers the fewest
    script: str = "simplified"  # of the raw essay: a Simplified original beats a converted copy

    @property
    def key(self) -> str:
        return self.entity if self.entity is not None else self.id


@dataclass(frozen=True)
class DuplicatePair:
    """One row of the ``duplicates`` table (schemas.DUPLICATES); a_id < b_id."""

    level: str
    a_id: str
    b_id: str
    jaccard: float  # MinHash estimate
    jaccard_exact: float
    containment_ab: float  # |A & B| / |A|: share of a found in b
    containment_ba: float  # |A & B| / |B|
    relation: str  # near_duplicate | reuse (whole texts) | paragraph_reuse (sections: only a paragraph pair)
    # Sections only (None for documents): the best-matching paragraph pair (a one-paragraph section
    # is its own paragraph), by containment then Jaccard -- the pair that found paragraph reuse.
    paragraph_jaccard: float | None = None
    paragraph_containment: float | None = None  # max of the pair's two containments


# -- parameters ---------------------------------------------------------------------------


def _weights(cfg: DedupConfig) -> tuple[float, float]:
    return 1.0 - cfg.lsh_fn_weight, cfg.lsh_fn_weight


def reuse_jaccard_threshold(cfg: DedupConfig) -> float | None:
    """Lowest Jaccard of a pair with containment >= cfg.containment_threshold and size ratio <= max."""
    if cfg.reuse_max_ratio <= 0:
        return None
    c = cfg.containment_threshold
    return c / (1.0 + cfg.reuse_max_ratio - c)


# datasketch's answers for the default settings (``DedupConfig()``: threshold 0.35 and the reuse
# banding's 0.25, 128 permutations, weights 0.5/0.5), so that a worker never imports datasketch
# for them: its import pulls in scipy.integrate, ~0.44 CPU s and tens of MB in every worker
# process (py-spy: 10 % of pass 1's CPU on a 14.5 MB crawl slice).  tests/stages/dedup/test_dedup.py checks
# every entry against ``datasketch.lsh._optimal_param``; any other setting asks datasketch.
_KNOWN_BANDS: dict[tuple[float, int, float, float], tuple[int, int]] = {
    (0.35, 128, 0.5, 0.5): (32, 4),
    (0.25, 128, 0.5, 0.5): (42, 3),
}


@functools.lru_cache(maxsize=64)
def _optimal_bands(threshold: float, num_perm: int, fp: float, fn: float) -> tuple[int, int]:
    """datasketch's optimum integrates numerically (~80 ms): compute it once per setting.  Imported
    here: datasketch pulls in scipy.integrate (1.4 s), which a cached re-run never needs."""
    known = _KNOWN_BANDS.get((threshold, num_perm, fp, fn))
    if known is not None:
        return known
    from datasketch.lsh import _optimal_param

    bands, rows = _optimal_param(threshold, num_perm, fp, fn)
    return int(bands), int(rows)


def lsh_params(cfg: DedupConfig) -> dict:
    """What the manifest records: shingling, num_perm, thresholds, and bands/rows of both bandings."""
    fp, fn = _weights(cfg)
    bands, rows = _optimal_bands(cfg.threshold, cfg.num_perm, fp, fn)
    out = {
        "shingle": cfg.shingle,
        "ngram": cfg.ngram,
        "num_perm": cfg.num_perm,
        "threshold": cfg.threshold,
        "bands": int(bands),
        "rows": int(rows),
        "containment_threshold": cfg.containment_threshold,
        "reuse_max_ratio": cfg.reuse_max_ratio,
        "reuse_jaccard_threshold": None,
        "reuse_bands": 0,
        "reuse_rows": 0,
        "lsh_weights": [fp, fn],
        "min_section_chars": cfg.min_section_chars,
        "seed": cfg.seed,
        "hashing": "splitmix64(poly window of stripped code points) -> low 32 bits; (a*x+b) mod 2^32",
        "param_source": "datasketch.lsh._optimal_param",
    }
    jr = reuse_jaccard_threshold(cfg)
    if jr is not None:
        rb, rr = _optimal_bands(jr, cfg.num_perm, fp, fn)
        out.update(reuse_jaccard_threshold=round(jr, 6), reuse_bands=int(rb), reuse_rows=int(rr))
    return out


def _bandings(cfg: DedupConfig) -> list[tuple[int, int]]:
    p = lsh_params(cfg)
    out = [(p["bands"], p["rows"])]
    if p["reuse_bands"]:
        out.append((p["reuse_bands"], p["reuse_rows"]))
    return out


def min_length(cfg: DedupConfig, level: str) -> int:
    """Stripped-char length below which an item is never banded, hence never a duplicate.

    Sections: ``min_section_chars``; documents: ``min_document_chars`` (title-only and
    watermark-only pages would otherwise all be near-duplicates of each other).
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    return cfg.min_section_chars if level == "section" else cfg.min_document_chars


def _permutations(cfg: DedupConfig) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(cfg.seed)
    a = rng.integers(1, 2**32, size=cfg.num_perm, dtype=np.uint64).astype(np.uint32) | np.uint32(1)
    b = rng.integers(0, 2**32, size=cfg.num_perm, dtype=np.uint64).astype(np.uint32)
    return a, b


# -- signatures -------------------------------------------------------------------------


def signature_schema(num_perm: int) -> pa.Schema:
    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("length", pa.int32(), nullable=False),
            pa.field("n_shingles", pa.int32(), nullable=False),
            pa.field("signature", pa.list_(pa.uint32(), num_perm), nullable=False),
        ]
    )


def signature_matrix(shingle_sets: Sequence[np.ndarray], cfg: DedupConfig) -> np.ndarray:
    """(n, num_perm) uint32 MinHash matrix; an empty set gets all 0xFFFFFFFF (never banded).

    One compiled loop over the sets (``kernels.minhash``): numpy's ``(perm x shingles)`` matrix and
    ``minimum.reduceat`` per batch of ~16k shingles gave the same numbers ~5x slower."""
    a, b = _permutations(cfg)
    sig = np.full((len(shingle_sets), cfg.num_perm), _SIG_EMPTY, dtype=np.uint32)
    rows = [i for i, s in enumerate(shingle_sets) if s.size]
    if rows:
        starts = np.zeros(len(rows) + 1, np.int64)
        np.cumsum([shingle_sets[i].size for i in rows], out=starts[1:])
        x = np.concatenate([shingle_sets[i] for i in rows]).astype(np.uint64, copy=False)
        out = np.empty((len(rows), cfg.num_perm), np.uint32)
        kernels.minhash(x, starts, a, b, out)
        sig[rows] = out
    return sig


def compute_signatures(items: Sequence[DedupItem], cfg: DedupConfig, min_len: int = 0) -> pa.Table:
    """Per shard: id, length (stripped chars), n_shingles, signature (fixed_size_list<uint32>).

    Items shorter than ``min_len`` stripped characters are never banded (``band_matrix`` skips
    them), so they are not shingled: n_shingles 0, an empty signature.  Two thirds of the section
    units of the crawl bench are that short.  Character shingles: :func:`char_signatures` (one
    compiled loop); word shingles: :func:`shingle_batches` and :func:`signature_matrix`.
    """
    texts = [it.text for it in items]
    if cfg.shingle == "char":
        lengths, n_shingles, sig = char_signatures(texts, cfg, min_len)
    else:
        lengths, n_shingles, sig = _signatures_by_sets(texts, cfg, min_len)
    return pa.Table.from_arrays(
        [
            pa.array([it.id for it in items], pa.string()),
            pa.array(lengths.astype(np.int32), pa.int32()),
            pa.array(n_shingles.astype(np.int32), pa.int32()),
            pa.FixedSizeListArray.from_arrays(pa.array(sig.reshape(-1), pa.uint32()), cfg.num_perm),
        ],
        schema=signature_schema(cfg.num_perm),
    )


def char_signatures(texts: Sequence[str], cfg: DedupConfig, min_len: int = 0
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(stripped lengths, distinct shingle counts, (n, num_perm) MinHash matrix) of character-shingled
    texts; a text under max(min_len, 1) stripped characters gets count 0 and the empty signature.

    One compiled loop per ``BATCH_CHARS`` of text (``kernels.char_minhash``): shingle hashes as
    :func:`shingle_batch` makes them, made distinct by a hash set instead of a sort, MinHashed as
    :func:`signature_matrix` does -- the same numbers (tests/stages/dedup/test_dedup_kernels.py keeps the numpy
    path as the reference).  Measured on the 14.5 MB crawl slice (2,106 documents, 62,550 section
    units; CPU s, best of 5): documents 0.296 -> 0.078, section units 0.296 -> 0.129 (the numpy
    path's per-text ``np.sort`` calls and its ~15 passes over each batch are gone); the dedup
    collect 1.34 -> 0.78 CPU s (``bench/profile_pass1.py``, best of 3).  A compiled shingler that
    still sorted (a quicksort per text) was slower than numpy's SIMD sort: 0.17 vs 0.13 s.
    """
    n = len(texts)
    lengths = np.zeros(n, np.int64)
    counts = np.zeros(n, np.int64)
    sig = np.empty((n, cfg.num_perm), np.uint32)
    a, b = _permutations(cfg)
    table = _strip_t2s_table()
    seed_add = (cfg.seed * _GOLDEN) & 0xFFFFFFFFFFFFFFFF
    for lo, hi in char_chunks(texts):
        raw = np.frombuffer("".join(texts[lo:hi]).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        raw_len = np.fromiter(map(len, texts[lo:hi]), np.int64, hi - lo)
        kernels.char_minhash(raw, raw_len, table, cfg.ngram, int(_SHINGLE_BASE), seed_add, max(min_len, 1), a, b,
                             sig[lo:hi], counts[lo:hi], lengths[lo:hi])
    return lengths, counts, sig


def _signatures_by_sets(texts: Sequence[str], cfg: DedupConfig, min_len: int = 0
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`char_signatures` by way of the shingle sets (any shingling; the reference for characters)."""
    lengths = np.concatenate([stripped_lengths(texts[a:b]) for a, b in char_chunks(texts)] or
                             [np.empty(0, np.int64)])
    want = np.flatnonzero(lengths >= max(min_len, 1)).tolist()
    empty = np.empty(0, dtype=np.uint64)
    sets: list[np.ndarray] = [empty] * len(texts)
    if want:
        hv, counts = shingle_batches([texts[k] for k in want], cfg)
        for k, part in zip(want, np.split(hv, np.cumsum(counts)[:-1])):
            sets[k] = part
    n_shingles = np.fromiter((s.size for s in sets), np.int64, len(sets))
    return lengths, n_shingles, signature_matrix(sets, cfg)


def signatures_numpy(signatures: pa.Table) -> np.ndarray:
    """The signature column as an (n, num_perm) uint32 matrix (zero-copy where Arrow allows)."""
    col = signatures.column("signature").combine_chunks()
    width = col.type.list_size
    return col.flatten().to_numpy(zero_copy_only=False).reshape(-1, width)


# -- LSH banding --------------------------------------------------------------------------


def band_matrix(mat: np.ndarray, cfg: DedupConfig) -> np.ndarray:
    """(n, bands) uint64 band keys of an (n, num_perm) signature matrix, both bandings side by side.

    Column j holds band j's key (near-duplicate bands first, then reuse bands); keys of different
    bands never need telling apart by the caller: ``fold_band`` mixes the band index in.  A band's
    key is ``mix64`` (seed ``cfg.seed + rows``) of the polynomial (base ``_BAND_BASE``) of its rows,
    computed by one compiled loop (``kernels.band_keys``; the numpy version first copied the
    whole matrix to uint64, then strided over it once per row of a band).
    """
    mat = np.ascontiguousarray(mat, dtype=np.uint32)
    n = mat.shape[0]
    bandings = _bandings(cfg)
    out = np.empty((n, sum(nb for nb, _ in bandings)), np.uint64)
    col = 0
    for nb, nr in bandings:
        if nb * nr > cfg.num_perm:
            raise ValueError(f"bands*rows {nb}*{nr} > num_perm {cfg.num_perm}")
        kernels.band_keys(mat, nb, nr, int(_BAND_BASE), ((cfg.seed + nr) * _GOLDEN) & 0xFFFFFFFFFFFFFFFF, out, col)
        col += nb
    return out


def fold_band(keys: np.ndarray) -> np.ndarray:
    """(n, bands) keys -> one uint64 per (item, band) with the band mixed in: one sort, no lexsort."""
    bands = mix64(np.arange(keys.shape[1], dtype=np.uint64), seed=7)
    with np.errstate(over="ignore"):
        return keys ^ bands[None, :]


def compare_sets(sa: np.ndarray, sb: np.ndarray) -> tuple[float, float, float]:
    """(exact Jaccard, |A&B|/|A|, |A&B|/|B|) of two sorted unique shingle arrays (both non-empty).

    A compiled merge (``kernels.intersect_count``): numpy's searchsorted was ~3x faster than
    ``np.intersect1d`` but still ~20 us of call overhead per pair of short section units.
    """
    inter = kernels.intersect_count(sa, sb)
    return inter / (sa.size + sb.size - inter), inter / sa.size, inter / sb.size


def relation(cfg: DedupConfig, j: float, cab: float, cba: float) -> str | None:
    """near_duplicate (Jaccard >= threshold), reuse (one side >= containment_threshold inside the other), or None."""
    if j >= cfg.threshold:
        return "near_duplicate"
    if max(cab, cba) >= cfg.containment_threshold:
        return "reuse"
    return None
