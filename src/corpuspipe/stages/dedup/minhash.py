"""MinHash near-duplicate and text-reuse detection, in stages that shard and partition.

The building blocks: parameters (``lsh_params``), signatures (``compute_signatures``), band keys
(``band_matrix``/``fold_band``) and the exact comparison (``compare_sets``/``relation``).  The
stage itself, over signature files in bounded memory, is ``disk.py``.

Legacy, used only by ``steps.py`` (delete with it): ``band_keys``, ``candidate_pairs``,
``verify_pairs``, ``assign_clusters`` (connected components: chains), ``skipped_count``.

Choices (measured, see NOTES and bench/eval_dedup.py):
- Signatures: numpy ``(a*x + b) mod 2**32`` permutations over 32-bit shingle hashes, batched over
  ~64k shingles; datasketch's ``update_batch`` is 3-10x slower.  datasketch is used for what it
  does well: the optimal bands/rows computation (``_optimal_param``) and, optionally,
  ``MinHashLSHEnsemble`` over ``MinHash(hashvalues=...)`` for containment candidates.
- Banding is done on the signature matrix with numpy (same candidates as ``MinHashLSH`` ~20x faster).
- Reuse (asymmetric copy) gets a second, lower-threshold banding: containment c of A in B with
  ``|B| <= r*|A|`` implies ``J >= c / (1 + r - c)``, so banding at that Jaccard finds it.
- Every candidate is verified exactly; estimates never decide.
"""

from __future__ import annotations

import functools

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasketch.lsh import _optimal_param

from corpuspipe.core import schemas
from corpuspipe.core.config import DedupConfig
from corpuspipe.stages.dedup.shingles import code_points, mix64, shingle_hashes, shingles_of_code_points, sorted_unique
from corpuspipe.stages.dedup.unionfind import UnionFind

LEVELS = ("document", "section")
_SIG_EMPTY = np.uint32(0xFFFFFFFF)
_BATCH_SHINGLES = 1 << 14  # shingles per batch: 128x16k uint32 = 8 MB stays in cache (61 vs 19 MB/s at 64k)
_BAND_BASE = np.uint64(0x100000001B3)


@dataclass(frozen=True)
class DedupItem:
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


@functools.lru_cache(maxsize=64)
def _optimal_bands(threshold: float, num_perm: int, fp: float, fn: float) -> tuple[int, int]:
    """datasketch's optimum integrates numerically (~80 ms): compute it once per setting."""
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


