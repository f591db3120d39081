"""Evaluate near-duplicate / reuse detection on the bench corpus, and measure memory at scale.

Usage:
  python bench/eval_dedup.py [--corpus bench/out/corpus] [--sweep] [--scale 200000] [--workers 2]

Document level: precision/recall/F1 of near_duplicate pairs against truth.json (documents with the
same base are duplicates; pairs between bases listed in related_natural_bases are ignored).
Section level: recall of planted section copies (a verified pair between a section of the
source and a section of the target document).  Throughput per stage in MB/s of UTF-8 text.
``--scale N`` runs N synthetic section-length texts through the sharded path in a subprocess
and prints peak RSS (resource.getrusage maxrss).

The cleaned text is simulated from truth: title line, header lines and watermarks removed;
Traditional documents are left Traditional (the shingler's char-level t2s folds them) unless
``--opencc`` converts them first, as the normalize stage would.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import resource
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from _need import need_external

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from corpuspipe.config import DedupConfig, SectionConfig  # noqa: E402
from corpuspipe.stages.dedup import DedupItem, DuplicatePair, find_duplicates, lsh_params, write_signatures  # noqa: E402


def load_corpus(root: Path, opencc: bool) -> tuple[dict, dict[str, str]]:
    truth = json.loads((root / "truth.json").read_text(encoding="utf-8"))
    conv = None
    if opencc:
        from opencc import OpenCC

        conv = OpenCC("t2s")
    texts: dict[str, str] = {}
    for rec in truth["documents"]:
        raw = (root / "raw" / rec["path"]).read_bytes().decode(rec["encoding"])
        lines = raw.split("\n")[1:]  # title line
        drop = set(rec["header_lines"])
        body = "\n".join(ln for ln in lines if ln not in drop)
        for wm in rec["watermark_texts"]:
            body = body.replace(wm, "")
        if conv is not None and rec["traditional"]:
            body = conv.convert(body)
        texts[rec["path"]] = body
    return truth, texts


def truth_pairs(truth: dict) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(true duplicate doc pairs, pairs to ignore: between naturally related bases)."""
    by_base: dict[str, list[str]] = {}
    for r in truth["documents"]:
        by_base.setdefault(r["base"], []).append(r["path"])
    true = {tuple(sorted(p)) for docs in by_base.values() for p in itertools.combinations(docs, 2)}
    ignore = set()
    for rel in truth.get("related_natural_bases", []):
        for a in by_base.get(rel["a"], []):
            for b in by_base.get(rel["b"], []):
                ignore.add(tuple(sorted((a, b))))
    return true, ignore


def prf(pred: set, true: set, ignore: set) -> tuple[float, float, float, int, int]:
    pred = pred - ignore
    tp = len(pred & true)
    p = tp / len(pred) if pred else 1.0
    r = tp / len(true) if true else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f, len(pred - true), len(true - pred)


def _sig_worker(args):
    items, level, cfg_json, path = args
    return write_signatures(items, level, DedupConfig.model_validate_json(cfg_json), Path(path))


def run(items: list[DedupItem], cfg: DedupConfig, level: str, workers: int = 1, shard: int = 2000) -> dict:
    """The stage's path: write_signatures per shard, then find_duplicates, timed per phase."""
    import pyarrow.parquet as pq
    import tempfile

    mb = sum(len(it.text.encode()) for it in items) / 1e6
    with tempfile.TemporaryDirectory(prefix="eval-dedup-") as tmp:
        jobs = [(items[i : i + shard], level, cfg.model_dump_json(), f"{tmp}/sig{i // shard:05d}.parquet")
                for i in range(0, len(items), shard)]
        t0 = time.perf_counter()
        if workers > 1:
            with ProcessPoolExecutor(workers) as ex:
                list(ex.map(_sig_worker, jobs))
        else:
            for j in jobs:
                _sig_worker(j)
        t1 = time.perf_counter()
        out = find_duplicates([Path(j[3]) for j in jobs], level, cfg, Path(tmp) / "work")
        t2 = time.perf_counter()
        pairs = [DuplicatePair(**r) for r in pq.read_table(out.pairs_path).to_pylist()]
        clusters = {it.key: (it.key, None) for it in items}
        clusters.update({r["id"]: (r["cluster_id"], r["duplicate_of"]) for r in pq.read_table(out.clusters_path).to_pylist()})
    sec = out.stats["seconds"]
    return {
        "mb": mb,
        "pairs": pairs,
        "clusters": clusters,
        "stats": out.stats,
        "candidates": out.stats["candidates"],
        "t_sig": t1 - t0,
        "t_find": t2 - t1,
        "mbps_sig": mb / max(t1 - t0, 1e-9),
        "mbps_cand": mb / max(sec["bands"] + sec["candidates"], 1e-9),
        "mbps_verify": mb / max(sec["verify"] + sec["cluster"], 1e-9),
    }


