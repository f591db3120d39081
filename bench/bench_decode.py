"""Print decode_bytes throughput (MB/s of encoded bytes) for real report text in GB18030 and Big5.

Usage: python bench/bench_decode.py [--mb 4] [--module corpuspipe.stages.ingest.files]

Builds one file per encoding from ../shared/external/gov_reports (Simplified reports as
GB18030; the same reports converted to Traditional with OpenCC t2s's inverse, s2t, as Big5,
characters Big5 lacks dropped), repeated up to --mb megabytes, and times decode_bytes on it.
--module names a module with a decode_bytes to compare (e.g. a copy of an older version).
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from pathlib import Path

from _need import need_external


def _texts(n_docs: int = 8) -> tuple[str, str]:
    from opencc import OpenCC

    reports = need_external("gov_reports/government_work_reports.jsonl")
    docs = [json.loads(line) for line in reports.read_text(encoding="utf-8").splitlines()[:n_docs]]
    simplified = "\n\n".join(f"{d['title']}\n\n{d['content']}" for d in docs)
    return simplified, OpenCC("s2t").convert(simplified)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=4.0)
    ap.add_argument("--module", default="corpuspipe.stages.ingest.decode")
    args = ap.parse_args()
    decode_bytes = importlib.import_module(args.module).decode_bytes
    simplified, traditional = _texts()
    for codec, text in (("gb18030", simplified), ("big5", traditional)):
        unit = text.encode(codec, errors="ignore")
        data = unit * max(1, int(args.mb * 1e6 / len(unit)))
        decode_bytes(text[:1000].encode(codec, errors="ignore"))  # warm caches (frequency table)
        t = time.perf_counter()
        _, enc = decode_bytes(data)
        dt = time.perf_counter() - t
        print(f"{codec:8s} {len(data) / 1e6:6.1f} MB -> {enc:10s} {len(data) / 1e6 / dt:7.1f} MB/s")


if __name__ == "__main__":
    main()
