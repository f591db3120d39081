"""Time and measure the release writer alone, on a finished build's work folder.

Why: the writer runs in the main (CLI/flow) process after the passes; its CPU seconds and peak
RSS are hidden inside the whole release's numbers.  This puts the build together from the pass
and reduce records of a work folder (``<out>/.work``: work-cache records, paths relative to the
folder, so a copied folder works as it is) and calls ``write_release`` into an output root; on
``corpus-rel/.work`` of a 1 MB ``make_corpus.py`` corpus it writes Parquet parts byte-identical to
the CLI's release.  Older work folders: a ``build.json`` is used when present (``--from`` rewrites
the absolute paths in it when the folder was copied), and metadata of the older layout (sources
inline) get their sidecar files written under ``--scratch``, never into the work folder.

    .venv/bin/python bench/bench_writer.py WORK_DIR --out bench/out/writer [--from OLD_PREFIX] [--tracemalloc]
    .venv/bin/python bench/bench_writer.py WORK_DIR --out bench/out/writer --keep --version 1.1.0  # with a changelog

``--keep`` keeps the releases already in ``--out``, so a second run writes against a previous
release (changelog included); ``--version`` forces a new version when the build is unchanged.
Prints CPU seconds, wall seconds, peak RSS (ru_maxrss), the peak RSS inside each step of the
write (sampled every 20 ms), and the sha256 of every Parquet file written (to compare outputs
before/after a change).  Never asserts a speed.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import resource
import shutil
import sys
import threading
import time
from pathlib import Path

from _need import need


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class StepPeaks(threading.Thread):
    """Peak RSS per named step: a sampling thread and wrappers that mark a step's start and end."""

    def __init__(self, interval: float = 0.02):
        super().__init__(daemon=True)
        self.interval, self.step, self.peaks, self.cpu = interval, "setup", {}, {}
        self.stack: list[str] = []

    def run(self) -> None:
        while True:
            r = rss_mb()
            if r > self.peaks.get(self.step, 0.0):
                self.peaks[self.step] = r
            time.sleep(self.interval)

    def wrap(self, module, name: str, label: str | None = None) -> None:
        fn = getattr(module, name)
        label = label or name

        @functools.wraps(fn)
        def inner(*args, **kwargs):
            self.stack.append(self.step)
            self.step = label
            c0 = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.cpu[label] = self.cpu.get(label, 0.0) + time.process_time() - c0
                self.step = self.stack.pop()

        setattr(module, name, inner)


def _sidecar_layout(r: dict, scratch: Path) -> dict:
    """A shard result of the older layout (sources/quarantine inline) with its lists in a sidecar."""
    if "sidecar" in r and "sources" not in r:
        return r
    scratch.mkdir(parents=True, exist_ok=True)
    side = scratch / f"{r['key']}.files.json"
    if not side.is_file():
        side.write_text(json.dumps({"sources": r["sources"], "quarantine": r["quarantine"]}), encoding="utf-8")
    out = {k: v for k, v in r.items() if k not in ("sources", "quarantine", "partials")}
    out.update(sidecar=str(side), source_count=len(r["sources"]), quarantine_count=len(r["quarantine"]),
               cached=r.get("cached", True))
    return out


def _payload(record: Path, work: Path) -> dict:
    """What a pass or reduce returned, from its metadata file: a work-cache record (``payload``
    with paths relative to the work folder, ``core/workcache.py``) or, in older work folders, the
    result itself.  Read as it is: ``WorkCache.load`` would delete a record it cannot verify, and
    this script never writes into the work folder."""
    from corpuspipe.core.workcache import WorkCache  # noqa: PLC0415

    d = json.loads(record.read_text(encoding="utf-8"))
    return WorkCache(work).absolute(d["payload"]) if "payload" in d and "format" in d else d