def _minhash_batch(shingles: list[np.ndarray], a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """Signatures of several non-empty shingle sets at once: one (perm x shingles) matrix, reduceat."""
    x = np.concatenate(shingles).astype(np.uint32)  # low 32 bits of mixed 64-bit hashes
    starts = np.zeros(len(shingles), dtype=np.int64)
    np.cumsum([s.size for s in shingles[:-1]], out=starts[1:])
    m = a[:, None] * x[None, :]  # wraps mod 2**32
    m += b[:, None]
    out[:] = np.minimum.reduceat(m, starts, axis=1).T


def signature_matrix(shingle_sets: Sequence[np.ndarray], cfg: DedupConfig) -> np.ndarray:
    """(n, num_perm) uint32 MinHash matrix; an empty set gets all 0xFFFFFFFF (never banded)."""
    a, b = _permutations(cfg)
    sig = np.full((len(shingle_sets), cfg.num_perm), _SIG_EMPTY, dtype=np.uint32)
    batch: list[np.ndarray] = []
    rows: list[int] = []
    total = 0
    for i, s in enumerate(shingle_sets):
        if s.size == 0:
            continue
        batch.append(s)
        rows.append(i)
        total += s.size
        if total >= _BATCH_SHINGLES:
            _minhash_batch(batch, a, b, view := np.empty((len(rows), cfg.num_perm), np.uint32))
            sig[rows] = view
            batch, rows, total = [], [], 0
    if batch:
        _minhash_batch(batch, a, b, view := np.empty((len(rows), cfg.num_perm), np.uint32))
        sig[rows] = view
    return sig


def compute_signatures(items: Sequence[DedupItem], cfg: DedupConfig, min_len: int = 0) -> pa.Table:
    """Per shard: id, length (stripped chars), n_shingles, signature (fixed_size_list<uint32>).

    Items shorter than ``min_len`` stripped characters are never banded (``band_matrix`` skips
    them), so they are not shingled: n_shingles 0, an empty signature.  Two thirds of the section
    units of the crawl bench are that short.
    """
    lengths = np.empty(len(items), dtype=np.int32)
    sets: list[np.ndarray] = []
    empty = np.empty(0, dtype=np.uint64)
    for i, it in enumerate(items):
        cp = code_points(it.text)
        lengths[i] = cp.size
        sets.append(shingles_of_code_points(cp, cfg) if cp.size >= max(min_len, 1) else empty)
    sig = signature_matrix(sets, cfg)
    return pa.Table.from_arrays(
        [
            pa.array([it.id for it in items], pa.string()),
            pa.array(lengths, pa.int32()),
            pa.array(np.fromiter((s.size for s in sets), np.int32, len(sets)), pa.int32()),
            pa.FixedSizeListArray.from_arrays(pa.array(sig.reshape(-1), pa.uint32()), cfg.num_perm),
        ],
        schema=signature_schema(cfg.num_perm),
    )


def signatures_numpy(signatures: pa.Table) -> np.ndarray:
    """The signature column as an (n, num_perm) uint32 matrix (zero-copy where Arrow allows)."""
    col = signatures.column("signature").combine_chunks()
    width = col.type.list_size
    return col.flatten().to_numpy(zero_copy_only=False).reshape(-1, width)


def signatures_by_id(signatures: pa.Table) -> dict[str, np.ndarray]:
    mat = signatures_numpy(signatures)
    return dict(zip(signatures.column("id").to_pylist(), mat))


# -- LSH banding --------------------------------------------------------------------------


def band_matrix(mat: np.ndarray, cfg: DedupConfig) -> np.ndarray:
    """(n, bands) uint64 band keys of an (n, num_perm) signature matrix, both bandings side by side.

    Column j holds band j's key (near-duplicate bands first, then reuse bands); keys of different
    bands never need telling apart by the caller: ``fold_band`` mixes the band index in.
    """
    mat = np.asarray(mat).astype(np.uint64)
    n = mat.shape[0]
    out: list[np.ndarray] = []
    for nb, nr in _bandings(cfg):
        if nb * nr > cfg.num_perm:
            raise ValueError(f"bands*rows {nb}*{nr} > num_perm {cfg.num_perm}")
        cube = mat[:, : nb * nr].reshape(n, nb, nr)
        h = np.zeros((n, nb), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for k in range(nr):
                h = h * _BAND_BASE + cube[:, :, k]
        out.append(mix64(h, seed=cfg.seed + nr))
    return np.concatenate(out, axis=1) if out else np.empty((n, 0), np.uint64)


def fold_band(keys: np.ndarray) -> np.ndarray:
    """(n, bands) keys -> one uint64 per (item, band) with the band mixed in: one sort, no lexsort."""
    bands = mix64(np.arange(keys.shape[1], dtype=np.uint64), seed=7)
    with np.errstate(over="ignore"):
        return keys ^ bands[None, :]


def compare_sets(sa: np.ndarray, sb: np.ndarray) -> tuple[float, float, float]:
    """(exact Jaccard, |A&B|/|A|, |A&B|/|B|) of two sorted unique shingle arrays (both non-empty).

    searchsorted on the sorted arrays: ~3x faster than np.intersect1d, which re-sorts both.
    """
    if sa.size > sb.size:
        j, cba, cab = compare_sets(sb, sa)
        return j, cab, cba
    pos = np.searchsorted(sb, sa)
    pos[pos == sb.size] = 0
    inter = int(np.count_nonzero(sb[pos] == sa))
    return inter / (sa.size + sb.size - inter), inter / sa.size, inter / sb.size


def relation(cfg: DedupConfig, j: float, cab: float, cba: float) -> str | None:
    """near_duplicate (Jaccard >= threshold), reuse (one side >= containment_threshold inside the other), or None."""
    if j >= cfg.threshold:
        return "near_duplicate"
    if max(cab, cba) >= cfg.containment_threshold:
        return "reuse"
    return None


BAND_SCHEMA = pa.schema(
    [
        pa.field("band", pa.int16(), nullable=False),
        pa.field("key", pa.uint64(), nullable=False),
        pa.field("id", pa.dictionary(pa.int32(), pa.string()), nullable=False),
    ]
)


def band_keys(signatures: pa.Table, cfg: DedupConfig, *, min_length: int = 1) -> pa.Table:
    """(band, key, id) rows for every eligible item and every band of both bandings.

    Bands 0..b1-1 are the near-duplicate banding, b1.. the reuse banding.  Items with no shingles
    or with ``length < min_length`` get no rows (they can never be candidates).
    """
    mat = signatures_numpy(signatures)
    keep = (signatures.column("n_shingles").to_numpy() > 0) & (signatures.column("length").to_numpy() >= min_length)
    idx = np.flatnonzero(keep)
    n = idx.size
    keys = band_matrix(mat[idx], cfg)
    offset = keys.shape[1]
    keys_out = [keys.T.reshape(-1)]  # band-major
    bands_out = [np.repeat(np.arange(offset, dtype=np.int16), n)]
    # id as dictionary<int32, string>: the shard's ids once, not once per band (74x less memory)
    id_col = signatures.column("id").combine_chunks()
    ids = pa.DictionaryArray.from_arrays(pa.array(np.tile(idx, offset).astype(np.int32), pa.int32()), id_col)
    return pa.Table.from_arrays(
        [
            pa.array(np.concatenate(bands_out) if bands_out else np.empty(0, np.int16), pa.int16()),
            pa.array(np.concatenate(keys_out) if keys_out else np.empty(0, np.uint64), pa.uint64()),
            ids,
        ],
        schema=BAND_SCHEMA,
    )


def candidate_pairs(band_tables: Sequence[pa.Table], max_bucket: int = 100) -> list[tuple[str, str]]:
    """Sorted unique (a_id < b_id) pairs sharing a (band, key) bucket in any of the tables.

    A bucket larger than ``max_bucket`` (boilerplate) emits a star to its smallest member plus a
    chain instead of all pairs: linear, and still connects the bucket for clustering.
    """
    tables = [t for t in band_tables if t.num_rows]
    if not tables:
        return []
    # One global id space: concatenate each table's (small) dictionary, then rank by string order
    # so that integer order == string order.  Plain string id columns are accepted too.
    dicts, locals_ = [], []
    for t in tables:
        col = t.column("id").combine_chunks()
        if not pa.types.is_dictionary(col.type):
            col = pc.dictionary_encode(col)
        dicts.append(col.dictionary)
        locals_.append(col.indices.to_numpy().astype(np.int64))
    glob = pc.dictionary_encode(pa.concat_arrays(dicts))
    names = glob.dictionary
    order = pc.array_sort_indices(names).to_numpy()
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    glob_idx = rank[glob.indices.to_numpy()]
    parts, off = [], 0
    for d, loc in zip(dicts, locals_):
        parts.append(glob_idx[off + loc])
        off += len(d)
    ids = np.concatenate(parts)
    with np.errstate(over="ignore"):  # fold the band into the key: one uint64 sort instead of lexsort
        key = np.concatenate([t.column("key").to_numpy() for t in tables]) ^ mix64(
            np.concatenate([t.column("band").to_numpy() for t in tables]).astype(np.uint64), seed=7
        )
    srt = np.argsort(key)
    key, ids = key[srt], ids[srt]
    del srt
    brk = np.flatnonzero(key[1:] != key[:-1]) + 1
    starts = np.concatenate(([0], brk))
    sizes = np.diff(np.concatenate((starts, [ids.size])))
    chunks: list[np.ndarray] = []
    two = starts[sizes == 2]
    chunks.append(np.stack((ids[two], ids[two + 1]), axis=1))
    for s, z in zip(starts[sizes > 2], sizes[sizes > 2]):
        members = sorted_unique(ids[s : s + z])
        if members.size <= max_bucket:
            pairs = np.array(list(itertools.combinations(members.tolist(), 2)), dtype=np.int64).reshape(-1, 2)
        else:
            star = np.stack((np.full(members.size - 1, members[0]), members[1:]), axis=1)
            chain = np.stack((members[1:-1], members[2:]), axis=1)
            pairs = np.concatenate((star, chain))
        chunks.append(pairs)
    allp = np.concatenate(chunks)
    allp = allp[allp[:, 0] != allp[:, 1]]  # the same id twice in a bucket (repeated input rows)
    lo = np.minimum(allp[:, 0], allp[:, 1])
    hi = np.maximum(allp[:, 0], allp[:, 1])
    code = sorted_unique(lo * np.int64(order.size) + hi)
    sorted_names = names.take(pa.array(order)).to_pylist()
    return [(sorted_names[c // order.size], sorted_names[c % order.size]) for c in code.tolist()]


# -- verification and clustering -------------------------------------------------------


def verify_pairs(
    pairs: Sequence[tuple[str, str]],
    items_by_id: Mapping[str, DedupItem],
    signatures_by_id: Mapping[str, np.ndarray],
    cfg: DedupConfig,
    level: str,
) -> list[DuplicatePair]:
    """Exact Jaccard and both containments on the shingle sets; keep near_duplicate and reuse pairs.

    near_duplicate: jaccard_exact >= cfg.threshold.  reuse: below that, but
    max(containment) >= cfg.containment_threshold.  Everything else is dropped.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    cache: dict[str, np.ndarray] = {}

    def sh(i: str) -> np.ndarray:
        s = cache.get(i)
        if s is None:
            s = cache[i] = shingle_hashes(items_by_id[i].text, cfg)
        return s

    out: list[DuplicatePair] = []
    for a_id, b_id in pairs:
        if b_id < a_id:
            a_id, b_id = b_id, a_id
        ga_, gb_ = items_by_id[a_id].group, items_by_id[b_id].group
        if ga_ is not None and ga_ == gb_:
            continue
        sa, sb = sh(a_id), sh(b_id)
        if sa.size == 0 or sb.size == 0:
            continue
        j, cab, cba = compare_sets(sa, sb)
        rel = relation(cfg, j, cab, cba)
        if rel is None:
            continue
        ga, gb = signatures_by_id.get(a_id), signatures_by_id.get(b_id)
        est = float(np.mean(ga == gb)) if ga is not None and gb is not None else float("nan")
        out.append(DuplicatePair(level, a_id, b_id, est, float(j), float(cab), float(cba), rel))
    out.sort(key=lambda p: (p.a_id, p.b_id))
    return out


def assign_clusters(
    ids: Sequence[str], pairs: Sequence[DuplicatePair], quality: Mapping[str, int]
) -> dict[str, tuple[str, str | None]]:
    """id -> (cluster_id, duplicate_of) from connected components of near_duplicate pairs.

    Reuse pairs never merge.  Representative: highest quality, ties -> smallest id (independent of
    input order and of process count).  cluster_id = representative id; duplicate_of = representative
    for the others, None for the representative itself.
    """
    uniq = sorted(set(ids))
    index = {x: i for i, x in enumerate(uniq)}
    uf = UnionFind(len(uniq))
    for p in pairs:
        if p.relation == "near_duplicate" and p.a_id in index and p.b_id in index:
            uf.union(index[p.a_id], index[p.b_id])
    out: dict[str, tuple[str, str | None]] = {}
    for comp in uf.components():
        members = [uniq[i] for i in comp]
        rep = min(members, key=lambda m: (-quality.get(m, 0), m))
        for m in members:
            out[m] = (rep, None if m == rep else rep)
    return out


def pairs_table(pairs: Sequence[DuplicatePair]) -> pa.Table:
    """DuplicatePairs as a table with schemas.DUPLICATES, sorted by its sort keys."""
    rows = sorted(pairs, key=lambda p: (p.level, p.a_id, p.b_id))
    cols = {f.name: [getattr(p, f.name) for p in rows] for f in schemas.DUPLICATES}
    return pa.Table.from_pydict(cols, schema=schemas.DUPLICATES)


def skipped_count(signatures: pa.Table, min_len: int) -> int:
    """Items that banding leaves out: stripped text shorter than ``min_len`` or no shingles at all."""
    lengths = signatures.column("length").to_numpy()
    nsh = signatures.column("n_shingles").to_numpy()
    return int(((lengths < min_len) | (nsh == 0)).sum())
