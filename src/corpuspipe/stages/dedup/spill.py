"""Phase 4 of the dedup reduce: the candidates' shingle sets, computed once, one task per group of files.

Before any pair is scored, every unit a score may need -- the candidate entities' own units and
their paragraphs of at least ``lo`` stripped characters (a short line such as 「各位代表！」 recurs
in every report and would otherwise score 1.0) -- is shingled **once**, file by file, and spilled
under ``<spill_dir>``: per signature file ``f<fi>.sh`` (uint64 shingles, set after set),
``f<fi>.sig`` (the own units' signatures, uint32), ``f<fi>.idx.npy`` (per needed entity, sorted
by entity hash: where its sets are, and what the representative rule needs: :data:`INDEX`),
``f<fi>.par.npy`` (its paragraphs' sets) and ``f<fi>.names.parquet`` (the ids, in the index's
order).  Scores then read their units back with
``os.pread`` (page cache, not process memory).

Texts are shingled ``BATCH_CHARS`` at a time with ``shingle_batch`` (one numpy pass over many
texts): per text, the 100 MB crawl's section units (~130 chars) shingled at 3.8 MB/s, batched at
~35 MB/s.  Only the row groups holding needed rows are read.  Storing shingles in the signature
files instead would cost 8 bytes per character of *every* unit (~2x the text, incompressible); the
spill holds only the candidates' (100 MB crawl: 111 MB documents, 210 MB sections).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpuspipe.stages.dedup.config import DedupConfig
from corpuspipe.stages.dedup.bands import split_location
from corpuspipe.stages.dedup.candidates import check_one_location
from corpuspipe.stages.dedup.minhash import signature_matrix
from corpuspipe.stages.dedup.shingles import BATCH_CHARS, shingle_batches

EMPTY_SIG = np.uint32(0xFFFFFFFF)
#: A spilled entity (one row of ``f<fi>.idx.npy``, sorted by hash): where its own unit's shingles
#: and signature are, its paragraphs (rows ``par_begin:par_end`` of ``f<fi>.par.npy``: offset,
#: count), and the representative rule's inputs.  Memory-mapped by every task that scores.
INDEX = np.dtype([("eh", "<u8"), ("whole_off", "<i8"), ("whole_cnt", "<i8"), ("sig_slot", "<i8"),
                  ("par_begin", "<i8"), ("par_end", "<i8"), ("flags", "<i8"), ("script", "<i8"),
                  ("quality", "<i8")])


def needed(need_dir: Path, n_ranges: int, fi: int) -> np.ndarray:
    """(hash, row) of the entities of file ``fi`` that any range's pairs need, by row."""
    lo, hi = np.uint64(fi) << np.uint64(32), (np.uint64(fi) + np.uint64(1)) << np.uint64(32)
    parts = []
    for q in range(n_ranges):
        arr = np.load(need_dir / f"q{q:04d}.need.npy", mmap_mode="r")
        if arr.size:
            a, b = np.searchsorted(arr[:, 1], [lo, hi])
            parts.append(np.array(arr[a:b]))
    if not parts:
        return np.empty((0, 2), np.int64)
    got = np.concatenate(parts)
    check_one_location(got[:, 0], got[:, 1])
    got = got[np.lexsort((got[:, 1], got[:, 0]))]
    keep = np.ones(len(got), bool)
    keep[1:] = got[1:, 0] != got[:-1, 0]
    got = got[keep]
    got = got[np.argsort(got[:, 1], kind="stable")]
    return np.stack((got[:, 0], split_location(got[:, 1])[1].astype(np.uint64)), axis=1)