def load_build(work: Path, old: str | None, scratch: Path) -> dict:
    path = work / "build.json"
    if path.is_file():
        text = path.read_text(encoding="utf-8")
        if old:
            text = text.replace(old.rstrip("/"), str(work.resolve()))
        d = json.loads(text)
    else:  # from the metadata: every pass<k>/<key>.json, in the order of their first source path
        passes = []
        for k in range(10):
            metas = [m for m in sorted((work / f"pass{k}").glob("*.json")) if not m.name.endswith(".files.json")]
            if not metas:
                break
            results = []
            for m in metas:
                r = _payload(m, work)
                if "sources" in r:
                    first = min((s["path"] for s in r["sources"]), default="")
                else:
                    first = min((s["path"] for s in json.loads(Path(r["sidecar"]).read_text())["sources"]), default="")
                results.append((first, _sidecar_layout(r, scratch / f"pass{k}")))
            passes.append([r for _, r in sorted(results, key=lambda x: x[0])])
        reduces = {}
        for m in sorted((work / "reduce").glob("*.json")):
            red = _payload(m, work)
            reduces[red["stage"]] = red
        d = {"quarantine": [], "passes": passes, "reduces": reduces, "wall": {}}
    d["passes"] = [[_sidecar_layout(r, scratch / f"pass{k}") for r in rs] for k, rs in enumerate(d["passes"])]
    return d


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("work", type=Path, help="a build's .work folder (its pass/reduce records, or an older build.json)")
    ap.add_argument("--out", type=Path, required=True, help="releases root to write into (emptied first)")
    ap.add_argument("--from", dest="old", help="absolute work path recorded in build.json, replaced by WORK")
    ap.add_argument("--scratch", type=Path, help="where sidecars of old-layout metadata go (default OUT.sidecars)")
    ap.add_argument("--keep", action="store_true", help="keep the releases in --out (write against the latest)")
    ap.add_argument("--version", help="the version to write (forces a write when the build is unchanged)")
    ap.add_argument("--tracemalloc", action="store_true", help="print the top Python allocations at the peak")
    a = ap.parse_args(argv)
    need(a.work, "a build's work folder", "release a corpus first (.venv/bin/corpuspipe release RAW --out DIR) and "
         "pass DIR/.work")
    scratch = a.scratch or a.out.with_name(a.out.name + ".sidecars")
    d = load_build(a.work, a.old, scratch)
    if a.tracemalloc:
        import tracemalloc

        tracemalloc.start(10)
    from corpuspipe import pipeline
    from corpuspipe.config import PipelineConfig
    from corpuspipe.core.records import QuarantineEntry
    from corpuspipe.release import assemble, card, changelog, report
    from corpuspipe.release import validate as rel

    build = pipeline.BuildResult(quarantine=[QuarantineEntry(**q) for q in d.pop("quarantine")],
                                 passes=d.pop("passes"), reduces=d.pop("reduces"), wall=d.pop("wall"))
    del d
    if a.out.exists() and not a.keep:
        shutil.rmtree(a.out)
    sampler = StepPeaks()
    for mod, name in ((assemble, "_inputs_and_quarantine"), (rel, "validate_release"),
                      (card, "write_card"), (card, "write_croissant"), (report, "write_report"),
                      (changelog, "write_changelog")):
        if hasattr(mod, name):
            sampler.wrap(mod, name)
    cfg = PipelineConfig.load(None)
    rss0 = rss_mb()
    sampler.step = "write_release (rest)"
    sampler.start()
    c0, t0 = time.process_time(), time.perf_counter()
    done = assemble.write_release(build, cfg, a.out, a.version, "2000-01-01T00:00:00+00:00", build.wall)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"write_release: {done.status} {done.version}: cpu {cpu:.1f} s, wall {wall:.1f} s, "
          f"RSS before {rss0:,.0f} MB, after {rss_mb():,.0f} MB, peak {peak:,.0f} MB")
    steps = json.loads((done.release_dir / "MANIFEST.json").read_text(encoding="utf-8")).get("orchestration", {})
    print(f"  steps (wall s, tasks run in this process): {steps.get('release_seconds')}")
    for step, mb in sampler.peaks.items():
        c = sampler.cpu.get(step)
        print(f"  {step:<24} peak {mb:>7,.0f} MB" + (f"  cpu {c:6.1f} s" if c is not None else ""))
    if a.tracemalloc:
        import tracemalloc

        cur, top = tracemalloc.get_traced_memory()
        print(f"tracemalloc: current {cur / 2**20:.0f} MB, peak {top / 2**20:.0f} MB (Python objects only)")
        for st in tracemalloc.take_snapshot().statistics("lineno")[:10]:
            print("  ", st)
    for p in sorted(done.release_dir.glob("*/*.parquet")):
        h = hashlib.sha256(p.read_bytes()).hexdigest()
        print(f"  {p.parent.name + '/' + p.name:<30} {p.stat().st_size:>12,} {h}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
