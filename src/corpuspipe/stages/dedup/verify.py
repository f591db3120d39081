"""Phases 5-7 of the dedup reduce: exact scores of candidate pairs, one task per hash range.

Estimates never decide: every pair is verified on its two texts' shingle sets (from the spill).
An entity's **own** unit (a document, a whole leaf section) gives the pair's scores and its
relation (near_duplicate / reuse); the best paragraph pair of two sections (by containment, then
Jaccard; a one-paragraph section is its own paragraph) is reported beside them and makes the pair
``paragraph_reuse`` when only it passes -- so it is computed while verifying only when the whole
units fail, and for a pair that is already near_duplicate/reuse only if its row is written (the
pair is ``lazy`` until then; most pairs of a large family are never written).  Paragraph units
find candidates; they never make two sections near-duplicates (before, a chapter and one of its
subsections scored Jaccard 1.0).  The intersections and the best paragraph pair are compiled loops
(``kernels``).

A range's scores are kept on disk as chunks (``<scores>/q<q>/c<k>.npz``: pairs, relation code,
six floats, the lazy flag), one per scoring round; a round first looks a pair up among them, so no
pair is ever scored twice.  The tasks (:func:`verify_task`) are the rounds the reduce's glue asks
for: the star pairs, the other candidates not already inside a verified component, the pairs a
representative needs, the waiting candidates of a split component, and finally the written rows'
paragraph scores.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from corpuspipe.stages.dedup.config import DedupConfig
from corpuspipe.stages.dedup import kernels
from corpuspipe.stages.dedup.bands import split_location
from corpuspipe.stages.dedup.candidates import check_one_location
from corpuspipe.stages.dedup.minhash import compare_sets, relation
from corpuspipe.stages.dedup.spill import INDEX

RELATIONS = ("near_duplicate", "reuse", "paragraph_reuse")  # codes of the rel column (-1: none)
NEAR = 0
FLOAT_COLS = ("est", "j", "cab", "cba", "pj", "pc")
_LAZY = "lazy"  # pj/pc not computed yet: the whole texts decided the relation


class Units:
    """The spilled units of one task's entities (sorted entity hashes), read back with ``os.pread``."""

    def __init__(self, spill_dir: Path, eh: np.ndarray, loc: np.ndarray):
        self.dir = Path(spill_dir)
        order = np.argsort(eh, kind="stable")
        self.eh = eh[order]
        loc = loc[order]
        n = self.eh.size
        self.fi = split_location(loc)[0]
        self.rows = np.empty(n, INDEX)
        par: list[np.ndarray] = []
        at = 0
        for f in np.unique(self.fi).tolist():
            sel = np.flatnonzero(self.fi == f)
            idx = np.load(self.dir / f"f{f:05d}.idx.npy", mmap_mode="r")
            pos = np.searchsorted(idx["eh"], self.eh[sel])
            got = idx[np.minimum(pos, idx.shape[0] - 1)]
            if (pos >= idx.shape[0]).any() or (got["eh"] != self.eh[sel]).any():
                raise ValueError(f"spill f{f:05d}: an entity of this task was not spilled")
            # its paragraphs, copied into one task-local table (rows of f<f>.par.npy)
            k = got["par_end"] - got["par_begin"]
            if k.sum():
                p_all = np.load(self.dir / f"f{f:05d}.par.npy", mmap_mode="r")
                take = np.repeat(got["par_begin"], k) + (np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k))
                par.append(np.asarray(p_all[take]))
            got["par_begin"] = at + np.cumsum(k) - k
            got["par_end"] = at + np.cumsum(k)
            at += int(k.sum())
            self.rows[sel] = got
        self.par = np.concatenate(par) if par else np.zeros((0, 2), np.int64)
        self.col = {c: self.rows[c] for c in ("whole_off", "whole_cnt", "sig_slot")}
        self._fd: dict[tuple[int, str], int] = {}

    def __len__(self) -> int:
        return int(self.eh.size)

    def index(self, hashes: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.eh, hashes)

    def _read(self, f: int, kind: str, nbytes: int, at: int) -> bytes:
        fd = self._fd.get((f, kind))
        if fd is None:
            fd = self._fd[(f, kind)] = os.open(self.dir / f"f{f:05d}.{kind}", os.O_RDONLY)
        return os.pread(fd, nbytes, at)

    def shingles_at(self, f: int, off: int, cnt: int) -> np.ndarray:
        if not cnt:
            return np.empty(0, np.uint64)
        return np.frombuffer(self._read(f, "sh", cnt * 8, off * 8), np.uint64)

    def whole(self, i: int) -> np.ndarray:
        return self.shingles_at(int(self.fi[i]), int(self.col["whole_off"][i]), int(self.col["whole_cnt"][i]))

    def signature(self, i: int, width: int) -> np.ndarray:
        return np.frombuffer(self._read(int(self.fi[i]), "sig", width * 4, int(self.col["sig_slot"][i]) * width * 4),
                             np.uint32)

    def paragraphs(self, i: int) -> list[np.ndarray] | None:
        """Shingle sets of its paragraph units, or None when it has none (it is its own paragraph)."""
        b, e = int(self.rows["par_begin"][i]), int(self.rows["par_end"][i])
        if b == e:
            return None
        f = int(self.fi[i])
        return [self.shingles_at(f, int(o), int(c)) for o, c in self.par[b:e].tolist()]

    def close(self) -> None:
        for fd in self._fd.values():
            os.close(fd)
        self._fd.clear()


