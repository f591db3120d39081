"""CPU time of pass 0 (ingest and the collects at its end) on a slice of a crawl-shaped corpus, and
a hash that proves no byte moved.

    .venv/bin/python bench/profile_pass0.py --corpus bench/out/crawl100 --mb 30
    .venv/bin/python bench/profile_pass0.py --mb 10 --profile      # + cProfile top functions

The slice is the one :mod:`profile_pass1` links (the first shards, about ``--mb`` MB of raw files).
Every run calls the engine's ``pipeline.run_pass(0, ...)`` on each shard of the slice, in this
process, with ``pipeline.STAGE_CLOCK`` set to ``process_time``: per-stage timings are CPU seconds
(the machine is shared).  Ingest's MB/s is of the raw bytes it read; a collect's, of its input text.

The printed ``sha256`` is over the contents of pass 0's essay files (every column of every row,
read back: :func:`profile_pass1.content_digest`), the sidecars (sources, quarantine), the stage
counts and the collects' partial results with each Parquet file they name replaced by its
contents; ``file sha256`` takes the Parquet files' bytes instead.  Neither is taken inside the
timed part.  The content hash must not change when a stage only gets faster.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from profile_pass1 import content_digest, parse_args, print_digests, slice_raw, timed

from corpuspipe import pipeline
from corpuspipe.config import PipelineConfig


def _digest_partial(value, h, by_content: bool) -> None:
    """Hash a collect's result: its structure, and every Parquet file it names (contents or bytes)."""
    if isinstance(value, dict):
        for k in sorted(value):
            h.update(f"{k}:".encode())
            _digest_partial(value[k], h, by_content)
    elif isinstance(value, (list, tuple)):
        h.update(b"[")
        for v in value:
            _digest_partial(v, h, by_content)
        h.update(b"]")
    elif isinstance(value, str) and value.endswith(".parquet") and Path(value).is_file():
        if by_content:
            content_digest(value, h)
        else:
            h.update(Path(value).read_bytes())
    else:
        h.update(json.dumps(value, sort_keys=True, ensure_ascii=False).encode())


def digests(outs: list[dict]) -> tuple[str, str]:
    """(content sha256, file sha256) of pass 0's outputs."""
    found = []
    for by_content in (True, False):
        h = hashlib.sha256()
        for out in outs:
            if by_content:
                content_digest(out["essays"], h)
            else:
                h.update(Path(out["essays"]).read_bytes())
            h.update(Path(out["sidecar"]).read_bytes())
            h.update(json.dumps(out["counts"], sort_keys=True).encode())
            _digest_partial(out["partials"], h, by_content)
        found.append(h.hexdigest())
    return found[0], found[1]


def run_pass0(raw: Path, work: Path) -> tuple[dict, list[dict], int, int]:
    cfg = PipelineConfig()
    cfg_json = cfg.model_dump_json()
    found = pipeline.discover(raw, cfg)
    pipeline.STAGE_CLOCK = time.process_time
    cpu: dict[str, list[float]] = {}
    outs = []
    n_essays = 0
    for shard in found.shards:
        out = pipeline.run_pass(0, shard, cfg_json, str(raw.resolve()), str(work), {})
        for name, (sec, nbytes) in out["timings"].items():
            c = cpu.setdefault(name, [0.0, 0])
            c[0] += sec
            c[1] += nbytes
        outs.append(out)
        n_essays += out["essay_count"]
    return cpu, outs, n_essays, sum(found.sizes)


def main() -> None:
    args = parse_args(__doc__, "profile_pass0")
    work = args.work / f"mb{args.mb:g}"
    raw, raw_bytes, files = slice_raw(args.corpus, args.mb, work)
    # warm-up outside the clock: imports, the rules and tables every worker loads once
    cfg = PipelineConfig()
    found = pipeline.discover(raw, cfg)
    pipeline.run_pass(0, found.shards[0][:1], cfg.model_dump_json(), str(raw.resolve()), str(work / "warm"), {})
    (cpu, outs, n, nbytes), total, prof = timed(lambda: run_pass0(raw, work / "w"), args.profile)
    digest, file_digest = digests(outs)
    print(f"slice: {files} files, {raw_bytes / 1e6:.1f} MB raw, {n} essays")
    for name, (sec, nb) in cpu.items():
        nb = nb or nbytes
        print(f"{name:26s} {sec:7.2f} s CPU  {nb / 1e6 / max(sec, 1e-9):7.1f} MB/s")
    print(f"{'pass 0 total':26s} {total:7.2f} s CPU  {nbytes / 1e6 / max(total, 1e-9):7.1f} MB/s "
          "(incl. writing shards, hashing)")
    print_digests(digest, file_digest, prof, args)


if __name__ == "__main__":
    main()
