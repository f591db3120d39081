"""Whole-pipeline benchmark: per-stage MB/s and peak RSS, then the full ``corpuspipe release``.

Why: the stages are written separately; only a run over tens of MB with known truth shows
which one dominates time and memory.  Each stage runs in its own subprocess (fresh peak-RSS
tracking) on the previous stage's output, pickled to a work dir outside the timed region.
A stage whose module or function does not exist yet prints "missing" and passes its input on.

Usage: ``python bench/run_bench.py [--corpus bench/out/corpus] [--mb 50] [--seed 0]``.
It prints numbers; it asserts nothing about them.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
STAGES = ("ingest", "watermark", "normalize", "section", "dedup")
MB = 1_000_000


# --- memory tracking ------------------------------------------------------------------------
class PeakRSS:
    """Peak resident memory of this process during a ``with`` block.

    Uses the kernel's high-water mark (VmHWM, reset via /proc/self/clear_refs) when available,
    and a psutil sampling thread as a cross-check / fallback.
    """

    def __init__(self, interval: float = 0.005) -> None:
        import psutil  # noqa: PLC0415

        self._proc = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.sampled = 0
        self.hwm_ok = False
        self.start_rss = 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sampled = max(self.sampled, self._proc.memory_info().rss)
            self._stop.wait(self._interval)

    def __enter__(self) -> "PeakRSS":
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            self.hwm_ok = True
        except OSError:
            self.hwm_ok = False
        self.start_rss = self._proc.memory_info().rss
        self.sampled = self.start_rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sampled = max(self.sampled, self._proc.memory_info().rss)

    @property
    def peak(self) -> int:
        hwm = _vm_hwm() if self.hwm_ok else 0
        return max(self.sampled, hwm)


def _vm_hwm() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


# --- worker: one stage in this process ------------------------------------------------------
class Missing(Exception):
    """The stage's module or function is not there yet."""