def doc_eval(truth: dict, texts: dict[str, str], cfg: DedupConfig, workers: int = 1) -> dict:
    items = [DedupItem(k, v, len(v)) for k, v in sorted(texts.items())]
    res = run(items, cfg, "document", workers)
    true, ignore = truth_pairs(truth)
    near = {(p.a_id, p.b_id) for p in res["pairs"] if p.relation == "near_duplicate"}
    res["direct"] = prf(near, true, ignore)
    members: dict[str, list[str]] = {}
    for k, (c, _) in res["clusters"].items():
        members.setdefault(c, []).append(k)
    closure = {tuple(sorted(p)) for m in members.values() for p in itertools.combinations(m, 2)}
    res["cluster"] = prf(closure, true, ignore)
    return res


def _paragraph_units(text: str, scfg) -> list:
    from corpuspipe.stages.section import OutlineNode

    out, pos = [], 0
    for k, para in enumerate(text.split("\n")):
        if para.strip():
            out.append(OutlineNode(f"p{k}", 1, k, "", "paragraph", None, pos, pos + len(para), None))
        pos += len(para) + 1
    return out


def section_eval(truth: dict, texts: dict[str, str], cfg: DedupConfig, workers: int = 1, units: str = "sections") -> dict:
    from corpuspipe.stages.section import section_text

    split = section_text if units == "sections" else _paragraph_units
    items: list[DedupItem] = []
    doc_of: dict[str, str] = {}
    scfg = SectionConfig()
    for doc, text in sorted(texts.items()):
        secs = split(text, scfg)
        for s in secs:
            sid = f"{doc}/{s.path}"
            t = text[s.char_start : s.char_end]
            items.append(DedupItem(sid, t, len(t), group=doc))
            doc_of[sid] = doc
        if not secs:
            items.append(DedupItem(f"{doc}/0", text, len(text), group=doc))
            doc_of[f"{doc}/0"] = doc
    res = run(items, cfg, "section", workers)
    linked: dict[tuple[str, str], str] = {}
    for p in res["pairs"]:
        key = tuple(sorted((doc_of[p.a_id], doc_of[p.b_id])))
        if linked.get(key) != "reuse":
            linked[key] = p.relation
    # rows are linear in cluster size: documents linked through a shared section cluster count too
    members: dict[str, set[str]] = {}
    for sid, (cid, _) in res["clusters"].items():
        if cid != sid:
            members.setdefault(cid, {doc_of[cid]}).add(doc_of[sid])
    for docs in members.values():
        for key in itertools.combinations(sorted(docs), 2):
            linked.setdefault(key, "near_duplicate")
    planted = truth["section_copies"]
    hits = [tuple(sorted((s["from"], s["to"]))) in linked for s in planted]
    res["sections"] = len(items)
    res["planted"] = len(planted)
    res["planted_found"] = sum(hits)
    res["reuse_pairs"] = sum(p.relation == "reuse" for p in res["pairs"])
    res["near_pairs"] = sum(p.relation == "near_duplicate" for p in res["pairs"])
    return res


def fmt_doc(name: str, r: dict) -> str:
    p, rc, f, fp, fn = r["direct"]
    cp, cr, cf, _, _ = r["cluster"]
    return (
        f"{name:<34} P={p:.4f} R={rc:.4f} F1={f:.4f} (fp={fp} fn={fn}) | cluster F1={cf:.4f} | "
        f"cand={r['candidates']} | MB/s sig={r['mbps_sig']:.1f} cand={r['mbps_cand']:.0f} verify={r['mbps_verify']:.0f}"
    )


# -- scale --------------------------------------------------------------------------------