def spill_task(files: Sequence[tuple[int, str]], need_dir: str, n_ranges: int, cfg_json: str, lo: int,
               spill_dir: str) -> dict:
    """Spill the needed entities of every file of ``files`` ((index, path) pairs)."""
    cfg = DedupConfig.model_validate_json(cfg_json)
    out = Path(spill_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows_read = spill_bytes = entities = 0
    for fi, path in files:
        want = needed(Path(need_dir), n_ranges, fi)
        if not want.size:
            continue
        got = _spill_file(fi, Path(path), want, cfg, lo, out)
        rows_read += got[0]
        spill_bytes += got[1]
        entities += len(want)
    return {"rows_read_for_verify": rows_read, "spill_bytes": spill_bytes, "entities": entities}


class _Units(NamedTuple):
    """The rows of one signature file to shingle, in row order."""

    whole_row: np.ndarray  # per wanted entity (``want``'s order): the row of its own unit
    rows: np.ndarray  # each entity's own unit and its paragraphs of at least ``lo`` characters
    entity: np.ndarray  # per unit row: its entity's position in ``want``
    is_whole: np.ndarray  # per unit row: the entity's own unit (not a paragraph)


def _spill_file(fi: int, path: Path, want: np.ndarray, cfg: DedupConfig, lo: int, out: Path) -> tuple[int, int]:
    """Spill file ``fi``'s wanted entities; (unit rows read, bytes spilled)."""
    meta = pq.read_table(path, columns=["id", "entity", "eh", "length", "flags", "script_rank", "quality"])
    units = _units(path, meta, want, lo)
    stem = out / f"f{fi:05d}"
    off, cnt, slot, pos, slots = _shingle(path, units, cfg, stem)
    _write_index(path, meta, want, units, off, cnt, slot, stem)
    return int(units.rows.size), pos * 8 + slots * cfg.num_perm * 4


def _units(path: Path, meta: pa.Table, want: np.ndarray, lo: int) -> _Units:
    eh = meta.column("eh").to_numpy()
    length = meta.column("length").to_numpy()
    n = len(eh)
    whole_row = want[:, 1].astype(np.int64)
    if (whole_row >= n).any() or (eh[np.minimum(whole_row, n - 1)] != want[:, 0]).any():
        raise ValueError(f"{path}: the signature file changed since its band rows were written")
    # an entity's units are the run of rows from its own unit while the entity hash stays the same
    ends = np.empty(len(whole_row), np.int64)
    change = np.flatnonzero(np.concatenate((eh[1:] != eh[:-1], [True]))) + 1  # exclusive run ends
    ends[:] = change[np.searchsorted(change, whole_row, side="right")]
    counts = ends - whole_row
    unit_rows = np.repeat(whole_row, counts) + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
    ent_of_unit = np.repeat(np.arange(len(whole_row)), counts)
    is_whole = unit_rows == np.repeat(whole_row, counts)
    keep = is_whole | (length[unit_rows] >= lo)
    return _Units(whole_row, unit_rows[keep], ent_of_unit[keep], is_whole[keep])


def _shingle(path: Path, units: _Units, cfg: DedupConfig, stem: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Shingle the units row group by row group, in row order, into ``<stem>.sh``, and write the own
    units' signatures to ``<stem>.sig`` (signing a unit too short to band now).  Per unit: offset
    and count of its shingles, slot of its signature (-1: a paragraph); and the shingles and
    signatures written."""
    unit_rows, is_whole = units.rows, units.is_whole
    sh_off = np.zeros(unit_rows.size, np.int64)
    sh_cnt = np.zeros(unit_rows.size, np.int64)
    sig_slot = np.full(unit_rows.size, -1, np.int64)
    pf = pq.ParquetFile(path)
    bounds = np.cumsum([0] + [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)])
    grp = np.searchsorted(bounds, unit_rows, side="right") - 1
    width = cfg.num_perm
    pos = slots = 0
    with open(f"{stem}.sh", "wb") as fsh, open(f"{stem}.sig", "wb") as fsg:
        texts: list[str] = []
        sels: list[np.ndarray] = []
        mats: list[np.ndarray] = []
        chars = 0

        def flush() -> None:
            nonlocal pos, slots
            sel = np.concatenate(sels)
            sh, cnt = shingle_batches(texts, cfg)  # BATCH_CHARS per call, even in one large row group
            w = is_whole[sel]
            sg = np.concatenate(mats)[w]
            unsigned = np.flatnonzero((cnt[w] > 0) & (sg == EMPTY_SIG).all(axis=1))
            if unsigned.size:  # a unit too short to band was not signed
                stops = np.cumsum(cnt)
                wi = np.flatnonzero(w)[unsigned]
                sg[unsigned] = signature_matrix([sh[stops[k] - cnt[k]: stops[k]] for k in wi.tolist()], cfg)
            fsh.write(sh.tobytes())
            sh_off[sel] = pos + np.cumsum(cnt) - cnt
            sh_cnt[sel] = cnt
            pos += sh.size
            fsg.write(np.ascontiguousarray(sg).tobytes())
            sig_slot[sel[w]] = slots + np.arange(int(w.sum()))
            slots += int(w.sum())

        for g in np.unique(grp).tolist():
            sel = np.flatnonzero(grp == g)
            t = pf.read_row_group(g, columns=["text", "signature"])
            idx = pa.array(unit_rows[sel] - bounds[g], pa.int64())
            got = t.column("text").take(idx).to_pylist()
            mats.append(t.column("signature").take(idx).combine_chunks().flatten()
                        .to_numpy(zero_copy_only=False).reshape(-1, width))
            texts.extend(got)
            sels.append(sel)
            chars += sum(map(len, got))
            if chars >= BATCH_CHARS:
                flush()
                texts, sels, mats, chars = [], [], [], 0
        if texts:
            flush()
    return sh_off, sh_cnt, sig_slot, pos, slots


def _write_index(path: Path, meta: pa.Table, want: np.ndarray, units: _Units, sh_off: np.ndarray,
                 sh_cnt: np.ndarray, sig_slot: np.ndarray, stem: Path) -> None:
    """The index: per entity (sorted by hash) its own unit and its paragraph units (``<stem>.idx.npy``,
    ``<stem>.par.npy``), and the entities' ids in the index's order (``<stem>.names.parquet``)."""
    order = np.argsort(want[:, 0], kind="stable")
    e_hash = want[order, 0]
    rank_of = np.empty(len(order), np.int64)
    rank_of[order] = np.arange(len(order))
    u_ent = rank_of[units.entity]
    by_ent = np.lexsort((units.rows, u_ent))  # entity (hash order), then row: its own unit first
    u_ent, u_whole = u_ent[by_ent], units.is_whole[by_ent]
    u_off, u_cnt, u_slot = sh_off[by_ent], sh_cnt[by_ent], sig_slot[by_ent]
    first = np.searchsorted(u_ent, np.arange(len(order)))
    par = ~u_whole
    par_begin = np.searchsorted(np.flatnonzero(par), first)
    par_end = np.searchsorted(np.flatnonzero(par), np.append(first[1:], u_ent.size))
    r = units.whole_row[order]
    idx = np.empty(len(order), INDEX)
    idx["eh"] = e_hash
    idx["whole_off"], idx["whole_cnt"], idx["sig_slot"] = u_off[first], u_cnt[first], u_slot[first]
    idx["par_begin"], idx["par_end"] = par_begin, par_end
    for c, src in (("flags", "flags"), ("script", "script_rank"), ("quality", "quality")):
        idx[c] = meta.column(src).to_numpy()[r]
    np.save(f"{stem}.idx.npy", idx)
    np.save(f"{stem}.par.npy", np.stack((u_off[par], u_cnt[par]), axis=1).astype(np.int64))
    names = meta.column("entity").combine_chunks().take(pa.array(r, pa.int64()))
    if not pc.all(pc.equal(meta.column("id").combine_chunks().take(pa.array(r, pa.int64())), names)).as_py():
        raise ValueError(f"{path}: an entity's first row is not its own unit")
    pq.write_table(pa.table({"id": names}), f"{stem}.names.parquet", compression="zstd")


def entity_info_task(requests: Sequence[tuple[int, str]], spill_dir: str) -> dict:
    """What the clusters glue needs of the verified duplicates' entities of some files: for each
    (file index, file of sorted hashes) the representative rule's inputs and the ids."""
    out = Path(spill_dir)
    parts: dict[str, list] = {"eh": [], "flags": [], "script": [], "quality": []}
    names: list[str] = []
    for fi, req in requests:
        want = np.load(req)
        idx = np.load(out / f"f{fi:05d}.idx.npy", mmap_mode="r")
        pos = np.searchsorted(idx["eh"], want)
        rows = idx[pos]
        if (rows["eh"] != want).any():
            raise ValueError(f"spill f{fi:05d}: a duplicate's entity was not spilled")
        for c in parts:
            parts[c].append(np.asarray(rows[c]))
        names.extend(pq.read_table(out / f"f{fi:05d}.names.parquet").column("id").take(pa.array(pos, pa.int64()))
                     .to_pylist())
    cat = {c: (np.concatenate(v) if v else np.zeros(0, np.uint64 if c == "eh" else np.int64)) for c, v in parts.items()}
    return {**cat, "names": names}
