"""CPU time of each stage of pass 1 on a slice of a crawl-shaped corpus, and a hash that proves no byte moved.

    .venv/bin/python bench/profile_pass1.py                       # 10 MB slice of bench/out/crawl100 (make bench)
    .venv/bin/python bench/profile_pass1.py --mb 5 --profile      # + cProfile top functions
    .venv/bin/python bench/profile_pass1.py --pyspy               # (run under py-spy instead)

Pass 0 (ingest + the watermark and identical-file reduces) runs once per slice through
``pipeline.run_pass``/``run_reduce`` and is kept in ``--work`` keyed by the slice alone (not by
the code), so every later run re-measures pass 1 only on the same input.  Pass 1 is the engine's
own ``pipeline.run_pass`` (nothing is wired here), in this process, with ``pipeline.STAGE_CLOCK``
set to ``process_time``: its per-stage timings are CPU seconds (the machine is shared).  MB/s is
the UTF-8 size of each stage's *input* text, as the engine's timings count it.

The printed ``sha256`` is over pass 1's essay files (Parquet: text, edits, flags, stats, signals,
sections) and stage counts; the dedup collect's signature files are timed but not hashed.  The
hash must not change when a stage only gets faster.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import pstats
import shutil
import tempfile
import time
from pathlib import Path

from _need import REPO, need


from corpuspipe import pipeline
from corpuspipe.core.config import PipelineConfig


def prepare(corpus: Path, mb: float, work: Path) -> tuple[list[dict], dict, PipelineConfig, str]:
    """Pass 0 over the first shards totalling ``mb`` MB of raw bytes, and its reduces' facts;
    cached under ``work/p0work`` (its results in ``work/slice.json``)."""
    cfg = PipelineConfig()
    raw = corpus / "raw" if (corpus / "raw").is_dir() else corpus
    meta = work / "slice.json"
    if meta.exists():
        d = json.loads(meta.read_text())
        return d["results"], d["facts"], cfg, d["raw"]
    found = pipeline.discover(raw, cfg)
    chosen, total = [], 0
    for s, size in zip(found.shards, found.sizes):
        chosen.append(s)
        total += size
        if total >= mb * 1e6:
            break
    cfg_json = cfg.model_dump_json()
    tmp = work / "p0work"
    raw_s = str(raw.resolve())
    results = [pipeline.run_pass(0, s, cfg_json, raw_s, str(tmp)) for s in chosen]
    facts = {st.name: pipeline.run_reduce(st.name, results, cfg_json, str(tmp))["fact"]
             for st in pipeline.plan()[0].collects}
    results = [pipeline.slim_result(r, tmp) for r in results]
    work.mkdir(parents=True, exist_ok=True)
    meta.write_text(json.dumps({"results": results, "facts": facts, "raw": raw_s, "raw_bytes": total,
                                "files": sum(map(len, chosen))}, ensure_ascii=False))
    return results, facts, cfg, raw_s


def run_pass1(results: list[dict], facts: dict, cfg: PipelineConfig, raw: str, work: Path
              ) -> tuple[dict, str, int]:
    """The engine's pass 1 over every shard of the slice, timed in CPU seconds."""
    cpu: dict[str, list[float]] = {}
    h = hashlib.sha256()
    n_essays = 0
    pipeline.STAGE_CLOCK = time.process_time
    cfg_json = cfg.model_dump_json()
    for r in results:
        out = pipeline.run_pass(1, r, cfg_json, raw, str(work / "p1work"), facts)
        for name, (sec, nbytes) in out["timings"].items():
            c = cpu.setdefault(name, [0.0, 0])
            c[0] += sec
            c[1] += nbytes
        h.update(Path(out["essays"]).read_bytes())
        h.update(json.dumps(out["counts"], sort_keys=True).encode())
        n_essays += out["essay_count"]
    return cpu, h.hexdigest(), n_essays


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=REPO / "bench" / "out" / "crawl100",
                    help="a crawl-shaped corpus (bench/make_crawl.py; `make bench` makes bench/out/crawl100)")
    ap.add_argument("--mb", type=float, default=10.0)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "profile_pass1",
                    help="pass 0 of each slice is kept here between runs")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--dump", type=Path, help="write the cProfile stats here (with --profile)")
    args = ap.parse_args()
    need(args.corpus, "a crawl-shaped corpus", "make one with `make bench` or .venv/bin/python bench/make_crawl.py "
         "--mb 100 --out bench/out/crawl100 --seed 1")
    work = args.work / f"mb{args.mb:g}"
    results, facts, cfg, raw = prepare(args.corpus, args.mb, work)
    shutil.rmtree(work / "p1work", ignore_errors=True)
    prof = cProfile.Profile() if args.profile else None
    if prof:
        prof.enable()
    t0 = time.process_time()
    cpu, digest, n = run_pass1(results, facts, cfg, raw, work)
    total = time.process_time() - t0
    if prof:
        prof.disable()
    meta = json.loads((work / "slice.json").read_text())
    print(f"slice: {meta['files']} files, {meta['raw_bytes'] / 1e6:.1f} MB raw, {n} essays")
    for name, (sec, nbytes) in cpu.items():
        print(f"{name:18s} {sec:7.2f} s CPU  {nbytes / 1e6 / max(sec, 1e-9):7.1f} MB/s")
    print(f"{'pass 1 total':18s} {total:7.2f} s CPU (incl. reading and writing shards, hashing)")
    print(f"sha256 {digest}")
    if prof:
        if args.dump:
            prof.dump_stats(args.dump)
        pstats.Stats(prof).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