def synthetic_sections(n: int, seed: int = 0) -> list[str]:
    """Section-length texts (80-600 chars) stitched from random 3-12 char chunks of real report text:
    realistic phrase overlap (shared 5-grams) without long copies."""
    src_path = need_external("gov_reports/government_work_reports.jsonl")
    src = "".join(json.loads(ln)["content"] for ln in src_path.read_text(encoding="utf-8").splitlines() if ln.strip())
    rng = np.random.default_rng(seed)
    out = []
    lengths = rng.integers(80, 600, size=n)
    for ln in lengths:
        k = int(ln) // 7 + 1
        starts = rng.integers(0, len(src) - 12, size=k)
        sizes = rng.integers(3, 12, size=k)
        out.append("".join(src[s : s + z] for s, z in zip(starts.tolist(), sizes.tolist()))[: int(ln)])
    return out


def scale_child(n: int, shard: int) -> None:
    t0 = time.perf_counter()
    texts = synthetic_sections(n)
    # plant 1% copies so verification has work
    rng = random.Random(1)
    for i in rng.sample(range(n), n // 100):
        texts[i] = texts[(i * 7919) % n] + "。补充一句"
    items = [DedupItem(f"sec{i:08d}", t, len(t), group=None) for i, t in enumerate(texts)]
    del texts
    gen = time.perf_counter() - t0
    rss_gen = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cfg = DedupConfig()
    res = run(items, cfg, "section", 1, shard)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    text_mb = res["mb"]
    print(
        json.dumps(
            {
                "sections": n,
                "text_mb": round(text_mb, 1),
                "gen_s": round(gen, 1),
                "peak_rss_after_generation_mb": round(rss_gen),
                "peak_rss_mb": round(rss),
                "candidates": res["candidates"],
                "rows": len(res["pairs"]),
                "t_sig": round(res["t_sig"], 1),
                "t_find": round(res["t_find"], 1),
                "find_seconds": res["stats"]["seconds"],
                "mbps_sig": round(res["mbps_sig"], 1),
            }
        )
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=REPO / "bench" / "out" / "corpus")
    ap.add_argument("--sweep", action="store_true", help="threshold / shingle sweep at document level")
    ap.add_argument("--scale", type=int, default=0, help="synthetic sections for the memory run")
    ap.add_argument("--shard", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--opencc", action="store_true")
    ap.add_argument("--word", action="store_true", help="include jieba word 3-grams in the sweep (slow)")
    ap.add_argument("--no-sections", action="store_true")
    ap.add_argument("--scale-child", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.scale_child:
        scale_child(a.scale_child, a.shard)
        return 0
    if (a.corpus / "truth.json").is_file():
        truth, texts = load_corpus(a.corpus, a.opencc)
        mb = sum(len(t.encode()) for t in texts.values()) / 1e6
        print(f"corpus {a.corpus}: {len(texts)} documents, {mb:.1f} MB cleaned text, cores={os.cpu_count()}")
        cfg = DedupConfig()
        print("params", json.dumps(lsh_params(cfg), ensure_ascii=False))
        r = doc_eval(truth, texts, cfg, a.workers)
        print(fmt_doc(f"default workers={a.workers}", r))
        if a.sweep:
            for over in (
                dict(threshold=0.3),
                dict(threshold=0.35),
                dict(threshold=0.4),
                dict(threshold=0.45),
                dict(threshold=0.5),
                dict(threshold=0.6),
                dict(threshold=0.7),
                dict(threshold=0.35, reuse_max_ratio=0),
                dict(threshold=0.35, ngram=4),
                dict(threshold=0.35, ngram=6),
                dict(threshold=0.35, num_perm=64),
            ) + ((dict(threshold=0.35, shingle="word", ngram=3),) if a.word else ()):
                c = DedupConfig(**over)
                print(fmt_doc(json.dumps(over), doc_eval(truth, texts, c, a.workers)))
        for units in () if a.no_sections else ("sections", "paragraphs"):
            s = section_eval(truth, texts, cfg, a.workers, units)
            print(
                f"{units} (section.section_text)" if units == "sections" else units,
                f"{s['sections']} items, cand={s['candidates']}, near={s['near_pairs']} reuse={s['reuse_pairs']}, "
                f"planted section copies found {s['planted_found']}/{s['planted']} "
                f"({s['planted_found'] / max(1, s['planted']):.3f}) | MB/s sig={s['mbps_sig']:.1f} "
                f"cand={s['mbps_cand']:.0f} verify={s['mbps_verify']:.0f}"
            )
    else:
        print(f"no corpus at {a.corpus} (run bench/make_corpus.py)")
    if a.scale:
        cmd = [sys.executable, __file__, "--scale-child", str(a.scale), "--shard", str(a.shard)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        print("scale", out.stdout.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
