"""Phase 1 of the dedup reduce: LSH band rows, one task per group of signature files.

Each task reads its signature files in batches (never their text) and appends every banded unit's
band rows to one file per (partition, task): ``<band_dir>/<p:05d>/<task:04d>.bands``, a partition
being ``key mod P``.  A band row is four uint64 (:data:`BAND_ROW`): the band key, the entity hash,
the group hash (pairs inside one document are dropped) and the entity's **location** --
``file << 32 | row`` of its own unit (id == entity) in its signature file -- so the later phases
find any entity's text without a directory of all entities.  P is chosen so one partition holds
about ``dedup.partition_rows`` band rows (the candidates phase sorts one partition at a time).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpuspipe.stages.dedup.config import DedupConfig
from corpuspipe.stages.dedup import kernels
from corpuspipe.stages.dedup.minhash import band_matrix, fold_band

BAND_ROW = 4  # uint64 columns: key, entity hash, group hash, location
_READ_BATCH = 8192  # signature rows per read: 8k x 128 x 4 B = 4 MB


def partition_count(band_rows: int, cfg: DedupConfig) -> int:
    """Partitions of about ``partition_rows`` band rows, counting only the units that are banded
    (``signatures.write_signatures``' ``band_rows``): counting every row, the 100 MB crawl's
    section partitions held 43 % of the budget (57 % of its units are paragraphs shorter than
    ``min_section_chars``)."""
    return max(1, -(-band_rows // max(1, cfg.partition_rows)))


def location(fi: int, row: np.ndarray) -> np.ndarray:
    return (np.uint64(fi) << np.uint64(32)) | row.astype(np.uint64)


def split_location(loc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(file index, row) of locations."""
    return (loc >> np.uint64(32)).astype(np.int64), (loc & np.uint64(0xFFFFFFFF)).astype(np.int64)


def whole_rows(ids, entities) -> np.ndarray:
    """For every row of a signature file (ids, entities as Arrow arrays, rows sorted by id), the row
    of its entity's own unit: an entity's units are one run of rows starting with its own (``sid``
    sorts before ``sid#NNN``)."""
    n = len(ids)
    if not n:
        return np.empty(0, np.int64)
    ents = entities.to_numpy(zero_copy_only=False)
    start = np.ones(n, bool)
    start[1:] = ents[1:] != ents[:-1]
    heads = np.flatnonzero(start)
    own = pc.equal(ids, entities).to_numpy(zero_copy_only=False)
    if not own[heads].all():
        bad = ents[heads[np.flatnonzero(~own[heads])[0]]]
        raise ValueError(f"entity {bad!r} has no unit of its own (id == entity) first in its signature file: "
                         "its own text is needed")
    return heads[np.cumsum(start) - 1]


def _append(out: Path, task: int, parts: int, key: np.ndarray, eh: np.ndarray, gh: np.ndarray, loc: np.ndarray) -> int:
    """Append band rows (``key`` an (n, b) or (n,) array, one row per key) to their partitions."""
    key = np.ascontiguousarray(key.reshape(key.shape[0], -1), dtype=np.uint64)
    eh, gh, loc = (np.ascontiguousarray(x, dtype=np.uint64) for x in (eh, gh, loc))
    rows = np.empty((key.size, BAND_ROW), np.uint64)
    offsets = np.empty(parts + 1, np.int64)
    kernels.scatter_band_rows(key, eh, gh, loc, parts, rows, offsets)
    offs = offsets.tolist()
    for p in range(parts):
        if offs[p] < offs[p + 1]:
            (out / f"{p:05d}").mkdir(parents=True, exist_ok=True)
            with open(out / f"{p:05d}" / f"{task:04d}.bands", "ab") as f:
                f.write(rows[offs[p]: offs[p + 1]].tobytes())
    return int(key.size)


def band_task(files: Sequence[tuple[int, str]], cfg_json: str, lo: int, parts: int, band_dir: str,
              task: int) -> dict:
    """Band rows of every banded unit of ``files`` ((index, path) pairs), appended per partition.
    The rows of one file are grouped by partition with one compiled counting sort
    (``kernels.scatter_band_rows``) and appended to ``<p>/<task>.bands``: the candidates phase then
    reads one folder per partition."""
    cfg = DedupConfig.model_validate_json(cfg_json)
    out = Path(band_dir)
    items = skipped = rows_total = 0
    for fi, path in files:
        ident = pq.read_table(path, columns=["id", "entity"])
        whole = whole_rows(ident.column("id").combine_chunks(), ident.column("entity").combine_chunks())
        del ident
        keys, ehs, ghs, locs = [], [], [], []
        extra: list[tuple[np.ndarray, ...]] = []
        base = 0
        for batch in pq.ParquetFile(path).iter_batches(
                batch_size=_READ_BATCH, columns=["eh", "gh", "length", "n_shingles", "signature", "fingerprints"]):
            n = batch.num_rows
            items += n
            ok = (batch.column("n_shingles").to_numpy() > 0) & (batch.column("length").to_numpy() >= lo)
            skipped += int(n - ok.sum())
            idx = np.flatnonzero(ok)
            if idx.size:
                width = batch.schema.field("signature").type.list_size
                mat = batch.column("signature").flatten().to_numpy(zero_copy_only=False).reshape(n, width)[idx]
                keys.append(fold_band(band_matrix(mat, cfg)))  # (m, bands)
                ehs.append(batch.column("eh").to_numpy()[idx])
                ghs.append(batch.column("gh").to_numpy()[idx])
                locs.append(location(fi, whole[base + idx]))
                fp = batch.column("fingerprints")
                if len(fp.values):  # paragraph fingerprints: one more bucket key each (documents)
                    rows_of = np.asarray(pc.list_parent_indices(fp))
                    extra.append((fp.values.to_numpy(), batch.column("eh").to_numpy()[rows_of],
                                  batch.column("gh").to_numpy()[rows_of], location(fi, whole[base + rows_of])))
            base += n
        if keys:
            rows_total += _append(out, task, parts, np.concatenate(keys), np.concatenate(ehs), np.concatenate(ghs),
                                  np.concatenate(locs))
        if extra:
            rows_total += _append(out, task, parts, *(np.concatenate([e[k] for e in extra]) for k in range(4)))
    return {"items": items, "skipped_short": skipped, "band_rows": rows_total}
