"""Section dedup figures of a real release: pairs by relation, and the no-chaining property.

    .venv/bin/python bench/section_dedup.py [RAW_DIR] [--out DIR]

Without RAW_DIR the 88 gov reports of ``../shared/external/gov_reports`` are written as one text
file each (title line + content) into a temporary raw folder.  Builds with ``pipeline.build`` and
``write_release`` and prints: section pairs by relation, clustered sections, sections whose
``duplicate_of`` has no whole-section near_duplicate row with it (must be 0), and the largest
``jaccard_exact`` of a reuse/paragraph_reuse pair between sections whose lengths differ > 2x.
With ``--truth`` (a make_crawl truth.jsonl): the share of section rows and cluster memberships whose
two documents come from one planted family (a proxy for precision).

Measured (issue 12, same commit before/after; 100 MB crawl, ``bench/out/crawl100``):

| | best-paragraph scores (before) | own scores (now) |
|---|---|---|
| section rows near_duplicate / reuse / paragraph_reuse | 24,128 / 27 / - | 26,301 / 209 / 753 |
| near_duplicate rows within one family | 99.60 % | 99.985 % |
| clustered sections (same family as representative) | 23,696 (99.68 %) | 25,022 (99.98 %) |
| reuse rows within one family | 7 % | 100 % |
| section units / candidates / exact comparisons | 357,757 / 103,979 / 69,172 | 459,974 / 142,165 / 90,275 |
| dedup reduce, section level, CPU s (bands+candidates+verify+cluster) | 60.5 | 54.7 |

88 gov reports: section near_duplicate rows 108 -> 6 (the NPC resolution family), clustered
sections 71 -> 4, largest cluster 26 -> 2, pairs with J >= 0.99 between sections of > 2x different
length 31 -> 0, paragraph_reuse 45.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import duckdb

from corpuspipe import pipeline
from corpuspipe.config import PipelineConfig
from corpuspipe.release.assemble import write_release

from _need import EXTERNAL, need, need_external  # ../shared/external, or CORPUSPIPE_EXTERNAL

EXT = EXTERNAL / "gov_reports"


def gov_raw(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("government_work_reports.jsonl", "cpc_congress_reports.jsonl"):
        for k, line in enumerate((EXT / name).read_text(encoding="utf-8").splitlines()):
            r = json.loads(line)
            (dest / f"{name.split('_')[0]}_{k:03d}.txt").write_text(r["title"] + "\n" + r["content"], encoding="utf-8")
    return dest


def family_share(release: str, truth_path: Path) -> None:
    truth = [json.loads(line) for line in truth_path.read_text(encoding="utf-8").splitlines()]
    src = {t["essay_id"]: t["source"] for t in truth}

    def root(e: str) -> str:
        for _ in range(100):
            if not src.get(e):
                break
            e = src[e]
        return e

    con = duckdb.connect()
    con.execute("CREATE TABLE truth(path VARCHAR, line BIGINT, fam VARCHAR)")
    con.executemany("INSERT INTO truth VALUES (?, ?, ?)",
                    [(t["path"], -1 if t["line"] is None else t["line"], root(t["essay_id"])) for t in truth])
    con.execute(f"""CREATE TABLE dmap AS WITH t AS (SELECT path, fam, row_number() OVER (PARTITION BY path ORDER BY line) - 1 k
        FROM truth) SELECT d.doc_id, t.fam FROM '{release}/documents/*.parquet' d
        JOIN t ON t.path = d.source_path AND t.k = d.essay_index""")
    print("same-family share of section rows:", con.sql(f"""SELECT p.relation, count(*), round(avg((fa.fam = fb.fam)::int), 5)
        FROM '{release}/duplicates/*.parquet' p JOIN '{release}/sections/*.parquet' a ON a.section_id = p.a_id
        JOIN '{release}/sections/*.parquet' b ON b.section_id = p.b_id JOIN dmap fa ON fa.doc_id = a.doc_id
        JOIN dmap fb ON fb.doc_id = b.doc_id WHERE p.level = 'section' GROUP BY 1 ORDER BY 1""").fetchall())
    print("clustered sections, same family as representative:", con.sql(f"""SELECT count(*), round(avg((fa.fam = fb.fam)::int), 5)
        FROM '{release}/sections/*.parquet' s JOIN '{release}/sections/*.parquet' r ON r.section_id = s.duplicate_of
        JOIN dmap fa ON fa.doc_id = s.doc_id JOIN dmap fb ON fb.doc_id = r.doc_id""").fetchall())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("raw", nargs="?", help="a raw folder (default: the 88 gov reports, one file each)")
    ap.add_argument("--out", help="where the release goes (default: a temporary folder)")
    ap.add_argument("--truth", help="make_crawl truth.jsonl: same-family share of section rows")
    args = ap.parse_args()
    if args.raw:
        need(Path(args.raw), "a raw folder to release")
    else:
        need_external("gov_reports")
    if args.truth:
        need(Path(args.truth), "a make_crawl.py truth.jsonl")
    tmp = Path(tempfile.mkdtemp(prefix="secdedup-"))
    raw = Path(args.raw) if args.raw else gov_raw(tmp / "raw")
    out = Path(args.out) if args.out else tmp / "releases"
    cfg = PipelineConfig()
    t = time.perf_counter()
    build = pipeline.build(raw, cfg, out / ".work")
    rel = write_release(build, cfg, out, "1.0.0", "2000-01-01T00:00:00Z", build.wall)
    print(f"built {rel.release_dir} in {time.perf_counter() - t:.1f} s")
    d = str(rel.release_dir)
    q = lambda s: duckdb.sql(s.replace("DUP", f"'{d}/duplicates/*.parquet'").replace("SEC", f"'{d}/sections/*.parquet'"))
    print(q("SELECT level, relation, count(*) n FROM DUP GROUP BY ALL ORDER BY ALL").fetchall())
    print("sections:", q("SELECT count(*) FROM SEC").fetchall()[0][0],
          "clustered members:", q("SELECT count(*) FROM SEC WHERE duplicate_of IS NOT NULL").fetchall()[0][0])
    cols = [r[0] for r in q("DESCRIBE SEC").fetchall()]
    if "is_leaf" in cols:
        print("leaves:", q("SELECT count(*) FROM SEC WHERE is_leaf").fetchall()[0][0])
    no_pair = q("""SELECT s.section_id, s.duplicate_of FROM SEC s LEFT JOIN DUP p ON p.level = 'section'
                   AND p.relation = 'near_duplicate' AND ((p.a_id = s.section_id AND p.b_id = s.duplicate_of)
                   OR (p.b_id = s.section_id AND p.a_id = s.duplicate_of))
                   WHERE s.duplicate_of IS NOT NULL AND p.a_id IS NULL""").fetchall()
    print("members without a near_duplicate row with their representative:", len(no_pair), no_pair[:3])
    weak = q("""SELECT count(*) FROM DUP p JOIN SEC a ON a.section_id = p.a_id JOIN SEC b ON b.section_id = p.b_id
                WHERE p.level = 'section' AND p.relation = 'near_duplicate' AND p.jaccard_exact < 0.35""").fetchall()[0][0]
    print("section near_duplicate rows with jaccard_exact < 0.35:", weak)
    print("pairs with J >= 0.99 between sections whose lengths differ > 2x:", q("""
        SELECT count(*) FROM DUP p JOIN SEC a ON a.section_id = p.a_id JOIN SEC b ON b.section_id = p.b_id
        WHERE p.level = 'section' AND p.jaccard_exact >= 0.99
          AND greatest(length(a.text), length(b.text)) > 2 * least(length(a.text), length(b.text))""").fetchall()[0][0])
    if args.truth:
        family_share(d, Path(args.truth))
    dedup = json.loads((rel.release_dir / "MANIFEST.json").read_text())["dedup"]["section"]
    print("section dedup stats:", {k: dedup[k] for k in sorted(dedup) if k not in ("seconds",)})


if __name__ == "__main__":
    main()