class ParagraphSide:
    """One side's non-empty paragraph shingle arrays, concatenated and sorted once, to meet many
    other sides (``best_paragraph_pair`` with its a side prepared)."""

    def __init__(self, la: Sequence[np.ndarray]) -> None:
        self.ia = [k for k, s in enumerate(la) if s.size]
        if not self.ia:
            return
        self.size = np.array([la[k].size for k in self.ia], np.int64)
        v = np.concatenate([la[k] for k in self.ia])
        lab = np.repeat(np.arange(len(self.ia)), self.size)
        order = np.argsort(v, kind="stable")
        self.v, self.lab = v[order], lab[order]

    def best(self, lb: Sequence[np.ndarray], swap: bool = False) -> tuple[float, float, float] | None:
        """(Jaccard, c_ab, c_ba) of the best pair of this side (a) against ``lb`` (b), or None when
        one side has no non-empty array.  ``swap``: this side is the pair's b side, ``lb`` its a
        side: the scores and the tie order are then the pair's own (a, b)'s.

        One compiled loop (``kernels.best_pair``) builds the intersection counts (a binary search
        of each b shingle in the sorted a side) and picks the best: the numpy version (searchsorted,
        repeat, bincount, then a best-of over the matrix) was ~200 us of call overhead per pair
        of sections, ~60 % of the section verification."""
        ib = [k for k, s in enumerate(lb) if s.size]
        if not self.ia or not ib:
            return None
        size_b = np.array([lb[k].size for k in ib], np.int64)
        boff = np.zeros(len(ib) + 1, np.int64)
        np.cumsum(size_b, out=boff[1:])
        bv = np.concatenate([lb[k] for k in ib])
        return kernels.best_pair(self.v, self.lab, self.size, bv, boff, swap)


def best_paragraph_pair(la: Sequence[np.ndarray], lb: Sequence[np.ndarray]) -> tuple[float, float, float] | None:
    """(Jaccard, c_ab, c_ba) of the best pair of two lists of sorted unique shingle arrays: the
    highest max containment, then the highest Jaccard, then the first in (a, b) order; empty arrays
    never pair.  None when one side has no non-empty array.

    One intersection-count matrix instead of a ``compare_sets`` call per paragraph pair: a
    40-paragraph section against another made 1,600 calls of ~20 us each.  The scorer keeps one
    side prepared (:class:`ParagraphSide`) across a pivot's many pairs; this is the same
    computation for one pair.
    """
    return ParagraphSide(la).best(lb)