def _load(name: str) -> Any:
    import importlib  # noqa: PLC0415

    try:
        return importlib.import_module(f"corpuspipe.{name}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("corpuspipe"):
            raise Missing(f"module corpuspipe.{name}") from None
        raise


def _need(mod: Any, *names: str) -> list[Callable[..., Any]]:
    out = []
    for n in names:
        fn = getattr(mod, n, None)
        if fn is None:
            raise Missing(f"{mod.__name__}.{n}")
        out.append(fn)
    return out


def _text_bytes(essays: list[Any]) -> int:
    return sum(len(e.text.encode("utf-8")) for e in essays)


def _fallback_essays(raw: Path, truth: Path) -> list[Any]:
    """Without an ingest module: one essay per file, decoded with the recorded encoding."""
    import hashlib  # noqa: PLC0415

    from corpuspipe.core.edits import TrackedText  # noqa: PLC0415
    from corpuspipe.core.records import Essay  # noqa: PLC0415

    essays = []
    for d in json.loads(truth.read_text(encoding="utf-8"))["documents"]:
        data = (raw / d["path"]).read_bytes()
        essays.append(Essay(d["path"], hashlib.sha256(data).hexdigest(), 0, TrackedText(data.decode(d["encoding"]))))
    return essays


def run_stage(stage: str, raw: Path, state: Path, truth: Path) -> dict[str, Any]:
    """Run one stage on the state in ``state`` (a directory), update the state, return facts."""
    from corpuspipe.core.config import PipelineConfig  # noqa: PLC0415

    cfg = PipelineConfig()
    essays_p, sections_p = state / "essays.pkl", state / "sections.pkl"
    essays: list[Any] = []
    if stage != "ingest":
        if essays_p.exists():
            essays = pickle.loads(essays_p.read_bytes())
        else:
            essays = _fallback_essays(raw, truth)
            essays_p.write_bytes(pickle.dumps(essays, protocol=pickle.HIGHEST_PROTOCOL))
    facts: dict[str, Any] = {"stage": stage, "status": "ok"}
    result: Any = None

    if stage == "ingest":
        discover_sources, ingest_file = _need(_load("ingest"), "discover_sources", "ingest_file")
        facts["input_bytes"] = sum(p.stat().st_size for p in raw.rglob("*") if p.is_file())
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            found = discover_sources(raw, cfg.ingest)
            rel_paths = found[0] if isinstance(found, tuple) else found
            shards = [ingest_file(raw, rel, cfg.ingest) for rel in rel_paths]
            facts["seconds"] = time.perf_counter() - t0
        essays = [e for s in shards for e in s.essays]
        facts["extra"] = {"files": len(rel_paths), "essays": len(essays),
                          "quarantined": sum(len(s.quarantine) for s in shards)}
    elif stage == "watermark":
        mod = _load("watermark")
        collect, select, remove = _need(mod, "collect_boilerplate_stats", "select_boilerplate", "remove_watermarks")
        facts["input_bytes"] = _text_bytes(essays)
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            stats = collect(essays, cfg.watermark)
            boilerplate = select(stats, len(essays), cfg.watermark)
            removed = remove(essays, cfg.watermark, boilerplate)
            facts["seconds"] = time.perf_counter() - t0
        facts["extra"] = {"boilerplate_keys": len(boilerplate), "chars_removed": sum(removed.values()),
                          **_watermark_quality(essays, truth)}
    elif stage == "normalize":
        (normalize_essays,) = _need(_load("normalize"), "normalize_essays")
        facts["input_bytes"] = _text_bytes(essays)
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            counts = normalize_essays(essays, cfg.normalize)
            facts["seconds"] = time.perf_counter() - t0
        facts["extra"] = {"scripts": _count(e.script for e in essays)}
        if isinstance(counts, dict) and counts:
            facts["extra"]["counts"] = dict(sorted(counts.items())[:8])
    elif stage == "section":
        (section_text,) = _need(_load("section"), "section_text")
        facts["input_bytes"] = _text_bytes(essays)
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            sections = {e.doc_id: section_text(e.text, cfg.section) for e in essays}
            facts["seconds"] = time.perf_counter() - t0
        facts["extra"] = {"sections": sum(len(v) for v in sections.values())}
        sections_p.write_bytes(pickle.dumps(sections, protocol=pickle.HIGHEST_PROTOCOL))
    elif stage == "dedup":
        mod = _load("dedup")
        find_duplicates, compute_signatures = _need(mod, "find_duplicates", "compute_signatures")
        DedupItem = mod.DedupItem
        sections = pickle.loads(sections_p.read_bytes()) if sections_p.exists() else {}
        docs = [DedupItem(id=e.doc_id, text=e.text, quality=len(e.text)) for e in essays]
        secs = _section_items(DedupItem, essays, sections)
        facts["input_bytes"] = _text_bytes(essays)
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            compute_signatures(docs, cfg.dedup)
            t_sig = time.perf_counter() - t0
            doc_pairs, doc_clusters, doc_stats = find_duplicates(docs, cfg.dedup, "document")
            sec_pairs, _, sec_stats = find_duplicates(secs, cfg.dedup, "section")
            facts["seconds"] = time.perf_counter() - t0 - t_sig
        facts["extra"] = {
            "doc_signatures_MBps": round(facts["input_bytes"] / MB / t_sig, 2) if t_sig else None,
            "document": doc_stats, "section": sec_stats,
            "quality": _dedup_quality(essays, doc_pairs, doc_clusters, truth),
        }
        result = None
    else:
        raise ValueError(stage)

    facts["peak_rss_mb"] = round(mem.peak / MB, 1)
    facts["start_rss_mb"] = round(mem.start_rss / MB, 1)
    if stage in ("ingest", "watermark", "normalize"):
        essays_p.write_bytes(pickle.dumps(essays, protocol=pickle.HIGHEST_PROTOCOL))
    del result
    return facts


def _watermark_quality(essays: list[Any], truth: Path) -> dict[str, str]:
    """Planted watermarks / header lines still present after removal (lower is better)."""
    docs = {d["path"]: d for d in json.loads(truth.read_text(encoding="utf-8"))["documents"]}
    texts: dict[str, str] = {}
    for e in essays:
        texts[e.source_path] = texts.get(e.source_path, "") + "\n" + e.text
    wm_left = wm_all = hd_left = hd_all = 0
    for path, d in docs.items():
        text = texts.get(path, "")
        wm_all += len(d["watermark_texts"])
        wm_left += sum(text.count(w) > 0 for w in d["watermark_texts"])
        hd_all += len(d["header_lines"])
        hd_left += sum(h in text for h in d["header_lines"])
    return {"watermarks_left": f"{wm_left}/{wm_all}", "header_lines_left": f"{hd_left}/{hd_all}"}


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[str(v)] = out.get(str(v), 0) + 1
    return dict(sorted(out.items()))


def _section_items(DedupItem: Any, essays: list[Any], sections: dict[str, list[Any]]) -> list[Any]:
    """Leaf sections as dedup items (as the release flow does): parents are judged via children."""
    items = []
    for e in essays:
        secs = sections.get(e.doc_id, [])
        parents = {s.parent_path for s in secs if s.parent_path}
        for s in secs:
            if s.path in parents:
                continue
            text = e.text[s.char_start : s.char_end]
            items.append(DedupItem(id=f"{e.doc_id}-{s.path}", text=text, quality=len(text), group=e.doc_id))
    return items


def _dedup_quality(essays: list[Any], pairs: list[Any], clusters: dict[str, Any], truth: Path) -> dict[str, Any]:
    """Document level against truth.json: are copies clustered with their original, and are the
    reported near-duplicate pairs really of one base (or a known related natural pair)?"""
    t = json.loads(truth.read_text(encoding="utf-8"))
    base_of = {d["path"]: d["base"] for d in t["documents"]}
    related = {(r["a"], r["b"]) for r in t.get("related_natural_bases", [])}
    related |= {(b, a) for a, b in related}
    # byte-identical files share a doc_id (it hashes the content), so an id may have several paths
    doc_paths: dict[str, list[str]] = {}
    for e in essays:
        doc_paths.setdefault(e.doc_id, []).append(e.source_path)
    doc_path = {k: v[0] for k, v in doc_paths.items()}
    cluster_of_path: dict[str, set[str]] = {}
    for did, c in clusters.items():
        cid = c[0] if isinstance(c, (tuple, list)) else c
        for path in doc_paths.get(did, [did]):
            cluster_of_path.setdefault(path, set()).add(str(cid))
    copies = [d for d in t["documents"] if d["copy_of"]]
    found = sum(1 for d in copies if cluster_of_path.get(d["path"], set()) & cluster_of_path.get(d["copy_of"], set()))
    by_rate: dict[str, list[int]] = {}
    for d in copies:
        hit = bool(cluster_of_path.get(d["path"], set()) & cluster_of_path.get(d["copy_of"], set()))
        key = f"{d['edit_rate']:.2f}" + ("T" if d["traditional"] else "")
        by_rate.setdefault(key, [0, 0])
        by_rate[key][0] += hit
        by_rate[key][1] += 1
    nd = [p for p in pairs if getattr(p, "relation", "near_duplicate") == "near_duplicate"]
    true_pos = 0
    for p in nd:
        ba, bb = base_of.get(doc_path.get(p.a_id, "")), base_of.get(doc_path.get(p.b_id, ""))
        true_pos += ba is not None and (ba == bb or (ba, bb) in related)
    missed = [
        {"path": d["path"], "copy_of": d["copy_of"], "base": d["base"], "edit_rate": d["edit_rate"],
         "traditional": d["traditional"], "shuffled": d["shuffled"]}
        for d in copies
        if not cluster_of_path.get(d["path"], set()) & cluster_of_path.get(d["copy_of"], set())
    ]
    return {
        "missed_examples": missed[:3],
        "doc_ids_shared_by_several_files": sum(1 for v in doc_paths.values() if len(v) > 1),
        "copies": len(copies),
        "copy_recall": round(found / len(copies), 3) if copies else None,
        "recall_by_edit_rate": {k: f"{v[0]}/{v[1]}" for k, v in sorted(by_rate.items())},
        "near_duplicate_pairs": len(nd),
        "pair_precision": round(true_pos / len(nd), 3) if nd else None,
    }


def worker_main(args: argparse.Namespace) -> int:
    try:
        facts = run_stage(args.worker, Path(args.raw), Path(args.state), Path(args.truth))
    except Missing as exc:
        facts = {"stage": args.worker, "status": "missing", "detail": str(exc)}
    except Exception as exc:  # noqa: BLE001 - report and keep the benchmark going
        import traceback  # noqa: PLC0415

        traceback.print_exc()
        facts = {"stage": args.worker, "status": "error", "detail": f"{type(exc).__name__}: {exc}"[:300]}
    print("BENCH-RESULT " + json.dumps(facts, ensure_ascii=False, default=str), flush=True)
    return 0


# --- driver ---------------------------------------------------------------------------------
def ensure_corpus(corpus: Path, mb: float, seed: int) -> None:
    if (corpus / "truth.json").exists():
        return
    print(f"corpus missing: generating {mb} MB into {corpus}", flush=True)
    subprocess.run([sys.executable, str(REPO / "bench" / "make_corpus.py"), "--out", str(corpus),
                    "--mb", str(mb), "--seed", str(seed)], check=True)


def _bench_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PREFECT_HOME", str(REPO / ".prefect"))
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    src = str(REPO / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_stage_subprocess(stage: str, raw: Path, state: Path, truth: Path, log: Path) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", stage, "--raw", str(raw),
           "--state", str(state), "--truth", str(truth)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_bench_env())
    log.write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr, encoding="utf-8")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("BENCH-RESULT "):
            return json.loads(line[len("BENCH-RESULT "):])
    return {"stage": stage, "status": "error", "detail": f"exit {proc.returncode}, see {log}"}


