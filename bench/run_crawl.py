"""Run the real CLI on a crawl-shaped corpus and print speed, memory and dedup quality.

Why: the number users get is the one of ``corpuspipe release`` as a whole — stage timings
measured by wiring stages by hand missed 84 % of the wall time (11 s of stages against a 69 s
release on the 50 MB seed-shaped corpus).  This script only starts the CLI as a subprocess,
samples the resident memory of its whole process tree (Prefect server, workers) every 0.2 s,
and reads everything else from the finished release (MANIFEST.json, Parquet tables) and the
generator's truth file (bench/make_crawl.py).

    .venv/bin/python bench/run_crawl.py bench/out/crawl100 [--out DIR] [--rerun]

Beside the release it runs the peer, datatrove's MinHash dedup alone (``bench/peer_datatrove.py``,
in its own interpreter: ``--peer-python``, default ``bench/out/dt-venv/bin/python`` as ``make
bench`` creates it), on the same files in the same run, and prints the ratio of the two walls and
each one's recall of the planted copies.  From the manifest's step log it prints the **serial
share**: the CPU seconds spent outside parallel steps (the main process, Prefect's server, the
workers' own start-up, and any step of a single task) over all CPU seconds of the tree, and the
speed-up Amdahl's law then allows at 8, 32 and 128 workers.

Nothing here asserts a speed: it prints numbers (and writes them to OUT/crawl_bench.json).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
MIN_CHARS = 100  # quality is judged on documents longer than this (truth body length)
COPY_KINDS = ("near_copy", "trad_copy", "family")


# --- running ------------------------------------------------------------------------------------
class TreeSampler(threading.Thread):
    """Peak RSS of a process and all its descendants: of the sum, and of the largest single one."""

    def __init__(self, pid: int, interval: float = 0.2):
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak_sum = 0
        self.peak_single = 0
        self.peak_single_name = ""
        self.max_procs = 0
        self.samples = 0
        self.per_process: dict[int, dict] = {}  # pid -> {"role", "peak_mb", "cpu_s"}
        self._halt = threading.Event()

    def _role(self, p: psutil.Process) -> str:
        """What a process of the tree is: the CLI (main), Prefect's ephemeral server, a pool worker."""
        if p.pid == self.root.pid:
            return "main (CLI + flow + release writer)"
        try:
            cmd = " ".join(p.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return "?"
        if "prefect" in cmd and ("server" in cmd or "uvicorn" in cmd):
            return "prefect server"
        if "multiprocessing" in cmd or "spawn_main" in cmd:
            return "pool worker"
        return cmd[-60:]

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                procs = [self.root] + self.root.children(recursive=True)
            except psutil.NoSuchProcess:
                break
            total = 0
            for p in procs:
                try:
                    rss = p.memory_info().rss
                    cpu = p.cpu_times()
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                total += rss
                rec = self.per_process.get(p.pid)
                if rec is None:
                    rec = self.per_process[p.pid] = {"role": self._role(p), "peak_mb": 0.0, "cpu_s": 0.0}
                rec["peak_mb"] = max(rec["peak_mb"], rss / 2**20)
                rec["cpu_s"] = cpu.user + cpu.system  # the last sample's (a process's last 0.2 s may be missed)
                if rss > self.peak_single:
                    self.peak_single = rss
                    try:
                        self.peak_single_name = " ".join(p.cmdline()[:3])[-80:]
                    except (psutil.NoSuchProcess, psutil.AccessDenied):
                        self.peak_single_name = "?"
            self.peak_sum = max(self.peak_sum, total)
            self.max_procs = max(self.max_procs, len(procs))
            self.samples += 1
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def run_cli(cli: Path, raw: Path, out: Path, log: Path, timeout: float) -> dict:
    return run_tree([str(cli), "release", str(raw), "--out", str(out)], log, timeout)


def run_tree(cmd: list[str], log: Path, timeout: float) -> dict:
    """Run a command, sampling its process tree's memory and CPU; its output goes to ``log``."""
    env = dict(os.environ)
    env.setdefault("PREFECT_HOME", str(REPO / ".prefect"))
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as fh:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()  # our own child, by pid
            rc = proc.wait()
            print(f"timeout after {timeout:.0f} s: killed pid {proc.pid}", file=sys.stderr)
        wall = time.perf_counter() - t0
        sampler.stop()
    return {"cmd": " ".join(cmd), "rc": rc, "wall_s": wall, "peak_tree_rss_mb": sampler.peak_sum / 2**20,
            "peak_single_rss_mb": sampler.peak_single / 2**20, "peak_single_cmd": sampler.peak_single_name,
            "max_processes": sampler.max_procs, "rss_samples": sampler.samples, "log": str(log),
            "per_process": [{"pid": pid, **rec} for pid, rec in sorted(sampler.per_process.items())]}


def latest_release(out: Path) -> Path | None:
    latest = out / "latest"
    if latest.is_file():
        d = out / latest.read_text(encoding="utf-8").strip()
        if (d / "MANIFEST.json").is_file():
            return d
    return None


def tail(path: Path, n: int = 15) -> str:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join("    " + ln for ln in lines[-n:])


# --- quality ------------------------------------------------------------------------------------
def load_truth(corpus: Path) -> list[dict] | None:
    path = corpus / "truth.jsonl"
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def quality(release: Path, truth: list[dict]) -> dict:
    """Document-level precision/recall of planted copies, and the 500-copy family's row counts.

    A truth *group* is an original with all its copies (copies only copy originals).  A planted
    copy is found when one of its documents shares a cluster with one of its source's, or a
    document-level duplicates row links them.  Predicted relations are the duplicates rows at
    document level plus every ``duplicate_of`` link; one is supported when both ends belong to
    the same truth group.  Both ends must be longer than MIN_CHARS in the truth.
    """
    import pyarrow.parquet as pq  # noqa: PLC0415

    by_id = {t["essay_id"]: t for t in truth}
    group = {t["essay_id"]: t["source"] or t["essay_id"] for t in truth}
    # a text file may be split into several essays by ingest: all of them map to the file's essay
    by_file = {t["path"]: t["essay_id"] for t in truth if t["line"] is None}
    by_line = {(t["path"], t["line"]): t["essay_id"] for t in truth if t["line"] is not None}

    docs = pq.read_table(release / "documents",
                         columns=["doc_id", "source_path", "essay_index", "cluster_id", "duplicate_of"]).to_pylist()
    essay_of: dict[str, str] = {}
    docs_of: dict[str, list[str]] = defaultdict(list)
    unmapped = 0
    for d in docs:
        sp = d["source_path"]
        e = by_line.get((sp, d["essay_index"])) if (sp, d["essay_index"]) in by_line else by_file.get(sp)
        if e is None:
            unmapped += 1
            continue
        essay_of[d["doc_id"]] = e
        docs_of[e].append(d["doc_id"])
    cluster = {d["doc_id"]: d["cluster_id"] for d in docs}
    split_files = sum(1 for e, ds in docs_of.items() if len(ds) > 1)

    dup = pq.read_table(release / "duplicates", columns=["level", "a_id", "b_id", "relation"]).to_pylist()
    doc_rows = [r for r in dup if r["level"] == "document"]
    linked = {frozenset((r["a_id"], r["b_id"])) for r in doc_rows}

    def long_enough(e: str) -> bool:
        return by_id[e]["chars"] > MIN_CHARS

    # recall
    found: Counter = Counter()
    total: Counter = Counter()
    missing_docs = 0
    for t in truth:
        if t["kind"] not in COPY_KINDS or not long_enough(t["essay_id"]) or not long_enough(t["source"]):
            continue
        key = (t["kind"], t["edit_rate"])
        total[key] += 1
        mine, theirs = docs_of.get(t["essay_id"], []), docs_of.get(t["source"], [])
        if not mine or not theirs:
            missing_docs += 1
            continue
        if any(cluster[a] == cluster[b] or frozenset((a, b)) in linked for a in mine for b in theirs):
            found[key] += 1

    # precision
    relations = {frozenset((r["a_id"], r["b_id"])) for r in doc_rows}
    relations |= {frozenset((d["doc_id"], d["duplicate_of"])) for d in docs if d["duplicate_of"]}
    supported = unsupported = same_essay = skipped = 0
    bad_examples: list[str] = []
    for rel in sorted(relations, key=sorted):
        a, b = sorted(rel)
        ea, eb = essay_of.get(a), essay_of.get(b)
        if ea is None or eb is None or not long_enough(ea) or not long_enough(eb):
            skipped += 1
        elif ea == eb:
            same_essay += 1
        elif group[ea] == group[eb]:
            supported += 1
        else:
            unsupported += 1
            if len(bad_examples) < 5:
                bad_examples.append(f"{ea}({by_id[ea]['kind']}) ~ {eb}({by_id[eb]['kind']})")

    # the family: rows written for it
    fam_essays = {t["essay_id"] for t in truth if t["kind"] == "family"}
    fam_essays |= {by_id[e]["source"] for e in list(fam_essays)}  # the family's original
    fam_docs = {d for e in fam_essays for d in docs_of.get(e, [])}
    secs = pq.read_table(release / "sections", columns=["section_id", "doc_id"]).to_pylist()
    sec_doc = {s["section_id"]: s["doc_id"] for s in secs}
    fam_doc_rows = sum(1 for r in doc_rows if r["a_id"] in fam_docs and r["b_id"] in fam_docs)
    fam_sec_rows = sum(1 for r in dup if r["level"] == "section"
                       and sec_doc.get(r["a_id"]) in fam_docs and sec_doc.get(r["b_id"]) in fam_docs)
    fam_sections = sum(1 for d in sec_doc.values() if d in fam_docs)
    n_found, n_total = sum(found.values()), sum(total.values())
    n_pred = supported + unsupported
    return {
        "documents": len(docs), "unmapped_documents": unmapped, "files_split_into_several": split_files,
        "recall": n_found / n_total if n_total else None, "copies_found": n_found, "copies_judged": n_total,
        "copies_without_document": missing_docs,
        "recall_by_kind_rate": {f"{k}@{r}": [found[(k, r)], total[(k, r)]] for k, r in sorted(total)},
        "precision": supported / n_pred if n_pred else None, "relations_supported": supported,
        "relations_unsupported": unsupported, "relations_same_essay": same_essay,
        "relations_short_or_unmapped": skipped, "unsupported_examples": bad_examples,
        "family_documents": len(fam_docs), "family_clusters": len({cluster[d] for d in fam_docs}),
        "family_rows_document": fam_doc_rows, "family_rows_section": fam_sec_rows,
        "family_sections": fam_sections,
    }


# --- printing -----------------------------------------------------------------------------------
def machine_line() -> str:
    vm = psutil.virtual_memory()
    load = os.getloadavg()
    return (f"machine: {psutil.cpu_count(logical=True)} logical cores ({psutil.cpu_count(logical=False)} physical), "
            f"RAM {vm.total / 2**30:.1f} GiB ({vm.available / 2**30:.1f} available), "
            f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}, Python {sys.version.split()[0]}")


def print_run(label: str, res: dict, input_mb: float) -> None:
    print(f"{label}: wall {res['wall_s']:.1f} s, {input_mb / res['wall_s']:.2f} MB/s end to end, exit code {res['rc']}")
    print(f"  peak RSS: process tree {res['peak_tree_rss_mb']:,.0f} MB (sum, up to {res['max_processes']} processes), "
          f"largest single process {res['peak_single_rss_mb']:,.0f} MB ({res['peak_single_cmd']})")
    for rec in res.get("per_process", []):
        print(f"    pid {rec['pid']:>7}  peak {rec['peak_mb']:>7,.0f} MB  cpu {rec.get('cpu_s', 0):>8,.1f} s  {rec['role']}")
    cpu = sum(rec.get("cpu_s", 0) for rec in res.get("per_process", []))
    if cpu:
        print(f"  CPU seconds of the tree: {cpu:,.1f} ({cpu / res['wall_s']:.2f} cores busy on average)")


def print_manifest(manifest: dict) -> None:
    stages = manifest.get("stages") or {}
    if stages:
        print("per stage (MANIFEST.json):")
        keys = ("seconds", "input_mb", "mb_per_s", "wall_seconds")
        print(f"  {'stage':<18}" + "".join(f"{k:>14}" for k in keys))
        for name, st in stages.items():
            vals = "".join(f"{st[k]:>14,.2f}" if isinstance(st.get(k), (int, float)) else f"{'-':>14}" for k in keys)
            print(f"  {name:<18}{vals}")
    else:
        print("per stage: the manifest has no 'stages'")
    rows: dict[str, int] = {}
    for o in manifest.get("outputs", []):  # a table's parts (<table>/part-NNNNN.parquet) or a 2.x <table>.parquet
        name = o.get("table") or o["path"].split("/")[0].removesuffix(".parquet")
        rows[name] = rows.get(name, 0) + int(o.get("rows") or 0)
    print("rows: " + ", ".join(f"{k} {v:,}" for k, v in sorted(rows.items())))
    orch = manifest.get("orchestration") or {}
    for key in ("wall_seconds", "release_seconds"):
        if orch.get(key):
            print(f"orchestration {key}: " + ", ".join(f"{k} {v:.1f}" for k, v in orch[key].items()))


def serial_share(manifest: dict, res: dict) -> dict:
    """CPU outside parallel steps / all CPU of the tree, and Amdahl's speed-up at N workers.

    Parallel CPU is what the manifest's step log counts inside steps of two or more tasks (a
    step of one task waits for that task alone).  The rest of the tree's CPU -- the main process
    (flow, glue, writer assembly), Prefect's server, the workers outside their tasks -- is serial
    by this definition; the server's share is also given apart, since it runs beside the workers."""
    steps = (manifest.get("orchestration") or {}).get("steps") or []
    parallel = sum(s["cpu_seconds"] for s in steps if s["tasks"] >= 2)
    single = sum(s["cpu_seconds"] for s in steps if s["tasks"] < 2)
    procs = res.get("per_process", [])
    total = sum(p.get("cpu_s", 0.0) for p in procs)
    server = sum(p.get("cpu_s", 0.0) for p in procs if p["role"] == "prefect server")
    main = sum(p.get("cpu_s", 0.0) for p in procs if p["role"].startswith("main"))
    s = max(0.0, total - parallel) / total if total else None
    return {"total_cpu_s": total, "parallel_cpu_s": parallel, "single_task_step_cpu_s": single, "main_cpu_s": main,
            "server_cpu_s": server, "serial_share": s,
            "serial_share_without_server": (max(0.0, total - parallel - server) / (total - server)) if total > server else None,
            "amdahl": {n: (1 / (s + (1 - s) / n)) if s is not None else None for n in (8, 32, 128)}}


def print_serial(sh: dict) -> None:
    if sh["serial_share"] is None:
        print("serial share: no CPU measured")
        return
    print(f"serial share: {sh['serial_share']:.1%} of {sh['total_cpu_s']:,.1f} CPU s outside parallel steps "
          f"(parallel {sh['parallel_cpu_s']:,.1f}; main process {sh['main_cpu_s']:,.1f}, Prefect server "
          f"{sh['server_cpu_s']:,.1f}, single-task steps {sh['single_task_step_cpu_s']:,.1f}); without the "
          f"server {sh['serial_share_without_server']:.1%}")
    print("  Amdahl speed-up this allows: " + ", ".join(f"{n} workers {v:.1f}x" for n, v in sh["amdahl"].items()))


def run_peer(python: Path, corpus: Path, work: Path, timeout: float) -> dict | None:
    """datatrove's MinHash dedup on the same files (bench/peer_datatrove.py), with its tree sampled."""
    if not python.is_file():
        print(f"peer: not run ({python} missing: `make bench` creates it, or pass --peer-python)")
        return None
    js = work / "peer.json"
    res = run_tree([str(python), str(REPO / "bench" / "peer_datatrove.py"), str(corpus), "--work", str(work / "dt"),
                    "--workers", "2", "--json", str(js)], REPO / "bench" / "out" / "logs" / f"peer-{corpus.name}.log",
                   timeout)
    if res["rc"] != 0 or not js.is_file():
        print(f"peer: failed (exit {res['rc']}); last lines of {res['log']}:\n{tail(Path(res['log']))}")
        return None
    res["peer"] = json.loads(js.read_text(encoding="utf-8"))
    return res


def peer_recall(clusters: dict[str, int], truth: list[dict]) -> dict:
    """The share of planted copies (both sides > MIN_CHARS) that datatrove put in their source's cluster."""
    def doc_id(t: dict) -> str:
        return t["path"] if t["line"] is None else f"{t['path']}#{t['line']}"

    by_id = {t["essay_id"]: t for t in truth}
    found = total = 0
    for t in truth:
        if t["kind"] not in COPY_KINDS or by_id[t["essay_id"]]["chars"] <= MIN_CHARS \
                or by_id[t["source"]]["chars"] <= MIN_CHARS:
            continue
        total += 1
        a, b = clusters.get(doc_id(t), -1), clusters.get(doc_id(by_id[t["source"]]), -2)
        found += a == b and a != -1
    return {"copies_found": found, "copies_judged": total, "recall": found / total if total else None}


def print_quality(q: dict) -> None:
    fmt = lambda x: "n/a" if x is None else f"{x:.4f}"  # noqa: E731
    print(f"dedup quality (documents > {MIN_CHARS} chars): recall {fmt(q['recall'])} "
          f"({q['copies_found']:,}/{q['copies_judged']:,} planted copies; {q['copies_without_document']} without a "
          f"document), precision {fmt(q['precision'])} ({q['relations_supported']:,} supported / "
          f"{q['relations_supported'] + q['relations_unsupported']:,} predicted relations)")
    print("  recall by kind@edit rate: " + ", ".join(f"{k} {f}/{n}" for k, (f, n) in q["recall_by_kind_rate"].items()))
    if q["unsupported_examples"]:
        print("  unsupported, e.g.: " + "; ".join(q["unsupported_examples"]))
    print(f"  documents {q['documents']:,} ({q['unmapped_documents']} not in the truth, "
          f"{q['files_split_into_several']} files split into several essays)")
    print(f"family ({q['family_documents']} documents, {q['family_clusters']} cluster(s), {q['family_sections']:,} sections): "
          f"duplicates.parquet rows document level {q['family_rows_document']:,}, "
          f"section level {q['family_rows_section']:,}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", type=Path, help="a make_crawl.py output (raw/ + truth.jsonl), or a raw directory")
    ap.add_argument("--out", type=Path, help="releases root (default bench/out/releases-<corpus name>); emptied first")
    ap.add_argument("--rerun", action="store_true", help="time a second, unchanged run into the same --out")
    ap.add_argument("--keep-work", action="store_true",
                    help="empty --out but keep its .work cache: re-times discovery, cache look-ups and the writer")
    ap.add_argument("--cli", type=Path, default=REPO / ".venv" / "bin" / "corpuspipe")
    ap.add_argument("--peer-python", type=Path, default=REPO / "bench" / "out" / "dt-venv" / "bin" / "python",
                    help="interpreter with datatrove installed (default: the one `make bench` creates)")
    ap.add_argument("--no-peer", action="store_true", help="do not run datatrove beside the release")
    ap.add_argument("--timeout", type=float, default=6 * 3600)
    a = ap.parse_args(argv)
    corpus = a.corpus.resolve()
    raw = corpus / "raw" if (corpus / "raw").is_dir() else corpus
    if not raw.is_dir():
        print(f"error: corpus not found: {a.corpus}", file=sys.stderr)
        return 2
    out = (a.out or REPO / "bench" / "out" / f"releases-{corpus.name}").resolve()
    if out.exists():
        if any(out.iterdir()) and not ((out / "index.json").exists() or (out / "latest").exists()
                                       or (out / ".work").exists()):
            print(f"error: --out {out} exists and is not a releases root; refusing to empty it", file=sys.stderr)
            return 2
        if a.keep_work and (out / ".work").is_dir():
            for p in out.iterdir():
                if p.name != ".work":
                    shutil.rmtree(p) if p.is_dir() else p.unlink()
        else:
            shutil.rmtree(out)
    files = [p for p in raw.rglob("*") if p.is_file()]
    input_bytes = sum(p.stat().st_size for p in files)
    input_mb = input_bytes / 1e6
    print(machine_line())
    print(f"corpus: {raw} — {input_mb:,.1f} MB in {len(files):,} files")
    results: dict = {"corpus": str(raw), "input_bytes": input_bytes, "files": len(files), "machine": machine_line()}

    first = run_cli(a.cli, raw, out, REPO / "bench" / "out" / "logs" / f"crawl-{corpus.name}-1.log", a.timeout)
    results["first"] = first
    print_run("first run", first, input_mb)
    release = latest_release(out)
    if first["rc"] != 0 or release is None:
        print(f"the release failed; last lines of {first['log']}:\n{tail(Path(first['log']))}")
        return 1
    manifest = json.loads((release / "MANIFEST.json").read_text(encoding="utf-8"))
    print(f"release {manifest.get('version')} at {release}")
    print_manifest(manifest)
    sh = serial_share(manifest, first)
    results["serial"] = sh
    print_serial(sh)
    results["stages"], results["outputs"] = manifest.get("stages"), manifest.get("outputs")
    truth = load_truth(corpus)
    if truth is None:
        print("no truth.jsonl beside raw/: dedup quality not computed")
    else:
        q = quality(release, truth)
        results["quality"] = q
        print_quality(q)

    if not a.no_peer:
        peer = run_peer(a.peer_python.absolute(), corpus, out, a.timeout)  # not resolve(): a venv python is a link
        if peer is not None:
            results["peer"] = {k: v for k, v in peer.items() if k != "peer"}
            p = peer["peer"]
            print_run("peer: datatrove MinHash dedup alone (" + p["config"] + ", 2 workers)", peer, input_mb)
            print(f"  ratio: our whole release / datatrove's dedup alone = {first['wall_s'] / peer['wall_s']:.2f} "
                  "(wall, same files, same run)")
            if truth is not None:
                pr = peer_recall(p["clusters"], truth)
                results["peer_quality"] = pr
                print(f"  planted copies in their source's cluster: datatrove {pr['recall']:.3f} "
                      f"({pr['copies_found']:,}/{pr['copies_judged']:,}); corpuspipe "
                      f"{results['quality']['recall']:.3f}")

    if a.rerun:
        second = run_cli(a.cli, raw, out, REPO / "bench" / "out" / "logs" / f"crawl-{corpus.name}-2.log", a.timeout)
        results["rerun"] = second
        print_run("unchanged re-run", second, input_mb)
        again = latest_release(out)
        print(f"  re-run / first wall: {second['wall_s'] / first['wall_s']:.3f}; latest release now "
              f"{again.name if again else '?'}" + ("" if second["rc"] == 0 else f"\n{tail(Path(second['log']), 5)}"))
    (out / "crawl_bench.json").write_text(json.dumps(results, indent=1, ensure_ascii=False, default=str) + "\n",
                                          encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
