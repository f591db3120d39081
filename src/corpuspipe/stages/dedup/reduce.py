"""The dedup reduce of one level as parallel steps: bands → candidates → gather → spill → verify →
clusters → rows.  Every phase is a step of tasks (``core.stage.Tasks``) that any worker can run,
each task's memory set by ``dedup.partition_rows`` and its share of files, never by the corpus;
between steps this module's glue keeps only arrays over the *duplicates* found (verified pairs,
their entities' hashes, ranks and ids), which is linear in what the release reports.

Phases (modules): ``bands`` (one task per group of signature files), ``candidates`` (per group of
band partitions, then one *gather* task per range of entity hashes), ``spill`` (per group of
files: every needed unit shingled once), ``verify`` (per range, in rounds: star pairs; other
candidates not inside a verified component; the representatives' pairs and the waiting candidates
the ``clusters`` glue asks for; finally the written rows' lazy paragraph scores).

**Rows linear in cluster size**: every member against its representative (near_duplicate), plus
the other verified pairs (reuse, near-duplicates across clusters first, then paragraph_reuse; each
in (a_id, b_id) order) while one of the two sides still has ``extra_pairs_per_item`` budget.  A
family of N copies writes at most ``N - 1 + N`` rows (500 copies: <= 999; before, buckets <=
max_bucket wrote every pair: 100 copies -> 4,950 rows).  Pairs between two non-representative
members of one cluster are not written; they are recoverable (self-join on ``cluster_id``).

**Determinism**: nothing depends on how items are split into files, on the number of tasks or on
their order: entities are ordered by a 64-bit xxh3 of the id string, candidate pairs are sets,
representatives come from the rank, outputs are sorted by id strings.  1 shard vs 5 shards, serial
vs parallel, give byte-identical Parquet (tested).
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from corpuspipe.core import schemas
from corpuspipe.stages.dedup.config import DedupConfig
from corpuspipe.core.stage import Tasks, drive, serial_tasks
from corpuspipe.stages.dedup.bands import band_task, partition_count
from corpuspipe.stages.dedup.candidates import balanced_ranges, candidates_task, check_one_location, gather_task
from corpuspipe.stages.dedup.clusters import cluster_rounds, near_labels
from corpuspipe.stages.dedup.minhash import LEVELS, DedupItem, DuplicatePair, lsh_params, min_length
from corpuspipe.stages.dedup.signatures import write_parquet, write_signatures
from corpuspipe.stages.dedup.spill import entity_info_task, spill_task
from corpuspipe.stages.dedup.verify import NEAR, RELATIONS, verify_task

# Tasks per parallel step: enough to keep 2-8 workers busy and balanced; each task walks its share
# of partitions or files one at a time, so its memory does not grow with fewer, larger shares.
TASKS_PER_STEP = 8
PARA = RELATIONS.index("paragraph_reuse")

CLUSTERS = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("cluster_id", pa.string(), nullable=False),
        pa.field("duplicate_of", pa.string()),
        pa.field("cluster_size", pa.int32(), nullable=False),
    ]
)


@dataclass(frozen=True)
class DedupOutcome:
    pairs_path: Path  # schemas.DUPLICATES rows of this level, sorted by (a_id, b_id)
    clusters_path: Path  # (id, cluster_id, duplicate_of, cluster_size), members of clusters >= 2, by id
    stats: dict


def _chunks(items: Sequence[Any], n: int) -> list[list[Any]]:
    """At most ``n`` contiguous, non-empty chunks of ``items``."""
    n = max(1, min(n, len(items)))
    size = math.ceil(len(items) / n) if items else 0
    return [list(items[k: k + size]) for k in range(0, len(items), size)] if items else []


class _Phases:
    """Wall seconds of each phase as the glue saw them (the CPU seconds of every step's tasks are
    in the build's step log, ``Build.steps``)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._t = time.perf_counter()

    def done(self, name: str) -> None:
        t = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + t - self._t
        self._t = t

    def stats(self) -> dict:
        return {"seconds": {k: round(v, 6) for k, v in self.seconds.items()}}


class _Duplicates:
    """The glue's state: every verified duplicate pair (entity hashes, relation, locations)."""

    def __init__(self) -> None:
        self.parts: list[dict] = []
        self.scored = 0

    def add(self, reports: list[dict]) -> None:
        for r in reports:
            self.scored += r.get("scored", 0)
            d = r.get("dups")
            if d is not None and d["a"].size:
                self.parts.append(d)

    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.parts:
            z = np.zeros(0, np.uint64)
            return z, z, np.zeros(0, np.int8)
        return tuple(np.concatenate([p[k] for p in self.parts]) for k in ("a", "b", "rel"))  # type: ignore[return-value]

    def endpoints(self) -> tuple[np.ndarray, np.ndarray]:
        """(sorted unique entity hashes, their locations) of every duplicate pair."""
        if not self.parts:
            return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
        eh = np.concatenate([p[k] for p in self.parts for k in ("a", "b")])
        loc = np.concatenate([p[k] for p in self.parts for k in ("la", "lb")])
        check_one_location(eh, loc)
        eh, first = np.unique(eh, return_index=True)
        return eh, loc[first]


class _Entities:
    """The entities of the verified duplicates, sorted by hash: position = index here."""

    def __init__(self, eh, loc, flags, script, quality, names: pa.Array):
        self.eh, self.loc, self.names = eh, loc, names
        n = eh.size
        name_order = pc.sort_indices(names).to_numpy() if n else np.zeros(0, np.int64)  # UTF-8 order = code points
        self.name_rank = np.empty(n, np.int64)
        self.name_rank[name_order] = np.arange(n)
        by_rank = np.lexsort((self.name_rank, -quality, script, flags))
        self.rank = np.empty(n, np.int64)
        self.rank[by_rank] = np.arange(n)

    @classmethod
    def empty(cls) -> "_Entities":
        z = np.zeros(0, np.int64)
        return cls(np.zeros(0, np.uint64), np.zeros(0, np.uint64), z, z, z, pa.array([], pa.string()))

    def __len__(self) -> int:
        return int(self.eh.size)

    def pos(self, hashes: np.ndarray) -> np.ndarray:
        p = np.searchsorted(self.eh, hashes)
        if hashes.size and ((p >= self.eh.size).any() or (self.eh[np.minimum(p, self.eh.size - 1)] != hashes).any()):
            raise ValueError("a verified pair names an entity the glue does not know")
        return p


class _Level:
    """One level's reduce: paths, parameters and the range tasks' arguments."""

    def __init__(self, sig: Sequence[tuple[str, int]], level: str, cfg: DedupConfig, work: Path):
        self.files = [(fi, str(p)) for fi, (p, _) in enumerate(sig)]
        self.band_rows = sum(n for _, n in sig)
        self.level, self.cfg, self.work = level, cfg, Path(work)
        self.cfg_json = cfg.model_dump_json()
        self.lo = min_length(cfg, level)
        self.dirs = {k: self.work / f"{level}.{k}" for k in ("bands", "cand", "pairs", "spill", "scores", "asks")}
        self.ranges: list[tuple[int, int]] = []
        self.round = 0

    def label(self, phase: str) -> str:
        return f"dedup: {phase} ({self.level})"

    def verify(self, kind: str, args: Sequence[tuple[int, str | None]]) -> Tasks:
        self.round += 1
        d = self.dirs
        return Tasks(self.label(f"verify ({kind})"), verify_task,
                     [(kind, q, str(d["pairs"]), str(d["spill"]), str(d["scores"]), self.cfg_json, arg, self.round,
                       self.level == "section") for q, arg in args])

    def route(self, a: np.ndarray) -> np.ndarray:
        """The range index of each first entity hash."""
        lows = np.array([lo for lo, _ in self.ranges], np.uint64)
        return np.searchsorted(lows, a, side="right") - 1

    def ask_file(self, name: str, q: int, arr: np.ndarray) -> str:
        path = self.dirs["asks"] / f"{name}-r{self.round + 1:03d}-q{q:04d}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, arr)
        return str(path)


def find_duplicates_steps(sig: Sequence[tuple[str, int]], level: str, cfg: DedupConfig, work: Path
                          ) -> Generator[Tasks, list, DedupOutcome]:
    """Pairs and clusters of one level from every shard's signature file (``sig``: (path, band
    rows) per file), as parallel steps (module docstring)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    run = _Run(_Level(sig, level, cfg, work))
    try:
        yield from run.candidates()
        yield from run.verify()
        ents = yield from _entities(run.lv, run.dups)
        rep_of = yield from cluster_rounds(len(ents), run.near_edges(ents), ents.rank,
                                           lambda pairs: run.relations_of(ents, pairs),
                                           lambda group: run.near_among_deferred(ents, group))
        run.phase.done("cluster")
        return (yield from run.write(ents, rep_of))
    except BaseException:
        # a failed build (a full disk, most likely: the bands and the spill are its largest
        # scratch, ~0.3 GB at 100 MB) does not keep the disk full (issue 24 #7)
        for p in run.d.values():
            shutil.rmtree(p, ignore_errors=True)
        raise


class _Run:
    """One level's reduce in phases; each phase method yields its steps and keeps its figures."""

    def __init__(self, lv: _Level):
        self.lv, self.d = lv, lv.dirs
        for p in self.d.values():
            shutil.rmtree(p, ignore_errors=True)
        self.phase = _Phases()
        self.dups = _Duplicates()
        self.stats: dict[str, Any] = {}
        self.waiting = 0

    def candidates(self) -> Generator[Tasks, list, None]:
        """Bands, candidates per partition, gathered per hash range, and the needed units spilled."""
        lv, d, cfg = self.lv, self.d, self.lv.cfg
        parts = partition_count(lv.band_rows, cfg)
        groups = _chunks(lv.files, TASKS_PER_STEP)
        got = yield Tasks(lv.label("bands"), band_task, [(g, lv.cfg_json, lv.lo, parts, str(d["bands"]), t)
                                                         for t, g in enumerate(groups)])
        self.stats.update(items=sum(r["items"] for r in got), skipped_short=sum(r["skipped_short"] for r in got),
                          partitions=parts)
        self.phase.done("bands")
        got = yield Tasks(lv.label("candidates"), candidates_task,
                          [(c, str(d["bands"]), cfg.max_bucket, str(d["cand"]), cfg.partition_rows)
                           for c in _chunks(range(parts), TASKS_PER_STEP)])
        shutil.rmtree(d["bands"], ignore_errors=True)
        rows = sum(r["star"] + r["other"] for r in got)
        hist = sum((r["hist"] for r in got), np.zeros(1, np.int64))
        lv.ranges = balanced_ranges(hist, max(TASKS_PER_STEP, -(-rows // max(1, cfg.partition_rows))))
        self.phase.done("candidates")
        got = yield Tasks(lv.label("gather"), gather_task, [(q, lo, hi, str(d["cand"]), parts, str(d["pairs"]))
                                                           for q, (lo, hi) in enumerate(lv.ranges)])
        shutil.rmtree(d["cand"], ignore_errors=True)
        self.stats.update(ranges=len(lv.ranges), candidates=sum(r["star"] + r["other"] for r in got))
        self.phase.done("gather")
        got = yield Tasks(lv.label("spill"), spill_task, [(g, str(d["pairs"]), len(lv.ranges), lv.cfg_json, lv.lo,
                                                            str(d["spill"])) for g in groups])
        self.stats.update(rows_read_for_verify=sum(r["rows_read_for_verify"] for r in got),  # units shingled once
                          spill_mb=round(sum(r["spill_bytes"] for r in got) / 1e6, 1))
        self.phase.done("spill")

    def verify(self) -> Generator[Tasks, list, None]:
        """The star pairs, then the other candidates not inside a verified star component."""
        lv = self.lv
        got = yield lv.verify("star", [(q, None) for q in range(len(lv.ranges))])
        self.dups.add(got)
        a, b, rel = self.dups.pairs()
        near = rel == NEAR
        star_ents = np.unique(np.concatenate((a[near], b[near])))
        labels = near_labels(star_ents.size, np.stack((np.searchsorted(star_ents, a[near]),
                                                       np.searchsorted(star_ents, b[near])), axis=1))
        label_file = lv.ask_file("labels", 0, np.stack((star_ents, labels.astype(np.uint64)), axis=1))
        got = yield lv.verify("other", [(q, label_file) for q in range(len(lv.ranges))])
        self.dups.add(got)
        self.waiting = sum(r["deferred"] for r in got)
        self.phase.done("verify")

    def near_edges(self, ents: _Entities) -> np.ndarray:
        a, b, rel = self.dups.pairs()
        near = rel == NEAR
        return np.stack((ents.pos(a[near]), ents.pos(b[near])), axis=1)

    def relations_of(self, ents: _Entities, pos_pairs: np.ndarray) -> Generator[Tasks, list, np.ndarray]:
        """Relation codes of position pairs (a representative and its members), scored where needed."""
        lv = self.lv
        x, y = ents.eh[pos_pairs[:, 0]], ents.eh[pos_pairs[:, 1]]
        lx, ly = ents.loc[pos_pairs[:, 0]], ents.loc[pos_pairs[:, 1]]
        asked = np.stack((np.minimum(x, y), np.maximum(x, y), np.where(x < y, lx, ly), np.where(x < y, ly, lx)), axis=1)
        q_of = lv.route(asked[:, 0])
        qs = np.unique(q_of).tolist()
        got = yield lv.verify("pairs", [(q, lv.ask_file("pairs", q, asked[q_of == q])) for q in qs])
        self.dups.add(got)
        out = np.empty(len(asked), np.int8)
        for q, r in zip(qs, got):
            out[q_of == q] = r["relations"]
        return out

    def near_among_deferred(self, ents: _Entities, group: np.ndarray) -> Generator[Tasks, list, np.ndarray]:
        """Near-duplicate edges among the waiting candidates inside the groups (positions)."""
        if not self.waiting:
            return np.zeros((0, 2), np.int64)
        lv = self.lv
        inside = np.flatnonzero(group >= 0)
        path = lv.ask_file("groups", 0, np.stack((ents.eh[inside], group[inside].astype(np.uint64)), axis=1))
        got = yield lv.verify("deferred", [(q, path) for q in range(len(lv.ranges))])
        self.dups.add(got)
        found = np.concatenate([r["near"] for r in got]) if got else np.zeros((0, 2), np.uint64)
        if not found.size:
            return np.zeros((0, 2), np.int64)
        return np.stack((ents.pos(found[:, 0]), ents.pos(found[:, 1])), axis=1)

    def write(self, ents: _Entities, rep_of: np.ndarray) -> Generator[Tasks, list, DedupOutcome]:
        """The written pairs (their floats from the range tasks) and the clusters, as Parquet."""
        lv = self.lv
        pairs, rel_counts = yield from _pair_table(lv, self.dups, ents, rep_of)
        pairs_path = lv.work / f"{lv.level}.duplicates.parquet"
        write_parquet(pairs, pairs_path)
        clusters, cluster_sizes = _cluster_table(rep_of, ents)
        clusters_path = lv.work / f"{lv.level}.clusters.parquet"
        write_parquet(clusters, clusters_path)
        for k in ("pairs", "spill", "scores", "asks"):
            shutil.rmtree(self.d[k], ignore_errors=True)
        self.phase.done("write")
        stats = {
            **self.stats,
            "verified_pairs": self.dups.scored,  # exact comparisons: candidates inside a verified component wait
            "waited": self.waiting,
            **rel_counts,
            "clusters_with_duplicates": int(cluster_sizes.size),
            "largest_cluster": int(cluster_sizes.max(initial=0)),
            **self.phase.stats(),
        }
        return DedupOutcome(pairs_path, clusters_path, stats)


def _entities(lv: _Level, dups: _Duplicates) -> Generator[Tasks, list, _Entities]:
    """The duplicates' entities with the representative rule's inputs and their ids, read from the
    spill's index by one task per group of files."""
    eh, loc = dups.endpoints()
    if not eh.size:
        return _Entities.empty()
    fi = (loc >> np.uint64(32)).astype(np.int64)
    requests = [(f, lv.ask_file("entities", f, np.sort(eh[fi == f]))) for f in np.unique(fi).tolist()]
    got = yield Tasks(lv.label("entities"), entity_info_task,
                      [(g, str(lv.dirs["spill"])) for g in _chunks(requests, TASKS_PER_STEP)])
    h = np.concatenate([r["eh"] for r in got])
    order = np.argsort(h, kind="stable")
    if not np.array_equal(h[order], eh):
        raise ValueError("the spill's index lacks a duplicate's entity")
    col = {c: np.concatenate([r[c] for r in got])[order] for c in ("flags", "script", "quality")}
    names = pa.array([n for r in got for n in r["names"]], pa.string()).take(pa.array(order, pa.int64()))
    return _Entities(eh, loc, col["flags"], col["script"], col["quality"], names)


def _select_rows(a: np.ndarray, b: np.ndarray, rel: np.ndarray, rep: np.ndarray, name_rank: np.ndarray,
                 budget_each: int) -> np.ndarray:
    """Indices of the written pairs among the verified duplicates (module docstring)."""
    ra, rb = rep[a], rep[b]
    same = (ra >= 0) & (ra == rb)
    fixed = same & ((ra == a) | (ra == b))  # member against its representative: always written
    extra = np.flatnonzero(~same)  # two members of one cluster (same, not fixed): not written
    ea, eb = a[extra], b[extra]
    lo, hi = np.minimum(name_rank[ea], name_rank[eb]), np.maximum(name_rank[ea], name_rank[eb])
    # whole-text relations take the per-item budget first, then paragraph reuse (a long section
    # shares paragraphs with many others), each in (a_id, b_id) order
    order = np.lexsort((hi, lo, rel[extra] == PARA))
    budget = [budget_each] * max(1, rep.size)
    take = []
    for k, x, y in zip(order.tolist(), ea[order].tolist(), eb[order].tolist()):
        bx, by = budget[x], budget[y]
        if bx <= 0 and by <= 0:
            continue
        budget[x], budget[y] = bx - 1, by - 1
        take.append(k)
    return np.sort(np.concatenate((np.flatnonzero(fixed), extra[np.asarray(take, np.int64)])))


def _pair_table(lv: _Level, dups: _Duplicates, ents: _Entities, rep: np.ndarray
                ) -> Generator[Tasks, list, tuple[pa.Table, dict]]:
    """The written DUPLICATES rows, sorted by (a_id, b_id): chosen here, their floats (and the lazy
    paragraph scores) from the range tasks."""
    ah, bh, rel = dups.pairs()
    a, b = ents.pos(ah), ents.pos(bh)
    sel = _select_rows(a, b, rel, rep, ents.name_rank, lv.cfg.extra_pairs_per_item)
    a, b, ah, bh = a[sel], b[sel], ah[sel], bh[sel]
    # by pivot: the representative when one side is, else a (its paragraphs are prepared once)
    pivot_b = (rep[b] == b).astype(np.uint64)
    asked = np.stack((ah, bh, ents.loc[a], ents.loc[b], pivot_b), axis=1)
    q_of = lv.route(ah)
    qs = np.unique(q_of).tolist()
    got = yield lv.verify("rows", [(q, lv.ask_file("rows", q, asked[q_of == q])) for q in qs])
    cols = {c: np.empty(sel.size) for c in ("est", "j", "cab", "cba", "pj", "pc")}
    rel_out = np.empty(sel.size, np.int8)
    for q, r in zip(qs, got):
        m = q_of == q
        for c in cols:
            cols[c][m] = r["rows"][c]
        rel_out[m] = r["rows"]["rel"]
    nr = ents.name_rank
    swap = nr[b] < nr[a]
    a, b = np.where(swap, b, a), np.where(swap, a, b)
    cab, cba = np.where(swap, cols["cba"], cols["cab"]), np.where(swap, cols["cab"], cols["cba"])
    out = np.lexsort((nr[b], nr[a]))
    rel_names = pa.array(list(RELATIONS), pa.string())

    def f32(x: np.ndarray) -> pa.Array:
        x = x[out]
        return pa.array(x, pa.float64(), mask=np.isnan(x)).cast(pa.float32())

    table = pa.Table.from_arrays(
        [
            pa.array(np.full(sel.size, lv.level, object), pa.string()) if sel.size else pa.array([], pa.string()),
            ents.names.take(pa.array(a[out], pa.int64())),
            ents.names.take(pa.array(b[out], pa.int64())),
            f32(cols["est"]), f32(cols["j"]), f32(cab), f32(cba),
            rel_names.take(pa.array(rel_out[out].astype(np.int64), pa.int64())),
            f32(cols["pj"]), f32(cols["pc"]),
        ],
        schema=schemas.DUPLICATES,
    )
    counts = {r: 0 for r in RELATIONS}
    for v in pc.value_counts(table.column("relation")).to_pylist():
        counts[v["values"]] = v["counts"]
    return table, counts


def _cluster_table(rep_of: np.ndarray, ent: _Entities) -> tuple[pa.Table, np.ndarray]:
    """CLUSTERS rows (by id) as Arrow columns, and the sizes of the clusters."""
    m = np.flatnonzero(rep_of[: len(ent)] >= 0)
    r = rep_of[m]
    size = np.bincount(r, minlength=len(ent)) if r.size else np.zeros(0, np.int64)
    order = np.argsort(ent.name_rank[m], kind="stable")
    m, r = m[order], r[order]
    table = pa.Table.from_arrays(
        [
            ent.names.take(pa.array(m, pa.int64())),
            ent.names.take(pa.array(r, pa.int64())),
            ent.names.take(pa.array(r, pa.int64(), mask=m == r)),
            pa.array(size[r].astype(np.int32), pa.int32()) if r.size else pa.array([], pa.int32()),
        ],
        schema=CLUSTERS,
    )
    return table, size[size > 0]


def find_duplicates(sig_paths: Sequence[Path], level: str, cfg: DedupConfig, work: Path) -> DedupOutcome:
    """The same reduce in this process, one task after the other (tests, bench tools)."""
    per_unit = lsh_params(cfg)["bands"] + lsh_params(cfg)["reuse_bands"]
    sig = []
    for p in sig_paths:
        t = pq.read_table(p, columns=["length", "n_shingles", "fingerprints"])
        ok = (t.column("n_shingles").to_numpy() > 0) & (t.column("length").to_numpy() >= min_length(cfg, level))
        sig.append((str(p), int(ok.sum()) * per_unit + len(t.column("fingerprints").combine_chunks().values)))
    return drive(find_duplicates_steps(sig, level, cfg, Path(work)), serial_tasks)


def dedup_in_memory(
    items: Sequence[DedupItem], cfg: DedupConfig, level: str, *, shards: int = 1
) -> tuple[list[DuplicatePair], dict[str, tuple[str, str | None]], dict]:
    """Tests and small callers: the on-disk path in a temporary directory.

    Returns the pairs, ``entity -> (cluster_id, duplicate_of)`` for *every* entity (singletons map to
    themselves), and the stats.  ``shards`` splits the items round-robin by document group.
    """
    with tempfile.TemporaryDirectory(prefix="dedup-") as tmp:
        tmp_path = Path(tmp)
        by_shard: list[list[DedupItem]] = [[] for _ in range(max(1, shards))]
        for it in items:
            g = it.group if it.group is not None else it.key
            by_shard[xxhash.xxh3_64_intdigest(g.encode()) % len(by_shard)].append(it)
        paths = []
        for k, part in enumerate(by_shard):
            p = tmp_path / f"sig-{k:03d}.parquet"
            write_signatures(part, level, cfg, p)
            paths.append(p)
        out = find_duplicates(paths, level, cfg, tmp_path / "work")
        ptab = pq.read_table(out.pairs_path).to_pylist()
        ctab = pq.read_table(out.clusters_path).to_pylist()
    pairs = [DuplicatePair(**r) for r in ptab]
    clusters = {it.key: (it.key, None) for it in items}
    clusters.update({r["id"]: (r["cluster_id"], r["duplicate_of"]) for r in ctab})
    return pairs, clusters, out.stats