class Scorer:
    """Exact scores of pairs of a :class:`Units`' entities (positions)."""

    def __init__(self, units: Units, cfg: DedupConfig):
        self.u, self.cfg = units, cfg
        self._side: tuple[int, ParagraphSide] | None = None  # the last pivot's prepared paragraphs

    def score(self, a: int, b: int):
        """(est, j, cab, cba, relation, pj, pc) of a pair, pj/pc ``_LAZY`` when the whole texts
        decided the relation; None when it is no duplicate at all."""
        sa, sb = self.u.whole(a), self.u.whole(b)
        if not sa.size or not sb.size:
            return None
        j, cab, cba = compare_sets(sa, sb)
        rel = relation(self.cfg, j, cab, cba)
        if rel is not None:
            pj = pc_ = _LAZY
        else:
            pj, pc_, prel = self._paragraphs(a, b, sa, sb, j, cab, cba)
            if prel is None:
                return None
            rel = "paragraph_reuse"
        w = self.cfg.num_perm
        ga, gb = self.u.signature(a, w), self.u.signature(b, w)
        return (np.count_nonzero(ga == gb) / ga.size, j, cab, cba, rel, pj, pc_)

    def _paragraphs(self, a: int, b: int, sa: np.ndarray, sb: np.ndarray, j: float, cab: float, cba: float,
                    pivot_b: bool = False):
        """(pj, pc, relation) of the best paragraph pair; (None, None, None) when there is none.
        One side's paragraphs (a's, or b's with ``pivot_b``), sorted and concatenated, are kept
        across consecutive pairs with the same pivot."""
        pa_, pb_ = self.u.paragraphs(a), self.u.paragraphs(b)
        if pa_ is None and pb_ is None:
            return j, max(cab, cba), relation(self.cfg, j, cab, cba)
        la, lb = (pa_ if pa_ is not None else [sa]), (pb_ if pb_ is not None else [sb])
        if pivot_b:
            a, b, la, lb = b, a, lb, la
        if self._side is None or self._side[0] != a:
            self._side = (a, ParagraphSide(la))
        got = self._side[1].best(lb, swap=pivot_b)
        if got is None:
            return None, None, None
        pj, uab, uba = got
        return pj, max(uab, uba), relation(self.cfg, pj, uab, uba)

    def paragraph_score(self, a: int, b: int, pivot_b: bool = False) -> tuple[float, float]:
        """(pj, pc) of a lazy pair (NaN, NaN when there is no paragraph pair)."""
        sa, sb = self.u.whole(a), self.u.whole(b)
        j, cab, cba = compare_sets(sa, sb)
        pj, pc_, _ = self._paragraphs(a, b, sa, sb, j, cab, cba, pivot_b)
        return (np.nan, np.nan) if pj is None else (pj, pc_)


