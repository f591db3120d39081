"""Measure a full build against a cached (unchanged-input) rebuild, per task runner.

    .venv/bin/python scripts/measure_orchestration.py raw
    .venv/bin/python scripts/measure_orchestration.py bench/out/corpus/raw --runners thread,process,dask

Each runner gets a config with its own dataset name, so its first build shares no cache entry with
any other build (a really full run); the second build is identical and should hit the cache.
Timings are wall-clock of the flow call (Prefect server start-up excluded: one server for all).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="corpuspipe-measure-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


def _warm_up() -> None:
    """Start the ephemeral server and import the stage modules outside the timings."""
    from prefect import flow

    import corpuspipe.steps  # noqa: F401

    flow(lambda: None, name="warm-up")()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("raw", type=Path)
    ap.add_argument("--runners", default="thread")
    ap.add_argument("--shard-files", type=int, default=None)
    args = ap.parse_args()

    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    import flows.release as fr
    from flows.release import with_runner

    mb = sum(p.stat().st_size for p in args.raw.rglob("*") if p.is_file()) / 1e6
    files = sum(1 for p in args.raw.rglob("*") if p.is_file())
    print(f"{args.raw}: {files} files, {mb:.1f} MB, {os.cpu_count()} cores")
    tmp = Path(tempfile.mkdtemp(prefix="corpuspipe-measure-out-"))
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        _warm_up()
        for runner in args.runners.split(","):
            cfg = tmp / f"{runner}.toml"
            text = f'[release]\ndataset = "measure-{uuid.uuid4().hex[:8]}"\n'
            if args.shard_files:
                text += f"shard_files = {args.shard_files}\n"
            cfg.write_text(text, encoding="utf-8")
            flow = with_runner(runner)
            out = tmp / runner
            times = []
            for _ in range(2):
                t = time.perf_counter()
                marks: dict[str, float] = {}
                fr.PROGRESS = lambda stage, done, total, t=t, marks=marks: (
                    marks.__setitem__(stage, time.perf_counter() - t) if done == total else None
                )
                flow(raw_dir=str(args.raw), out_dir=str(out), config_path=str(cfg))
                times.append(time.perf_counter() - t)
            full, cached = times
            print(f"{runner:8s} full {full:8.2f} s   cached {cached:7.2f} s   cached/full {cached / full:6.1%}",
                  flush=True)
            print("         cached run, seconds from flow start to the end of each stage:",
                  ", ".join(f"{k} {v:.2f}" for k, v in marks.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
