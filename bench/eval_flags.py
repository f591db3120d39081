"""Flag precision on real, unmodified text: every document of ``../shared/external`` through the real stages.

Usage:  python bench/eval_flags.py [--out bench/out/flags]

Corpus: the 55 laws and judicial interpretations (Markdown, LawRefBook), the 88 Wikisource reports
(with their licence blocks, one file each) and the 5 OpenCC golden files (one document in Simplified
and four Traditional variants).  None of these is truncated, mis-decoded or junk, so every flag that
fires is printed with the document's last line for a person to label; ``LABELS`` holds the labels
given so far (path -> flags judged correct).  Prints, per flag: fired, labelled correct, precision.
Planted positives (cut copies, lossy re-encodes, Big5 read as GBK) are measured by
``bench/eval_boilerplate.py``; together they give each flag's precision on real text.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from corpuspipe import pipeline
from corpuspipe.core import shardio
from corpuspipe.config import PipelineConfig

from _need import EXTERNAL, REPO, need_external  # noqa: E402  (../shared/external, or CORPUSPIPE_EXTERNAL)
FLAGS = ("truncated", "encoding_damage", "mojibake", "mostly_non_han", "punctuation_only", "short")
# Hand labels: flags a reader confirmed on a real document (none so far: every firing printed by a
# run is looked at and, if right, added here).
LABELS: dict[str, list[str]] = {}


def make_corpus(raw: Path) -> int:
    need_external("gov_reports")
    if raw.exists():
        shutil.rmtree(raw)
    n = 0
    for p in sorted((EXTERNAL / "outline_laws" / "lawrefbook").glob("*.md")):
        dst = raw / "laws" / f"law{n:03d}.md"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, dst)
        n += 1
    for name in ("government_work_reports.jsonl", "cpc_congress_reports.jsonl"):
        with open(EXTERNAL / "gov_reports" / name, encoding="utf-8") as fh:
            for line in fh:
                r = json.loads(line)
                dst = raw / "zh.wikisource.org" / f"r{n:03d}.txt"
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.write_text(f"{r['title']}\n{r['content']}\n", encoding="utf-8")
                n += 1
    for p in sorted((EXTERNAL / "opencc_golden").glob("*.txt")):
        dst = raw / "opencc" / p.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, dst)
        n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "flags")
    args = ap.parse_args()
    files = make_corpus(args.out / "raw")
    work = args.out / "work"
    if work.exists():
        shutil.rmtree(work)
    res = pipeline.build(args.out / "raw", PipelineConfig(), work)
    essays = [e for r in res.passes[-1] for e in shardio.read_essays(Path(r["essays"]))]
    print(f"files {files}, documents released {len(essays)}")
    for flag in FLAGS:
        fired = [e for e in essays if flag in e.flags]
        right = [e for e in fired if flag in LABELS.get(e.source_path, [])]
        precision = f"{len(right) / len(fired):.3f}" if fired else "n/a (never fired: no false positive)"
        print(f"flag {flag:17s} fired {len(fired):3d}  labelled correct {len(right)}  precision {precision}")
        for e in fired:
            if e not in right:
                last = e.body.text.rstrip().rsplit("\n", 1)[-1][-60:]
                print(f"    {e.source_path}#{e.essay_index} {e.title!r:.40}  last line: {last!r}")


if __name__ == "__main__":
    sys.exit(main())