# -- score chunks of a range -----------------------------------------------------------------
def _key(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.stack((a, b), axis=1).view([("a", "<u8"), ("b", "<u8")]).reshape(-1)


def load_scores(qdir: Path) -> dict[str, np.ndarray]:
    """Every chunk of a range, merged, sorted by (a, b)."""
    chunks = []
    for f in sorted(qdir.glob("c*.npz")):
        with np.load(f) as z:
            chunks.append({k: z[k] for k in z.files})
    if not chunks:
        z = np.zeros(0, np.uint64)
        return {"a": z, "b": z, "la": z, "lb": z, "rel": np.zeros(0, np.int8), "lazy": np.zeros(0, bool),
                **{c: np.zeros(0) for c in FLOAT_COLS}}
    out = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    order = np.lexsort((out["b"], out["a"]))
    return {k: v[order] for k, v in out.items()}


def _lookup(scores: dict[str, np.ndarray], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Index of each (a, b) among the scores, -1 where not scored."""
    have = _key(scores["a"], scores["b"])
    want = _key(a, b)
    if not have.size:
        return np.full(a.size, -1, np.int64)
    i = np.minimum(np.searchsorted(have, want), have.size - 1)
    return np.where(have[i] == want, i, -1)


def _score_pairs(pairs: np.ndarray, units: Units, scorer: Scorer) -> dict[str, np.ndarray]:
    """Scores of (a, b, loc_a, loc_b) rows, in the order of the first side's spill position."""
    k = len(pairs)
    a_pos, b_pos = units.index(pairs[:, 0]), units.index(pairs[:, 1])
    order = np.lexsort((b_pos, units.col["whole_off"][a_pos], units.fi[a_pos]))
    cols = {c: np.full(k, np.nan) for c in FLOAT_COLS}
    rel = np.full(k, -1, np.int8)
    lazy = np.zeros(k, bool)
    for i, x, y in zip(order.tolist(), a_pos[order].tolist(), b_pos[order].tolist()):
        r = scorer.score(x, y)
        if r is None:
            continue
        est, j, cab, cba, rel_name, pj, pc_ = r
        rel[i] = RELATIONS.index(rel_name)
        if pj is _LAZY:
            lazy[i] = True
            pj = pc_ = None
        for c, v in zip(FLOAT_COLS, (est, j, cab, cba, pj, pc_)):
            if v is not None:
                cols[c][i] = v
    out = {"a": pairs[:, 0].copy(), "b": pairs[:, 1].copy(), "la": pairs[:, 2].copy(), "lb": pairs[:, 3].copy(),
           "rel": rel, "lazy": lazy, **cols}
    by = np.lexsort((out["b"], out["a"]))  # chunks are kept sorted by (a, b): lookups search them
    return {k: v[by] for k, v in out.items()}


def _entities_of(pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique hashes, locations) of the entities of (a, b, loc_a, loc_b) rows."""
    both = np.concatenate((pairs[:, [0, 2]], pairs[:, [1, 3]]))
    if not both.size:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    check_one_location(both[:, 0], both[:, 1])
    order = np.argsort(both[:, 0], kind="stable")
    both = both[order]
    keep = np.ones(len(both), bool)
    keep[1:] = both[1:, 0] != both[:-1, 0]
    return both[keep, 0], both[keep, 1]


def _dup_report(new: dict[str, np.ndarray]) -> dict[str, Any]:
    """The newly scored duplicates: (a, b, relation) and their entities' locations."""
    hit = new["rel"] >= 0
    return {k: new[k][hit] for k in ("a", "b", "rel", "la", "lb")}


def verify_task(kind: str, q: int, pairs_dir: str, spill_dir: str, scores_dir: str, cfg_json: str,
                arg: str | None = None, round_: int = 0, paragraphs: bool = True) -> dict[str, Any]:
    """One round of scores for range ``q`` (see the module docstring); ``kind``:

    * ``star``: every star pair of the range;
    * ``other``: the other candidates, except those whose two sides carry the same component label
      in ``arg`` (a (hash, label) file of the entities in verified near-duplicate star pairs): they
      wait (``q<q>.deferred.npy``) -- they cannot change the components;
    * ``pairs``: the (a, b, loc_a, loc_b) rows of file ``arg``; returns their relation codes;
    * ``deferred``: the waiting candidates whose two sides are in the same group of file ``arg``
      (hash, group); returns the near-duplicate ones;
    * ``rows``: the written rows of file ``arg`` (a, b, loc_a, loc_b, pivot_b): their floats, with
      the lazy paragraph scores computed now (``paragraphs``: False at the document level, whose
      rows carry none).
    """
    c0, t0 = time.process_time(), time.perf_counter()
    cfg = DedupConfig.model_validate_json(cfg_json)
    pdir, qdir = Path(pairs_dir), Path(scores_dir) / f"q{q:04d}"
    qdir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    if kind == "star":
        todo = np.load(pdir / f"q{q:04d}.star.npy")
    elif kind == "other":
        todo = np.load(pdir / f"q{q:04d}.other.npy")
        lab_file = np.load(arg) if arg else np.zeros((0, 2), np.int64)
        la, lb = _labels(lab_file, todo[:, 0]), _labels(lab_file, todo[:, 1])
        wait = (la >= 0) & (la == lb)
        np.save(pdir / f"q{q:04d}.deferred.npy", todo[wait])
        out["deferred"] = int(wait.sum())
        todo = todo[~wait]
    elif kind in ("pairs", "deferred", "rows"):
        if kind == "deferred":
            deferred = np.load(pdir / f"q{q:04d}.deferred.npy")
            groups = np.load(arg)  # type: ignore[arg-type]
            ga, gb = _labels(groups, deferred[:, 0]), _labels(groups, deferred[:, 1])
            asked = deferred[(ga >= 0) & (ga == gb)]
        else:
            asked = np.load(arg)  # type: ignore[arg-type]
        scores = load_scores(qdir)
        at = _lookup(scores, asked[:, 0], asked[:, 1])
        if kind == "rows":
            out["rows"] = _rows(asked, scores, at, spill_dir, cfg, paragraphs)
            todo = asked[:0, :4]
        else:
            todo = asked[at < 0, :4]
            out["asked"] = asked
            known = scores["rel"][np.maximum(at, 0)] if scores["rel"].size else np.zeros(at.size, np.int8)
            out["_known_rel"] = np.where(at >= 0, known, -2)
    else:
        raise ValueError(f"unknown verify round {kind!r}")
    new = {"a": np.zeros(0, np.uint64), "b": np.zeros(0, np.uint64), "rel": np.zeros(0, np.int8)}
    if len(todo):
        eh, loc = _entities_of(todo)
        units = Units(Path(spill_dir), eh, loc)
        try:
            new = _score_pairs(todo, units, Scorer(units, cfg))
            np.savez(qdir / f"c{round_:03d}-{kind}.npz", **new)
            out["dups"] = _dup_report(new)
        finally:
            units.close()
    if kind in ("pairs", "deferred"):
        rel = out.pop("_known_rel")
        asked = out.pop("asked")
        fresh = np.flatnonzero(rel == -2)
        if fresh.size:
            at_new = _lookup(new, asked[fresh, 0], asked[fresh, 1])
            rel[fresh] = new["rel"][at_new]
        if kind == "pairs":
            out["relations"] = rel.astype(np.int8)
        else:
            near = rel == NEAR
            out["near"] = asked[near, :2]
    out["scored"] = int(len(todo))
    out["cpu_seconds"], out["seconds"] = time.process_time() - c0, time.perf_counter() - t0
    return out


def _labels(table: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """Label of each hash in a sorted (hash, label) table, -1 where absent."""
    if not table.size or not hashes.size:
        return np.full(hashes.size, -1, np.int64)
    keys = table[:, 0]
    i = np.minimum(np.searchsorted(keys, hashes), keys.size - 1)
    return np.where(keys[i] == hashes, table[i, 1].astype(np.int64), -1)


def _rows(asked: np.ndarray, scores: dict[str, np.ndarray], at: np.ndarray, spill_dir: str, cfg: DedupConfig,
          paragraphs: bool) -> dict[str, np.ndarray]:
    """Floats of the written rows ``asked`` (a, b, loc_a, loc_b, pivot_b; every one scored), the lazy
    paragraph scores computed here, by pivot (its paragraphs prepared once)."""
    if (at < 0).any():
        raise ValueError("a written pair was never scored")
    got = {c: scores[c][at].copy() for c in FLOAT_COLS}
    if not paragraphs:
        got["pj"][:] = np.nan
        got["pc"][:] = np.nan
    lazy = np.flatnonzero(scores["lazy"][at]) if paragraphs else np.zeros(0, np.int64)
    if lazy.size:
        sub = asked[lazy]
        eh, loc = _entities_of(sub[:, :4])
        units = Units(Path(spill_dir), eh, loc)
        try:
            scorer = Scorer(units, cfg)
            a_pos, b_pos = units.index(sub[:, 0]), units.index(sub[:, 1])
            pivot_b = sub[:, 4].astype(bool)
            pivot = np.where(pivot_b, b_pos, a_pos)
            order = np.argsort(pivot, kind="stable")
            for k in order.tolist():
                got["pj"][lazy[k]], got["pc"][lazy[k]] = scorer.paragraph_score(int(a_pos[k]), int(b_pos[k]),
                                                                               bool(pivot_b[k]))
        finally:
            units.close()
    return {"a": asked[:, 0].copy(), "b": asked[:, 1].copy(), "rel": scores["rel"][at], **got}
