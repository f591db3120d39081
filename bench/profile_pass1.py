"""CPU time of each stage of pass 1 on a slice of a crawl-shaped corpus, and a hash that proves no byte moved.

    .venv/bin/python bench/profile_pass1.py                       # 10 MB slice of bench/out/crawl100 (make bench)
    .venv/bin/python bench/profile_pass1.py --mb 5 --profile      # + cProfile top functions
    .venv/bin/python bench/profile_pass1.py --pyspy               # (run under py-spy instead)

The slice (the first shards of the corpus, about ``--mb`` MB of raw files) is linked into
``--work``; the engine's own loop (``pipeline.build``, serial, in this process: nothing is wired
here) builds it once, and every run then deletes pass 1's records and builds again, so only pass 1
is recomputed (pass 0 and its reduces come from the work cache).  ``pipeline.STAGE_CLOCK`` is set
to ``process_time``: per-stage timings are CPU seconds (the machine is shared).  MB/s is the UTF-8
size of each stage's *input* text, as the engine's timings count it.

The printed ``sha256`` is over the *contents* of pass 1's essay files (every column of every row,
read back: text, edits, flags, stats, signals, sections) and stage counts; ``file sha256`` is over
the files' bytes, which also change with the intermediate files' codec or writer options.  The
dedup collect's signature files are timed but not hashed.  Neither hash is taken inside the
timed part.  The content hash must not change when a stage only gets faster.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import os
import pstats
import shutil
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
from _need import REPO, need


from corpuspipe import pipeline
from corpuspipe.config import PipelineConfig


def slice_raw(corpus: Path, mb: float, work: Path) -> tuple[Path, int, int]:
    """The first shards of the corpus totalling ``mb`` MB, copied to ``work/raw`` (hard links where the
    file system allows; symlinks out of the raw folder would be quarantined, as for any user)."""
    cfg = PipelineConfig()
    raw = corpus / "raw" if (corpus / "raw").is_dir() else corpus
    if not raw.is_dir():
        raise SystemExit(f"corpus not found: {raw} (make one with bench/make_crawl.py --mb 100 --out DIR)")
    dst = work / "raw"
    found = pipeline.discover(raw, cfg)
    chosen, total = [], 0
    for s, size in zip(found.shards, found.sizes):
        chosen.extend(s)
        total += size
        if total >= mb * 1e6:
            break
    if not dst.is_dir():
        for rel in chosen:
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(raw / rel, dst / rel)
            except OSError:
                shutil.copy2(raw / rel, dst / rel)
    return dst, total, len(chosen)


def content_digest(path: Path | str, h: "hashlib._Hash") -> None:
    """Feed ``h`` the contents of a Parquet file: its schema and every column's values in row
    order (not its bytes: those also hang on the codec and the writer's options)."""
    table = pq.read_table(path)
    h.update(str(table.schema.remove_metadata()).encode())
    for name in table.column_names:
        h.update(name.encode() + b"\0")
        h.update(json.dumps(table.column(name).to_pylist(), ensure_ascii=False, sort_keys=True,
                            default=repr).encode())


def run_pass1(raw: Path, work: Path) -> tuple[dict, list[dict], int]:
    """The engine's pass 1 over every shard of the slice (pass 0 from the cache), timed in CPU seconds."""
    cfg = PipelineConfig()
    pipeline.build(raw, cfg, work)  # the first time: pass 0, its reduces (and pass 1)
    for record in (work / "pass1").glob("*.json"):
        if not record.name.endswith(".files.json"):
            record.unlink()
    pipeline.STAGE_CLOCK = time.process_time
    build = pipeline.build(raw, cfg, work)
    cpu: dict[str, list[float]] = {}
    n_essays = 0
    for out in build.passes[1]:
        for name, (sec, nbytes) in out["timings"].items():
            c = cpu.setdefault(name, [0.0, 0])
            c[0] += sec
            c[1] += nbytes
        n_essays += out["essay_count"]
    return cpu, build.passes[1], n_essays


def digests(outs: list[dict]) -> tuple[str, str]:
    """(content sha256, file sha256) of pass 1's essay files and counts."""
    h, hf = hashlib.sha256(), hashlib.sha256()
    for out in outs:
        content_digest(out["essays"], h)
        hf.update(Path(out["essays"]).read_bytes())
        for x in (h, hf):
            x.update(json.dumps(out["counts"], sort_keys=True).encode())
    return h.hexdigest(), hf.hexdigest()


def parse_args(doc: str, work: str, work_help: str | None = None) -> argparse.Namespace:
    """The options both profile scripts take, parsed; exits with one line when the corpus is missing."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=REPO / "bench" / "out" / "crawl100",
                    help="a crawl-shaped corpus (bench/make_crawl.py; `make bench` makes bench/out/crawl100)")
    ap.add_argument("--mb", type=float, default=10.0)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / work, help=work_help)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--dump", type=Path, help="write the cProfile stats here (with --profile)")
    args = ap.parse_args()
    need(args.corpus, "a crawl-shaped corpus", "make one with `make bench` or .venv/bin/python bench/make_crawl.py "
         "--mb 100 --out bench/out/crawl100 --seed 1")
    return args


def timed(fn, profile: bool):
    """(fn(), its CPU seconds, the cProfile profile or None)."""
    prof = cProfile.Profile() if profile else None
    if prof:
        prof.enable()
    t0 = time.process_time()
    out = fn()
    total = time.process_time() - t0
    if prof:
        prof.disable()
    return out, total, prof


def print_digests(digest: str, file_digest: str, prof, args: argparse.Namespace) -> None:
    print(f"sha256 {digest}")
    print(f"file sha256 {file_digest}")
    if prof:
        if args.dump:
            prof.dump_stats(args.dump)
        pstats.Stats(prof).sort_stats("tottime").print_stats(args.top)


def main() -> None:
    args = parse_args(__doc__, "profile_pass1", "pass 0 of each slice is kept here between runs")
    work = args.work / f"mb{args.mb:g}"
    raw, raw_bytes, files = slice_raw(args.corpus, args.mb, work)
    pipeline.build(raw, PipelineConfig(), work / "w")  # pass 0 and its reduces, cached for later runs
    (cpu, outs, n), total, prof = timed(lambda: run_pass1(raw, work / "w"), args.profile)
    digest, file_digest = digests(outs)
    print(f"slice: {files} files, {raw_bytes / 1e6:.1f} MB raw, {n} essays")
    for name, (sec, nbytes) in cpu.items():
        print(f"{name:18s} {sec:7.2f} s CPU  {nbytes / 1e6 / max(sec, 1e-9):7.1f} MB/s")
    print(f"{'pass 1 total':18s} {total:7.2f} s CPU (incl. reading and writing shards, hashing)")
    print_digests(digest, file_digest, prof, args)


if __name__ == "__main__":
    main()
