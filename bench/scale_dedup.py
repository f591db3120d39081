"""Dedup at scale: MB/s per phase, peak RSS at two corpus sizes, rows of a 500-copy family, P/R.

Usage: ``python bench/scale_dedup.py [--mb 50 200] [--shard-docs 2000]``
or, over the signature files of a real run (e.g. ``<out>/.work/dedup``; read only, the work dir
goes under ``--keep`` or a temp dir): ``python bench/scale_dedup.py --sig-dir DIR [--level
document section] [--every 10] [--keep OUT]`` -- ``find_duplicates`` alone, one subprocess per
level (own peak RSS), on every ``--every``-th file; ``--keep`` keeps the pairs/clusters Parquet
(``OUT/<level>.*``) to compare two versions with ``--compare OUT1 OUT2``; ``--shingle-speed`` prints
per-text vs batched shingling MB/s on the files' texts.

Each size runs in two subprocesses, so ``ru_maxrss`` is each phase's own peak: generating the corpus
and writing signatures (per shard), then ``find_duplicates`` alone.  The corpus is made on
the fly, shard by shard, and never held whole: documents are stitched from random 3-12 char runs
of the real gov reports in ../shared/external (or $CORPUSPIPE_EXTERNAL; realistic 5-gram overlap,
no long copies; ~2,000 chars each; at least 3.6 MB: the family needs 600 documents); 30% of the bases get 1-3 copies with 1-8% character edits, a fifth of copies is
converted to Traditional (OpenCC s2t); one base has a family of 500 copies (1-3% edits), spread
over all shards.  Truth is "same base"; P/R are over the pairs implied by the clusters (the
representative rule makes clusters, not rows, the result), counted from the cluster x base
contingency table so the family's 124,750 pairs are never listed.

Phases: ``signatures`` = ``write_signatures`` per shard (shingling + MinHash + Parquet with text);
then ``find_duplicates``' bands / candidates / verify / cluster / write.  MB/s are of UTF-8 text
per CPU second (``time.process_time``): the machine is shared, wall time measures the neighbours.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from corpuspipe.config import DedupConfig
from corpuspipe.stages.dedup import DedupItem, find_duplicates, write_signatures

from _need import EXTERNAL, need_external  # ../shared/external, or CORPUSPIPE_EXTERNAL

GOV = EXTERNAL / "gov_reports"
FAMILY = 500
MIN_MB = (FAMILY + 100) * 2000 * 3 / 1e6  # plan(): the family's slots start at document 100


def _source() -> str:
    out = []
    for name in ("government_work_reports.jsonl", "cpc_congress_reports.jsonl"):
        for ln in (GOV / name).read_text(encoding="utf-8").splitlines():
            if ln.strip():
                out.append(json.loads(ln)["content"])
    return "".join(out)


def base_text(src: str, b: int) -> str:
    rng = np.random.default_rng(b)
    n = int(rng.integers(1200, 2800))
    k = n // 7 + 1
    starts = rng.integers(0, len(src) - 12, size=k)
    sizes = rng.integers(3, 12, size=k)
    return "".join(src[s : s + z] for s, z in zip(starts.tolist(), sizes.tolist()))[:n]


def perturb(text: str, rate: float, seed: int) -> str:
    rng = random.Random(seed)
    chars = list(text)
    for i in rng.sample(range(len(chars)), max(1, round(len(chars) * rate))):
        r = rng.random()
        chars[i] = "鑫" if r < 0.6 else ("鑫" + chars[i] if r < 0.8 else "")
    return "".join(chars)


def plan(n_docs: int, seed: int = 0) -> list[tuple[int, float, bool]]:
    """doc index -> (base, edit rate, traditional); base == index for an original."""
    rng = random.Random(seed)
    docs: list[tuple[int, float, bool]] = []
    fam_base = 7
    fam_slots = set(rng.sample(range(100, n_docs), FAMILY))
    while len(docs) < n_docs:
        if len(docs) in fam_slots:
            docs.append((fam_base, rng.choice((0.01, 0.02, 0.03)), False))
            continue
        orig = len(docs)
        docs.append((orig, 0.0, False))
        if rng.random() < 0.3:
            for _ in range(rng.randint(1, 3)):
                if len(docs) < n_docs and len(docs) not in fam_slots:
                    docs.append((orig, rng.choice((0.01, 0.02, 0.03, 0.05, 0.08)), rng.random() < 0.2))
    return docs[:n_docs]


def child_signatures(mb: float, shard_docs: int, out_dir: Path) -> None:
    """Generate the corpus shard by shard and write its signature files (own process: own peak RSS)."""
    cfg = DedupConfig()
    src = _source()
    n_docs = int(mb * 1e6 / (2000 * 3))
    docs = plan(n_docs)
    conv = None
    sig_s = 0.0
    text_bytes = 0
    for k in range(0, n_docs, shard_docs):
        items = []
        for i in range(k, min(n_docs, k + shard_docs)):
            b, rate, trad = docs[i]
            text = base_text(src, b)
            if b != i:
                text = perturb(text, rate, seed=i)
            if trad:
                if conv is None:
                    from opencc import OpenCC

                    conv = OpenCC("s2t")
                text = conv.convert(text)
            items.append(DedupItem(f"d{i:07d}", text, len(text), script="traditional" if trad else "simplified"))
        text_bytes += sum(len(it.text.encode()) for it in items)
        sig_s += write_signatures(items, "document", cfg, out_dir / f"sig{k // shard_docs:04d}.parquet")["cpu_seconds"]
        del items
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"docs": n_docs, "text_mb": text_bytes / 1e6, "cpu_seconds": sig_s, "peak_rss_mb": rss}))


def child_find(mb: float, partition_rows: int, sig_dir: Path) -> None:
    """find_duplicates alone over the signature files (own process: its peak RSS is the stage's)."""
    cfg = DedupConfig(partition_rows=partition_rows)
    paths = sorted(sig_dir.glob("sig*.parquet"))
    cpu0 = time.process_time()
    out = find_duplicates(paths, "document", cfg, sig_dir / "work")  # its steps one after the other, here
    cpu = time.process_time() - cpu0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    pairs = pq.read_table(out.pairs_path).to_pylist()
    clusters = pq.read_table(out.clusters_path).to_pylist()
    n_docs = int(mb * 1e6 / (2000 * 3))
    docs = plan(n_docs)
    cid = {r["id"]: r["cluster_id"] for r in clusters}
    cells: dict[tuple[str, int], int] = {}
    per_c: dict[str, int] = {}
    per_b: dict[int, int] = {}
    for i, (b, _, _) in enumerate(docs):
        d = f"d{i:07d}"
        c = cid.get(d, d)
        cells[(c, b)] = cells.get((c, b), 0) + 1
        per_c[c] = per_c.get(c, 0) + 1
        per_b[b] = per_b.get(b, 0) + 1
    c2 = lambda n: n * (n - 1) // 2  # noqa: E731
    tp, pred, true = sum(map(c2, cells.values())), sum(map(c2, per_c.values())), sum(map(c2, per_b.values()))
    fam_ids = {f"d{i:07d}" for i, (b, _, _) in enumerate(docs) if b == 7}
    st = out.stats
    print(json.dumps({
        # the phases run serially in this process: each phase's wall is its CPU on a quiet machine
        "cpu_seconds": {**st["seconds"], "total": round(cpu, 3)},
        "peak_rss_mb": rss,
        "partitions": st["partitions"],
        "candidates": st["candidates"],
        "verified_pairs": st["verified_pairs"],
        "rows": len(pairs),
        "family_size": len(fam_ids),
        "family_rows": sum(1 for p in pairs if p["a_id"] in fam_ids and p["b_id"] in fam_ids),
        "largest_cluster": st["largest_cluster"],
        "precision": round(tp / pred, 4) if pred else 1.0,
        "recall": round(tp / true, 4) if true else 1.0,
    }))


def child_sig_dir(sig_dir: Path, level: str, every: int, partition_rows: int | None, work: Path,
                  max_bucket: int | None = None) -> None:
    """find_duplicates alone over one level's signature files of a real run (own process: own peak
    RSS, with the allocators of the release's pool worker: ``memory.worker_init``)."""
    from corpuspipe.core import memory

    memory.worker_init()
    over = {k: v for k, v in (("partition_rows", partition_rows), ("max_bucket", max_bucket)) if v is not None}
    cfg = DedupConfig(**over)
    paths = sorted(sig_dir.glob(f"*.{level}.parquet"))[::every]
    sig_bytes = sum(p.stat().st_size for p in paths)
    t, c = time.perf_counter(), time.process_time()
    out = find_duplicates(paths, level, cfg, work)  # its steps one after the other, in this process
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    st = out.stats
    print(json.dumps({
        "level": level,
        "files": len(paths),
        "sig_mb": round(sig_bytes / 1e6, 1),
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        **{k: v for k, v in st.items() if k not in ("seconds",)},
    }))


def shingle_speed(sig_dir: Path, levels: list[str], every: int, batch_chars: int = 500_000) -> None:
    """MB/s per CPU second of ``shingle_hashes`` per text vs ``shingle_batch`` on the texts of the
    signature files (what the verify spill shingles); checks the two are byte-identical."""
    from corpuspipe.stages.dedup.shingles import _strip_t2s_table, shingle_batch, shingle_hashes

    cfg = DedupConfig()
    _strip_t2s_table()
    for level in levels:
        texts: list[str] = []
        for p in sorted(sig_dir.glob(f"*.{level}.parquet"))[::every]:
            texts += pq.read_table(p, columns=["text"]).column("text").to_pylist()
        mb = sum(len(t.encode()) for t in texts) / 1e6
        c = time.process_time()
        ref = [shingle_hashes(t, cfg) for t in texts]
        per_text = time.process_time() - c
        c = time.process_time()
        flat, counts, k = [], [], 0
        while k < len(texts):
            j, n = k, 0
            while j < len(texts) and n < batch_chars:
                n += len(texts[j])
                j += 1
            f, cnt = shingle_batch(texts[k:j], cfg)
            flat.append(f)
            counts.append(cnt)
            k = j
        batched = time.process_time() - c
        same = np.concatenate(flat).tobytes() == np.concatenate(ref).tobytes() and \
            np.concatenate(counts).tolist() == [r.size for r in ref]
        print(json.dumps({"level": level, "units": len(texts), "mb": round(mb, 1),
                          "per_text_mb_s": round(mb / per_text, 1), "batch_mb_s": round(mb / batched, 1),
                          "identical": same}), flush=True)


def compare_outputs(a: Path, b: Path) -> int:
    """Rows of two kept outputs that differ (pairs and clusters of each level)."""
    diff = 0
    for level in ("document", "section"):
        for kind in ("duplicates", "clusters"):
            pa_, pb_ = a / f"{level}.{kind}.parquet", b / f"{level}.{kind}.parquet"
            if not (pa_.exists() and pb_.exists()):
                continue
            ta, tb = pq.read_table(pa_), pq.read_table(pb_)
            ra = {tuple(r.values()) for r in ta.to_pylist()}
            rb = {tuple(r.values()) for r in tb.to_pylist()}
            same = ta.equals(tb)
            diff += not same
            print(json.dumps({"table": f"{level}.{kind}", "rows": [ta.num_rows, tb.num_rows], "equal": same,
                              "only_a": len(ra - rb), "only_b": len(rb - ra)}))
    return 1 if diff else 0


def run_sig_dir(sig_dir: Path, levels: list[str], every: int, partition_rows: int | None, keep: Path | None,
                max_bucket: int | None = None) -> None:
    with tempfile.TemporaryDirectory(prefix="scale-dedup-") as tmp:
        work = keep if keep is not None else Path(tmp)
        for level in levels:
            r = subprocess.run([sys.executable, __file__, "--child-sig-dir", str(sig_dir), "--level", level,
                                "--every", str(every), "--dir", str(work),
                                *(["--partition-rows", str(partition_rows)] if partition_rows else []),
                                *(["--max-bucket", str(max_bucket)] if max_bucket else [])],
                               capture_output=True, text=True)
            if r.returncode:
                raise SystemExit(r.stderr[-3000:])
            print(r.stdout.strip(), flush=True)


def run_size(mb: float, shard_docs: int, partition_rows: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="scale-dedup-") as tmp:
        def sub(*args: str) -> dict:
            r = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
            if r.returncode:
                raise SystemExit(r.stderr[-2000:])
            return json.loads(r.stdout)

        sig = sub("--child-signatures", str(mb), "--shard-docs", str(shard_docs), "--dir", tmp)
        find = sub("--child-find", str(mb), "--partition-rows", str(partition_rows), "--dir", tmp)
    mbt = sig["text_mb"]
    phases = find.pop("cpu_seconds")
    phases.pop("total", None)
    cpu = {"signatures": sig["cpu_seconds"], **phases}
    return {
        "docs": sig["docs"],
        "text_mb": round(mbt, 1),
        "mb_per_s_per_core": {k: round(mbt / v, 1) for k, v in cpu.items() if v}
        | {"stage": round(mbt / sum(cpu.values()), 1)},
        "peak_rss_mb_signatures": round(sig["peak_rss_mb"]),
        "peak_rss_mb_find": round(find.pop("peak_rss_mb")),
        **find,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, nargs="+", default=[50, 200])
    ap.add_argument("--shard-docs", type=int, default=2000)
    ap.add_argument("--partition-rows", type=int, default=None, help="band rows per candidate partition (synthetic: 500k; --sig-dir: the config default)")
    ap.add_argument("--child-signatures", type=float, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--child-find", type=float, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--sig-dir", type=Path, help="signature files of a real run (<out>/.work/dedup), read only")
    ap.add_argument("--level", nargs="+", default=["document", "section"])
    ap.add_argument("--max-bucket", type=int, default=None, help="with --sig-dir: dedup.max_bucket (all pairs up to it, star+chain above)")
    ap.add_argument("--every", type=int, default=1, help="use every n-th signature file (a subset)")
    ap.add_argument("--keep", type=Path, help="keep find_duplicates' outputs here (for --compare)")
    ap.add_argument("--compare", type=Path, nargs=2, metavar=("OUT1", "OUT2"), help="diff two --keep outputs")
    ap.add_argument("--shingle-speed", action="store_true", help="with --sig-dir: per-text vs batched shingling MB/s")
    ap.add_argument("--child-sig-dir", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.compare:
        return compare_outputs(*a.compare)
    if a.child_sig_dir:
        child_sig_dir(a.child_sig_dir, a.level[0], a.every, a.partition_rows, a.dir, a.max_bucket)
    elif a.sig_dir and a.shingle_speed:
        shingle_speed(a.sig_dir, a.level, a.every)
    elif a.sig_dir:
        run_sig_dir(a.sig_dir, a.level, a.every, a.partition_rows, a.keep, a.max_bucket)
    elif a.child_signatures:
        child_signatures(a.child_signatures, a.shard_docs, a.dir)
    elif a.child_find:
        child_find(a.child_find, a.partition_rows, a.dir)
    else:
        need_external("gov_reports")
        if min(a.mb) < MIN_MB:
            ap.error(f"--mb below {MIN_MB:g}: the {FAMILY}-copy family needs {FAMILY + 100} documents (~6 kB each)")
        for mb in a.mb:
            print(json.dumps(run_size(mb, a.shard_docs, a.partition_rows or 500_000)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