def run_release(raw: Path, input_bytes: int, log: Path, timeout: float, version: str = "0.0.1") -> dict[str, Any]:
    """The whole release through the CLI; peak RSS summed over the process tree (Prefect may fork)."""
    import psutil  # noqa: PLC0415

    exe = Path(sys.executable).parent / "corpuspipe"
    if not exe.exists():
        return {"stage": "release (CLI)", "status": "missing", "detail": str(exe)}
    out = Path(tempfile.mkdtemp(prefix="corpuspipe-bench-release-"))
    cmd = [str(exe), "release", str(raw), "--out", str(out), "--version", version]
    peak_tree = peak_one = 0
    t0 = time.perf_counter()
    with open(log, "w", encoding="utf-8") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=_bench_env())
        ps = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                procs = [ps, *ps.children(recursive=True)]
                rss = []
                for p in procs:
                    try:
                        rss.append(p.memory_info().rss)
                    except psutil.Error:
                        pass
                peak_tree = max(peak_tree, sum(rss))
                peak_one = max(peak_one, max(rss, default=0))
            except psutil.Error:
                pass
            if time.perf_counter() - t0 > timeout:
                proc.kill()
                break
            time.sleep(0.05)
        rc = proc.wait()
    seconds = time.perf_counter() - t0
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    shutil.rmtree(out, ignore_errors=True)
    facts: dict[str, Any] = {"stage": "release (CLI)", "input_bytes": input_bytes, "seconds": seconds,
                             "peak_rss_mb": round(peak_tree / MB, 1), "extra": {"max_single_process_mb": round(peak_one / MB, 1),
                                                                                 "files_written": len(files)}}
    facts["status"] = "ok" if rc == 0 else "error"
    if rc != 0:
        facts["detail"] = f"exit {rc}, see {log}"
    return facts


