"""Print pass-0 time and peak RSS on one big compilation file (default 20 and 200 MB).

Usage: python bench/bench_ingest_bigfile.py [--mb 20 200] [--dir SCRATCH] [--file BIG.txt ...]

Concatenates the real reports of ../shared/external/gov_reports (title line, blank line,
content) until the file reaches each size (or takes the given files), then runs pass 0 of the
real plan on it (``pipeline.run_pass``: ingest, written group by group to the shard Parquet, and
the collects of identical_files and watermark) in a fresh process: peak RSS is that process's,
i.e. the pass-0 worker's.  A linear pass shows a time ratio near the size ratio.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _need import need_external

_CHILD = """
import resource, sys, tempfile, time
from pathlib import Path
from corpuspipe.config import PipelineConfig
from corpuspipe.pipeline import run_pass
p = Path(sys.argv[1])
with tempfile.TemporaryDirectory(dir=sys.argv[2]) as work:
    c0 = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    res = run_pass(0, [p.name], PipelineConfig().model_dump_json(), str(p.parent), work, {})  # pass 0: no facts yet
    dt = time.perf_counter() - t
cpu = resource.getrusage(resource.RUSAGE_SELF)
used = cpu.ru_utime + cpu.ru_stime - c0.ru_utime - c0.ru_stime
print(f"{p.stat().st_size / 1e6:7.1f} MB  pass 0 {dt:7.1f} s wall  {used:7.1f} s cpu  "
      f"peak RSS {cpu.ru_maxrss / 1024:6.0f} MB  essays {res['essay_count']}  quarantined {res['quarantine_count']}  "
      f"ingest {res['timings']['ingest'][0]:.1f} s")
"""


def build(path: Path, mb: float) -> None:
    docs = []
    gov = need_external("gov_reports")
    for name in ("government_work_reports.jsonl", "cpc_congress_reports.jsonl"):
        for line in (gov / name).read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            docs.append(f"{r['title']}\n\n{r['content'].strip()}\n\n".encode("utf-8"))
    target, size = int(mb * 1e6), 0
    with open(path, "wb") as fh:
        while size < target:
            for d in docs:
                fh.write(d)
                size += len(d)
                if size >= target:
                    break


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, nargs="+", default=[20, 200])
    ap.add_argument("--dir", default=None, help="where the big files are built (default: the system's temp folder)")
    ap.add_argument("--file", nargs="+", default=[], help="existing big files instead of building them")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for f in args.file:
            subprocess.run([sys.executable, "-c", _CHILD, str(Path(f).resolve()), tmp], check=True)
        for mb in args.mb if not args.file else []:
            path = Path(tmp) / f"big{mb:g}.txt"
            build(path, mb)
            subprocess.run([sys.executable, "-c", _CHILD, str(path), tmp], check=True)
            path.unlink()


if __name__ == "__main__":
    main()
