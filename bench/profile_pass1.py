"""CPU time of each stage of pass 1 on a slice of a crawl-shaped corpus, and a hash that proves no byte moved.

    .venv/bin/python bench/profile_pass1.py                       # 10 MB slice of crawl100
    .venv/bin/python bench/profile_pass1.py --mb 5 --profile      # + cProfile top functions
    .venv/bin/python bench/profile_pass1.py --pyspy               # (run under py-spy instead)

Pass 0 (ingest + the watermark and identical-file reduces) runs once per slice through
``pipeline.run_pass``/``run_reduce`` and its output is kept in ``--work`` keyed by the slice
alone (not by the code), so every later run re-measures pass 1 only on the same input.  Pass 1
is then run by hand, stage by stage (the same ``apply``/``process``/``collect`` calls as
``pipeline.run_pass``), timing each with ``process_time`` (CPU seconds: the machine is shared).
MB/s is the UTF-8 size of each stage's *input* text, as the engine's timings count it.

The printed ``sha256`` is over every essay after pass 1 (the intermediate Arrow table: text,
edits, flags, stats, signals, sections) and the stage counts; ``dedup.collect`` is timed but
its files are not hashed (another owner).  The hash must not change when a stage only gets
faster.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import pstats
import shutil
import time
from pathlib import Path

import pyarrow as pa

from corpuspipe import pipeline
from corpuspipe.core import shardio
from corpuspipe.core.config import PipelineConfig
from corpuspipe.core.records import Shard
from corpuspipe.core.stage import Context


def prepare(corpus: Path, mb: float, work: Path) -> tuple[list[Path], dict, PipelineConfig]:
    """Pass 0 over the first shards totalling ``mb`` MB of raw bytes; cached under ``work/in``."""
    cfg = PipelineConfig()
    inp = work / "in"
    meta = inp / "slice.json"
    if meta.exists():
        d = json.loads(meta.read_text())
        return [Path(p) for p in d["essays"]], d["facts"], cfg
    raw = corpus / "raw" if (corpus / "raw").is_dir() else corpus
    shards, _q = pipeline.discover(raw, cfg)
    chosen, total = [], 0
    for s in shards:
        chosen.append(s)
        total += pipeline.shard_bytes(raw, s)
        if total >= mb * 1e6:
            break
    p0 = pipeline.plan()[0]
    tmp = work / "p0work"
    cfg_json = cfg.model_dump_json()
    results = [pipeline.run_pass(0, s, cfg_json, str(raw.resolve()), str(tmp)) for s in chosen]
    facts = {}
    for st in p0.collects:
        facts[st.name] = pipeline.run_reduce(st.name, results, cfg_json, str(tmp))["fact"]
    inp.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, r in enumerate(results):
        dst = inp / f"shard{k:03d}.parquet"
        shutil.copy(r["essays"], dst)
        paths.append(dst)
    # the watermark fact may name files under p0work: they stay there
    meta.write_text(json.dumps({"essays": [str(p) for p in paths], "facts": facts, "raw_bytes": total,
                                "files": sum(map(len, chosen))}, ensure_ascii=False))
    return paths, facts, cfg


def run_pass1(paths: list[Path], facts: dict, cfg: PipelineConfig, work: Path) -> tuple[dict, str, int]:
    p = pipeline.plan()[1]
    cpu: dict[str, list[float]] = {}
    h = hashlib.sha256()
    counts: dict = {}
    n_essays = 0
    for k, path in enumerate(paths):
        ctx = Context(cfg, facts, work / "p1work", shard_key=f"s{k:03d}")
        for g, essays in enumerate(shardio.iter_essays(path)):
            batch = Shard(essays=essays)
            for st in (*p.applies, *p.stages):
                nbytes = batch.text_bytes()
                t0 = time.process_time()
                batch = st.apply(batch, ctx) if st.kind == "corpus" else st.process(batch, ctx)
                c = cpu.setdefault(st.name, [0.0, 0])
                c[0] += time.process_time() - t0
                c[1] += nbytes
            ctx.shard_key = f"s{k:03d}-{g:04d}"
            for st in p.collects:
                nbytes = batch.text_bytes()
                t0 = time.process_time()
                st.collect(batch, ctx)
                c = cpu.setdefault(f"{st.name}.collect", [0.0, 0])
                c[0] += time.process_time() - t0
                c[1] += nbytes
            sink = io.BytesIO()
            table = shardio.essays_table(batch.essays)
            with pa.ipc.new_stream(sink, table.schema) as w:
                w.write_table(table)
            h.update(sink.getvalue())
            n_essays += len(batch.essays)
        counts[k] = ctx.counts
        h.update(json.dumps(ctx.counts, sort_keys=True).encode())
    return cpu, h.hexdigest(), n_essays


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=Path("/work/main/bench/out/crawl100"))
    ap.add_argument("--mb", type=float, default=10.0)
    ap.add_argument("--work", type=Path, default=Path("/tmp/profile_pass1"))
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--dump", type=Path, help="write the cProfile stats here (with --profile)")
    args = ap.parse_args()
    work = args.work / f"mb{args.mb:g}"
    paths, facts, cfg = prepare(args.corpus, args.mb, work)
    shutil.rmtree(work / "p1work", ignore_errors=True)
    prof = cProfile.Profile() if args.profile else None
    if prof:
        prof.enable()
    t0 = time.process_time()
    cpu, digest, n = run_pass1(paths, facts, cfg, work)
    total = time.process_time() - t0
    if prof:
        prof.disable()
    meta = json.loads((work / "in" / "slice.json").read_text())
    print(f"slice: {meta['files']} files, {meta['raw_bytes'] / 1e6:.1f} MB raw, {n} essays")
    for name, (sec, nbytes) in cpu.items():
        print(f"{name:18s} {sec:7.2f} s CPU  {nbytes / 1e6 / max(sec, 1e-9):7.1f} MB/s")
    print(f"{'pass 1 total':18s} {total:7.2f} s CPU (incl. reading shards and hashing)")
    print(f"sha256 {digest}")
    if prof:
        if args.dump:
            prof.dump_stats(args.dump)
        pstats.Stats(prof).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