def print_table(rows: list[dict[str, Any]], corpus_bytes: int) -> None:
    print()
    print(f"{'stage':<16}{'status':<9}{'input MB':>10}{'seconds':>10}{'MB/s':>9}{'peak RSS MB':>13}")
    total_s = 0.0
    peak = 0.0
    for r in rows:
        if r.get("status") == "ok":
            mbps = r["input_bytes"] / MB / r["seconds"] if r["seconds"] > 0 else float("inf")
            print(f"{r['stage']:<16}{'ok':<9}{r['input_bytes'] / MB:>10.1f}{r['seconds']:>10.2f}{mbps:>9.2f}"
                  f"{r['peak_rss_mb']:>13.1f}")
            if r["stage"] in STAGES:
                total_s += r["seconds"]
                peak = max(peak, r["peak_rss_mb"])
        else:
            print(f"{r['stage']:<16}{r.get('status', '?'):<9}  {r.get('detail', '')}")
        if r["stage"] == "dedup" and r.get("status") == "ok":
            print(f"{'total stages':<16}{'':<9}{corpus_bytes / MB:>10.1f}{total_s:>10.2f}"
                  f"{(corpus_bytes / MB / total_s) if total_s else 0:>9.2f}{peak:>13.1f}")
    print()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=REPO / "bench" / "out" / "corpus")
    ap.add_argument("--mb", type=float, default=50.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset")
    ap.add_argument("--skip-release", action="store_true")
    ap.add_argument("--release-timeout", type=float, default=3600)
    ap.add_argument("--release-version", default="0.0.1", help="MAJOR.MINOR.PATCH (the CLI rejects 'bench')")
    ap.add_argument("--keep-state", type=Path, help="keep the pickled stage outputs here (debugging)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--raw", help=argparse.SUPPRESS)
    ap.add_argument("--state", help=argparse.SUPPRESS)
    ap.add_argument("--truth", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker_main(args)

    corpus = args.corpus.resolve()
    ensure_corpus(corpus, args.mb, args.seed)
    raw, truth = corpus / "raw", corpus / "truth.json"
    corpus_bytes = sum(p.stat().st_size for p in raw.rglob("*") if p.is_file())
    logs = corpus.parent / "bench-logs"
    logs.mkdir(parents=True, exist_ok=True)
    print(f"corpus {corpus}: {corpus_bytes / MB:.1f} MB; python {sys.version.split()[0]}; cpus {os.cpu_count()}",
          flush=True)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="corpuspipe-bench-") as tmp:
        state = Path(tmp)
        if args.keep_state:
            state = args.keep_state.resolve()
            state.mkdir(parents=True, exist_ok=True)
        for stage in [s for s in args.stages.split(",") if s]:
            r = run_stage_subprocess(stage, raw, state, truth, logs / f"{stage}.log")
            rows.append(r)
            status = r.get("status")
            took = f"{r['seconds']:.2f}s" if status == "ok" else r.get("detail", "")
            print(f"  {stage:<10} {status:<8} {took}", flush=True)
            if r.get("extra"):
                print("    " + json.dumps(r["extra"], ensure_ascii=False, default=str), flush=True)
    if not args.skip_release:
        print("  release    running corpuspipe release ...", flush=True)
        r = run_release(raw, corpus_bytes, logs / "release.log", args.release_timeout, args.release_version)
        rows.append(r)
        print(f"  release    {r['status']:<8} {r.get('seconds', 0):.2f}s", flush=True)
    print_table(rows, corpus_bytes)
    (corpus.parent / "bench_results.json").write_text(
        json.dumps({"corpus": str(corpus), "corpus_bytes": corpus_bytes, "rows": rows}, ensure_ascii=False,
                   indent=1, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
