"""Score a built release against the bench corpus truth: what users actually get.

    .venv/bin/python bench/eval_release.py RELEASE_DIR [--corpus bench/out/corpus]

Document level: pairwise precision/recall/F1 over "same cluster" (an original and its edited
copies, and the copies among themselves, belong together; pairs of natural bases with known real
overlap are not counted against precision).  Section level: recall of planted paragraph copies —
a copy counts as found when duplicates.parquet links any section of the source document to any
section of the receiving one.  Also prints the manifest's per-stage MB/s.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq
from _need import REPO, need

from corpuspipe.core.records import make_doc_id


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("release", type=Path)
    ap.add_argument("--corpus", type=Path, default=REPO / "bench" / "out" / "corpus",
                    help="a bench/make_corpus.py corpus (its truth.json and raw/)")
    args = ap.parse_args()
    make = ("make one: .venv/bin/python bench/make_corpus.py --out bench/out/corpus, then "
            ".venv/bin/corpuspipe release bench/out/corpus/raw --out bench/out/corpus-releases")
    truth = json.loads(need(args.corpus / "truth.json", "a bench corpus with its truth file", make)
                       .read_text(encoding="utf-8"))
    raw = args.corpus / "raw"
    need(args.release / "documents", "a release built from that corpus", make)

    doc_of: dict[str, str] = {}
    for d in truth["documents"]:
        sha = hashlib.sha256((raw / d["path"]).read_bytes()).hexdigest()
        doc_of[d["path"]] = make_doc_id(sha, d["essay_index"])
    base_of = {d["path"]: d["base"] for d in truth["documents"]}
    family: dict[str, str] = {}
    for d in truth["documents"]:
        root = d["path"] if d["copy_of"] is None else d["copy_of"]
        family[doc_of[d["path"]]] = root
    related = {frozenset((r["a"], r["b"])) for r in truth.get("related_natural_bases", [])}
    base_by_doc = {doc_of[p]: base_of[p] for p in doc_of}

    docs = pq.read_table(args.release / "documents", columns=["doc_id", "cluster_id"]).to_pylist()
    extra = [d["doc_id"] for d in docs if d["doc_id"] not in base_by_doc]  # essays split off a one-essay file
    cluster = {d["doc_id"]: d["cluster_id"] for d in docs if d["doc_id"] in base_by_doc}
    if not cluster:
        raise SystemExit(f"eval_release.py: {args.release} was not built from {args.corpus}: none of its "
                         f"{len(docs)} documents is in the truth file ({make})")

    def pairs(groups: dict[str, list[str]]) -> set[frozenset]:
        out = set()
        for members in groups.values():
            out.update(frozenset(p) for p in itertools.combinations(sorted(set(members)), 2))
        return out

    truth_groups: dict[str, list[str]] = defaultdict(list)
    for did, root in family.items():
        if did in cluster:
            truth_groups[root].append(did)
    pred_groups: dict[str, list[str]] = defaultdict(list)
    for did, cid in cluster.items():
        pred_groups[cid].append(did)
    tp_set, pred = pairs(truth_groups), pairs(pred_groups)
    tp = len(tp_set & pred)
    fp_pairs = [p for p in pred - tp_set if frozenset(base_by_doc[x] for x in p) not in related]
    fp, fn = len(fp_pairs), len(tp_set - pred)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    print(f"extra essays from false splits: {len(extra)}")
    print(f"documents: {len(docs)}  truth pairs: {len(tp_set)}  predicted pairs: {len(pred)}")
    print(f"document level: precision {precision:.4f}  recall {recall:.4f}  F1 {f1:.4f}  (tp {tp}, fp {fp}, fn {fn})")

    dups = pq.read_table(args.release / "duplicates").to_pylist()
    linked: set[frozenset] = set()
    relation_of: dict[frozenset, str] = {}
    for r in dups:
        if r["level"] != "section":
            continue
        a, b = r["a_id"].split("-")[0], r["b_id"].split("-")[0]
        key = frozenset((a, b))
        linked.add(key)
        relation_of.setdefault(key, r["relation"])
    copies = truth["section_copies"]
    found = [c for c in copies if frozenset((doc_of[c["from"]], doc_of[c["to"]])) in linked]
    rel_counts: dict[str, int] = defaultdict(int)
    for c in found:
        rel_counts[relation_of[frozenset((doc_of[c["from"]], doc_of[c["to"]]))]] += 1
    print(f"planted section copies: {len(found)}/{len(copies)} found (recall {len(found) / max(len(copies), 1):.3f}) "
          f"by relation {dict(rel_counts)}")

    manifest = json.loads((args.release / "MANIFEST.json").read_text(encoding="utf-8"))
    print("stage          compute s   MB/s    wall s")
    for stage, s in manifest["stages"].items():
        print(f"{stage:<14} {s.get('seconds', float('nan')):>9}  {s.get('mb_per_s') or '':>6}  {s.get('wall_seconds', '')}")


if __name__ == "__main__":
    main()
