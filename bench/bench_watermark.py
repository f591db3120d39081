"""Throughput of the watermark stage: MB/s (UTF-8 input) of stats, selection and removal.

    .venv/bin/python bench/bench_watermark.py                 # gov reports repeated to ~20 MB
    .venv/bin/python bench/bench_watermark.py --dir some/texts  # every *.txt under it, one essay each

Prints one line per phase plus the characters removed per rule; medians of --repeat runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from corpuspipe.core.config import WatermarkConfig
from corpuspipe.core.edits import TrackedText
from corpuspipe.core.records import Essay
from corpuspipe.stages.watermark import collect_boilerplate_stats, remove_watermarks, select_boilerplate

GOV = Path(__file__).resolve().parents[2] / "shared" / "external" / "gov_reports"


def _gov_texts() -> list[str]:
    texts = []
    for name in ("government_work_reports.jsonl", "cpc_congress_reports.jsonl"):
        with open(GOV / name, encoding="utf-8") as fh:
            texts.extend(json.loads(line)["content"] for line in fh)
    return texts


def _dir_texts(root: Path) -> list[str]:
    return [p.read_text(encoding="utf-8", errors="replace") for p in sorted(root.rglob("*.txt"))]


def _corpus(texts: list[str], target_mb: float) -> list[str]:
    size = sum(len(t.encode()) for t in texts)
    copies = max(1, round(target_mb * 1e6 / size)) if size else 1
    return texts * copies


def _essays(texts: list[str]) -> list[Essay]:
    return [Essay(f"bench/{i}.txt", "0" * 64, 0, TrackedText(t)) for i, t in enumerate(texts)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, help="directory of .txt files (default: the gov reports)")
    ap.add_argument("--target-mb", type=float, default=20.0, help="repeat the input to about this size")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    texts = _corpus(_dir_texts(args.dir) if args.dir else _gov_texts(), args.target_mb)
    mb = sum(len(t.encode()) for t in texts) / 1e6
    cfg = WatermarkConfig()
    timings: dict[str, list[float]] = {"collect": [], "select": [], "remove": []}
    removed: dict[str, int] = {}
    n_boiler = 0
    for _ in range(args.repeat):
        essays = _essays(texts)
        t0 = time.perf_counter()
        doc_freq = collect_boilerplate_stats(essays, cfg)
        t1 = time.perf_counter()
        boilerplate = select_boilerplate(doc_freq, len(essays), cfg)
        t2 = time.perf_counter()
        removed = remove_watermarks(essays, cfg, boilerplate)
        t3 = time.perf_counter()
        timings["collect"].append(t1 - t0)
        timings["select"].append(t2 - t1)
        timings["remove"].append(t3 - t2)
        n_boiler = len(boilerplate)
    print(f"input: {len(texts)} documents, {mb:.1f} MB UTF-8; {n_boiler} boilerplate keys selected")
    for phase, ts in timings.items():
        t = statistics.median(ts)
        print(f"{phase:8s} {t:7.3f} s  {mb / t:8.1f} MB/s")
    print("chars removed per rule:", json.dumps(removed, ensure_ascii=False, sort_keys=True))


if __name__ == "__main__":
    main()
