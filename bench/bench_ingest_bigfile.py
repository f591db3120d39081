"""Print ingest_file time and peak RSS on one big compilation file (default 20 and 200 MB).

Usage: python bench/bench_ingest_bigfile.py [--mb 20 200] [--dir /tmp/...]

Concatenates the real reports of /work/shared/external/gov_reports (title line, blank line,
content) until the file reaches each size, then runs ingest_file on it in a fresh process
(peak RSS is per process).  A linear ingest shows a time ratio near the size ratio.
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

GOV = Path("/work/shared/external/gov_reports")

_CHILD = """
import resource, sys, time
from pathlib import Path
from corpuspipe.core.config import IngestConfig
from corpuspipe.stages.ingest.files import ingest_file
p = Path(sys.argv[1])
t = time.perf_counter()
shard = ingest_file(p.parent, p.name, IngestConfig())
dt = time.perf_counter() - t
cpu = resource.getrusage(resource.RUSAGE_SELF)
print(f"{p.stat().st_size / 1e6:7.1f} MB  {dt:7.1f} s wall  {cpu.ru_utime + cpu.ru_stime:7.1f} s cpu  "
      f"peak RSS {cpu.ru_maxrss / 1024:6.0f} MB  essays {len(shard.essays)}  quarantined {len(shard.quarantine)}")
"""


def build(path: Path, mb: float) -> None:
    docs = []
    for name in ("government_work_reports.jsonl", "cpc_congress_reports.jsonl"):
        for line in (GOV / name).read_text(encoding="utf-8").splitlines():
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
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for mb in args.mb:
            path = Path(tmp) / f"big{mb:g}.txt"
            build(path, mb)
            subprocess.run([sys.executable, "-c", _CHILD, str(path)], check=True)
            path.unlink()


if __name__ == "__main__":
    main()
