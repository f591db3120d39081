"""Dedup at scale: MB/s per phase, peak RSS at two corpus sizes, rows of a 500-copy family, P/R.

Usage: ``python bench/scale_dedup.py [--mb 50 200] [--shard-docs 2000]``

Each size runs in its own subprocess (so ``ru_maxrss`` is that run's peak).  The corpus is made on
the fly, shard by shard, and never held whole: documents are stitched from random 3-12 char runs
of the real gov reports in /work/shared/external (realistic 5-gram overlap, no long copies; ~2,000
chars each); 30% of the bases get 1-3 copies with 1-8% character edits, a fifth of copies is
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from corpuspipe.core.config import DedupConfig  # noqa: E402
from corpuspipe.stages.dedup import DedupItem, find_duplicates, write_signatures  # noqa: E402

GOV = Path("/work/shared/external/gov_reports")
FAMILY = 500


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


def child(mb: float, shard_docs: int, partition_rows: int) -> None:
    cfg = DedupConfig(partition_rows=partition_rows)
    src = _source()
    n_docs = int(mb * 1e6 / (2000 * 3))
    docs = plan(n_docs)
    conv = None
    sig_s = 0.0
    text_bytes = 0
    with tempfile.TemporaryDirectory(prefix="scale-dedup-") as tmp:
        tmp = Path(tmp)
        paths = []
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
            p = tmp / f"sig{k // shard_docs:04d}.parquet"
            sig_s += write_signatures(items, "document", cfg, p)["cpu_seconds"]
            paths.append(p)
            del items
        rss_sig = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out = find_duplicates(paths, "document", cfg, tmp / "work")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        pairs = pq.read_table(out.pairs_path).to_pylist()
        clusters = pq.read_table(out.clusters_path).to_pylist()
    base_of = {f"d{i:07d}": b for i, (b, _, _) in enumerate(docs)}
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
    fam_ids = {d for d, b in base_of.items() if b == 7}
    fam_rows = sum(1 for p in pairs if p["a_id"] in fam_ids and p["b_id"] in fam_ids)
    mbt = text_bytes / 1e6
    s = out.stats["cpu_seconds"]  # CPU seconds: 6 engineers share 2 cores, wall time is noise
    print(
        json.dumps(
            {
                "docs": n_docs,
                "text_mb": round(mbt, 1),
                "mb_per_s_per_core": {"signatures": round(mbt / sig_s, 1), **{k: round(mbt / v, 1) for k, v in s.items() if v}},
                "cpu_seconds": {"signatures": round(sig_s, 1), **{k: round(v, 2) for k, v in s.items()}},
                "peak_rss_mb_after_signatures": round(rss_sig),
                "peak_rss_mb": round(rss),
                "partitions": out.stats["partitions"],
                "candidates": out.stats["candidates"],
                "rows": len(pairs),
                "family_size": len(fam_ids),
                "family_rows": fam_rows,
                "largest_cluster": out.stats["largest_cluster"],
                "precision": round(tp / pred, 4) if pred else 1.0,
                "recall": round(tp / true, 4) if true else 1.0,
            }
        )
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, nargs="+", default=[50, 200])
    ap.add_argument("--shard-docs", type=int, default=2000)
    ap.add_argument("--partition-rows", type=int, default=500_000, help="band rows per candidate partition")
    ap.add_argument("--child", type=float, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child, a.shard_docs, a.partition_rows)
        return 0
    for mb in a.mb:
        r = subprocess.run([sys.executable, __file__, "--child", str(mb), "--shard-docs", str(a.shard_docs),
                            "--partition-rows", str(a.partition_rows)],
                           capture_output=True, text=True)
        print(r.stdout.strip() or r.stderr[-2000:], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
