"""Print ingestion throughput (MB/s of raw file bytes) over a directory.

Usage: python bench/bench_ingest.py [DIR] [--min-mb 20] [--encoding utf-8|gb18030|utf-16]

Runs discover_sources + ingest_file over every file of DIR, repeating the whole pass until at
least --min-mb megabytes were read (small seed folders would otherwise time only noise).
With --encoding other than utf-8, copies DIR's text into a temp dir in that encoding first,
to time the charset-normalizer path.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from corpuspipe.core.config import IngestConfig
from corpuspipe.stages.ingest.files import discover_sources, ingest_file


def _reencode(src: Path, dst: Path, encoding: str) -> Path:
    for p in sorted(src.rglob("*.txt")):
        out = dst / p.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(p.read_text(encoding="utf-8").encode(encoding, errors="replace"))
    return dst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", default="raw")
    ap.add_argument("--min-mb", type=float, default=20.0)
    ap.add_argument("--encoding", default="utf-8")
    args = ap.parse_args()
    cfg = IngestConfig()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.root)
        if args.encoding != "utf-8":
            root = _reencode(root, Path(tmp), args.encoding)
        paths, quarantined = discover_sources(root, cfg)
        total_bytes = essays = passes = 0
        t0, c0 = time.perf_counter(), time.process_time()
        while total_bytes < args.min_mb * 1e6 or passes == 0:
            for rel in paths:
                shard = ingest_file(root, rel, cfg)
                total_bytes += sum(s.bytes for s in shard.sources)
                essays += len(shard.essays)
            passes += 1
            if total_bytes == 0:
                break
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"root={args.root} encoding={args.encoding} files={len(paths)} quarantined_at_discovery={len(quarantined)}")
    print(f"passes={passes} bytes={total_bytes / 1e6:.1f} MB essays={essays} wall={dt:.2f}s cpu={cpu:.2f}s")
    # CPU time is the steadier figure on a shared machine; wall time is what a user waits.
    print(f"ingest throughput: {total_bytes / 1e6 / dt:.1f} MB/s wall, {total_bytes / 1e6 / cpu:.1f} MB/s cpu")


if __name__ == "__main__":
    main()
