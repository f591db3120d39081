"""Time and measure the release writer alone, on a finished build's work folder.

Why: the writer runs in the main (CLI/flow) process after the passes; its CPU seconds and peak
RSS are hidden inside the whole release's numbers.  This loads ``<work>/build.json`` (what the
flow hands its write task), optionally rewriting the absolute paths in it when the work folder
was copied, and calls ``write_release`` into a fresh output root.

    .venv/bin/python bench/bench_writer.py WORK_DIR --out /tmp/x [--from OLD_PREFIX] [--tracemalloc]

Prints CPU seconds, wall seconds, peak RSS (ru_maxrss) and RSS after the write, and the sha256 of
every Parquet file written (to compare outputs before/after a change).  Never asserts a speed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("work", type=Path, help="a build's .work folder (with build.json)")
    ap.add_argument("--out", type=Path, required=True, help="releases root to write into (emptied first)")
    ap.add_argument("--from", dest="old", help="absolute work path recorded in build.json, replaced by WORK")
    ap.add_argument("--tracemalloc", action="store_true", help="print the top Python allocations at the peak")
    a = ap.parse_args(argv)
    text = (a.work / "build.json").read_text(encoding="utf-8")
    if a.old:
        text = text.replace(a.old.rstrip("/"), str(a.work.resolve()))
    d = json.loads(text)
    if a.tracemalloc:
        import tracemalloc

        tracemalloc.start(10)
    from corpuspipe import pipeline
    from corpuspipe.core.config import PipelineConfig
    from corpuspipe.core.records import QuarantineEntry
    from corpuspipe.release.assemble import write_release

    build = pipeline.BuildResult(quarantine=[QuarantineEntry(**q) for q in d.pop("quarantine")],
                                 passes=d.pop("passes"), reduces=d.pop("reduces"), wall=d.pop("wall"))
    del text, d
    if a.out.exists():
        shutil.rmtree(a.out)
    cfg = PipelineConfig.load(None)
    rss0 = rss_mb()
    c0, t0 = time.process_time(), time.perf_counter()
    done = write_release(build, cfg, a.out, None, "2000-01-01T00:00:00+00:00", build.wall)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"write_release: {done.status} {done.version}: cpu {cpu:.1f} s, wall {wall:.1f} s, "
          f"RSS before {rss0:,.0f} MB, after {rss_mb():,.0f} MB, peak {peak:,.0f} MB")
    if a.tracemalloc:
        import tracemalloc

        cur, top = tracemalloc.get_traced_memory()
        print(f"tracemalloc: current {cur / 2**20:.0f} MB, peak {top / 2**20:.0f} MB (Python objects only)")
        for st in tracemalloc.take_snapshot().statistics("lineno")[:10]:
            print("  ", st)
    for p in sorted(done.release_dir.glob("*.parquet")):
        h = hashlib.sha256(p.read_bytes()).hexdigest()
        print(f"  {p.name:<20} {p.stat().st_size:>12,} {h}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
