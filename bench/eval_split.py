"""Recall of essay boundaries and false splits of the compilation splitter, on real documents.

Usage: python bench/eval_split.py [--files 600] [--seed 12] [--show 5] [--dump DIR] [--crawl bench/out/crawl100 [--crawl-only]]

Documents (``../shared/external`` beside the repository, nobody on this project wrote them): 72 government work
reports and NPC resolutions, 16 CPC congress reports (1 of them, 76 characters, is too short to be
an essay and is left out), 55 laws and judicial interpretations (rendered as a crawler would save
them: no Markdown ``#``, the ``<!-- INFO END -->`` line dropped, their real date lines kept).

Each document gets a *header variant*, the ways crawled compilations glue documents together:

===============  ===============================================================================
bare             title line, body
date             title line, a date line (``2024年3月5日``) or the law's own date lines, body
byline           title line, ``国务院总理 李强`` (the premier named in the NPC resolution), body
site_date        title line, ``发布时间：2024-03-05 09:30``, body
long_title       a real long title: the law's own (41-53 chars), a report's with its occasion
                 (``2024年中华人民共和国国务院政府工作报告——2024年3月5日在第十四届全国人民代表大会
                 第二次会议上``: the session from the NPC resolution on that report, the day is
                 illustrative), a CPC report's with ``——在中国共产党第二十次全国代表大会上的报告``
teaser_full      a teaser line (title + first 60 body characters + ``...``) before the title line
teaser_body      a teaser of the body only (``……``) before the title line
teaser_salute    a teaser of title + the body *after* its salutation line (``各位代表：``) + ``...``
teaser_after     the title line, then a teaser of the body, then the body
===============  ===============================================================================

and a separator (``blank``: an empty line between documents and after the header; ``tight``:
none).  Joined files hold 2 or 3 documents drawn with ``random.Random(seed)``; every document is
also rendered alone in every variant and separator (the false-split set).  A true boundary is
found when a span starts exactly at the first line of the document's header (its teaser when the
teaser leads); any other span start is a false split.

Prints recall overall and per variant / source / title length / separator, false splits per
1,000 single documents, false splits inside joined files, and title accuracy at found boundaries.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from corpuspipe.config import IngestConfig
from corpuspipe.stages.ingest.split import split_text
from corpuspipe.stages.ingest.titles import clean_title

from _need import EXTERNAL, need, need_external  # ../shared/external, or CORPUSPIPE_EXTERNAL
VARIANTS = (
    "bare", "date", "byline", "site_date", "long_title",
    "teaser_full", "teaser_body", "teaser_salute", "teaser_after",
)  # fmt: skip
SEPARATORS = ("blank", "tight")


@dataclass
class Doc:
    key: str
    source: str  # report / resolution / cpc / law
    title: str
    long_title: str | None
    date_lines: list[str]  # lines that follow the title in the original (laws) or a made-up date
    byline: str | None
    year: int | None
    body: str


_SALUTATION = re.compile(r"^(?:各位代表|同志们|各位委员|女士们、先生们)[：:！!，,]?$")
_SESSION = re.compile(r"^(第[一二三四五六七八九十]+届全国人民代表大会第[一二三四五六七八九十]+次会议)关于政府工作报告的决议$")
_PREMIER = re.compile(r"国务院总理([\u4e00-\u9fff]{2,3})所作")
_CN_CONGRESS = re.compile(r"\s*\((?P<n>[一二三四五六七八九十]+)大\)$")


def _strip_body(text: str) -> str:
    return "\n".join(ln.rstrip() for ln in text.strip().split("\n")).strip()


def load_docs() -> list[Doc]:
    docs: list[Doc] = []
    rows = [json.loads(ln) for ln in (EXTERNAL / "gov_reports/government_work_reports.jsonl").read_text("utf-8").splitlines()]
    # Reports come before the resolution on them (2025 report, 2025 resolution, ...).
    session_of: dict[int, str] = {}
    premier_of: dict[int, str] = {}
    for a, b in zip(rows, rows[1:]):
        m = _SESSION.match(b["title"])
        if "决议" not in a["title"] and m is not None:
            year = int(a["title"][:4])
            session_of[year] = m.group(1)
            p = _PREMIER.search(b["content"])
            if p:
                premier_of[year] = p.group(1)
    for i, r in enumerate(rows):
        body = _strip_body(r["content"])
        if "决议" in r["title"]:
            docs.append(Doc(f"gov{i:02d}", "resolution", r["title"], None, [], None, None, body))
            continue
        year = int(r["title"][:4])
        long = None
        if year in session_of:
            long = f"{r['title']}——{year}年3月5日在{session_of[year]}上"
        byline = f"国务院总理 {premier_of[year]}" if year in premier_of else None
        docs.append(Doc(f"gov{i:02d}", "report", r["title"], long, [f"{year}年3月5日"], byline, year, body))
    for i, ln in enumerate((EXTERNAL / "gov_reports/cpc_congress_reports.jsonl").read_text("utf-8").splitlines()):
        r = json.loads(ln)
        body = _strip_body(r["content"])
        if len(body) < 500:
            continue  # 論聯合政府: a 76-character stub page, no essay
        m = _CN_CONGRESS.search(r["title"])
        long = None
        if m is not None:
            long = f"{r['title'][: m.start()]}——在中国共产党第{m.group('n')}次全国代表大会上的报告"
        docs.append(Doc(f"cpc{i:02d}", "cpc", r["title"], long, [], None, None, body))
    for i, path in enumerate(sorted((EXTERNAL / "outline_laws/lawrefbook").glob("*.md"))):
        lines = path.read_text("utf-8").split("\n")
        title = lines[0].lstrip("#").strip()
        try:
            info = lines.index("<!-- INFO END -->")
        except ValueError:
            info = 0
        dates = [ln.strip() for ln in lines[1:info] if ln.strip()]
        body_lines = [re.sub(r"^#+\s*", "", ln) for ln in lines[info + 1 :]]
        body = _strip_body("\n".join(body_lines))
        docs.append(Doc(f"law{i:02d}", "law", title, title if len(title) > 40 else None, dates, None, None, body))
    return docs


def _first_paragraph(body: str, skip_salutation: bool) -> str:
    lines = [ln.strip() for ln in body.split("\n") if ln.strip()]
    if skip_salutation and lines and _SALUTATION.match(lines[0]) and len(lines) > 1:
        lines = lines[1:]
    return "".join(lines)[:60]


def applicable(doc: Doc, variant: str) -> bool:
    if variant == "long_title":
        return doc.long_title is not None
    if variant == "byline":
        return doc.byline is not None
    if variant == "teaser_salute":
        first = next((ln.strip() for ln in doc.body.split("\n") if ln.strip()), "")
        return _SALUTATION.match(first) is not None
    return True


def render(doc: Doc, variant: str, sep: str) -> tuple[str, str]:
    """(header + body text, the title a splitter should report)."""
    gap = "\n\n" if sep == "blank" else "\n"
    title = doc.long_title if variant == "long_title" else doc.title
    head: list[str] = []
    if variant == "teaser_full":
        head.append(title + _first_paragraph(doc.body, False) + "...")
    elif variant == "teaser_body":
        head.append(_first_paragraph(doc.body, False) + "……")
    elif variant == "teaser_salute":
        head.append(title + _first_paragraph(doc.body, True) + "...")
    head.append(title)
    if variant == "teaser_after":
        head.append(_first_paragraph(doc.body, False) + "...")
    if doc.source == "law" and variant != "teaser_after":
        head.extend(doc.date_lines)  # a law's own promulgation lines always follow its title
    elif variant == "date":
        head.extend(doc.date_lines or ["2022年10月16日"])
    elif variant == "byline":
        head.append(doc.byline or "")
    elif variant == "site_date":
        head.append(f"发布时间：{doc.year or 2022}-03-05 09:30")
    return "\n".join(head) + gap + doc.body + "\n", title


@dataclass
class Boundary:
    offset: int
    doc: Doc
    variant: str
    sep: str
    title: str


def build_joined(docs: list[Doc], n_files: int, seed: int) -> list[tuple[str, list[Boundary]]]:
    rng = random.Random(seed)
    files = []
    for _ in range(n_files):
        k = rng.choice((2, 3))
        picked = rng.sample(docs, k)
        sep = rng.choice(SEPARATORS)
        text = ""
        bounds: list[Boundary] = []
        for d in picked:
            variant = rng.choice([v for v in VARIANTS if applicable(d, v)])
            part, title = render(d, variant, sep)
            if text:
                text += "\n" if sep == "blank" else ""
            bounds.append(Boundary(len(text), d, variant, sep, title))
            text += part
        files.append((text, bounds))
    return files


def evaluate(args: argparse.Namespace) -> dict:
    cfg = IngestConfig()
    docs = load_docs()
    kw = dict(
        max_title_chars=cfg.max_title_chars,
        min_essay_chars=cfg.min_essay_chars,
        max_long_title_chars=getattr(cfg, "max_long_title_chars", None),
    )
    found: dict[str, Counter] = defaultdict(Counter)  # axis value -> Counter(hit, total)
    misses: list[str] = []
    false_inside: list[str] = []
    title_ok = title_n = 0
    t0 = time.perf_counter()
    nbytes = 0
    for text, bounds in build_joined(docs, args.files, args.seed):
        nbytes += len(text.encode())
        spans = split_text(text, **kw)
        starts = {s.start: s for s in spans[1:]}
        truth = {b.offset for b in bounds[1:]}
        for b in bounds[1:]:
            hit = b.offset in starts
            tl = ">40" if len(b.title) > 40 else "<=40"
            for axis in (f"variant={b.variant}", f"source={b.doc.source}", f"title={tl}", f"sep={b.sep}", "all"):
                found[axis]["hit"] += hit
                found[axis]["n"] += 1
            if hit:
                title_n += 1
                title_ok += starts[b.offset].title == clean_title(b.title)
            else:
                tail = text[max(0, b.offset - 30) : b.offset]
                misses.append(f"{b.doc.key} {b.variant}/{b.sep}: {tail!r} | {text[b.offset : b.offset + 50]!r}")
        for off in sorted(set(starts) - truth):
            false_inside.append(f"{text[off : off + 40]!r}")
    singles = 0
    false_single: list[str] = []
    for d in docs:
        for variant in VARIANTS:
            if not applicable(d, variant):
                continue
            for sep in SEPARATORS:
                text, _ = render(d, variant, sep)
                nbytes += len(text.encode())
                spans = split_text(text, **kw)
                singles += 1
                for s in spans[1:]:
                    false_single.append(f"{d.key} {variant}/{sep}: {text[s.start : s.start + 40]!r}")
        # The body alone (a page whose title went to the file name).
        spans = split_text(d.body + "\n", **kw)
        singles += 1
        for s in spans[1:]:
            false_single.append(f"{d.key} body-only: {d.body[s.start : s.start + 40]!r}")
    dt = time.perf_counter() - t0
    res = {
        "docs": len(docs),
        "boundaries": found["all"]["n"],
        "recall": found["all"]["hit"] / max(1, found["all"]["n"]),
        "singles": singles,
        "false_single": len(false_single),
        "false_per_1000_single": 1000 * len(false_single) / max(1, singles),
        "false_inside_joined": len(false_inside),
        "title_accuracy": title_ok / max(1, title_n),
        "seconds": dt,
        "mb": nbytes / 1e6,
    }
    print(f"{len(docs)} documents; {args.files} joined files, {res['boundaries']} true boundaries; "
          f"{singles} single renderings; {res['mb']:.1f} MB split in {dt:.1f} s")
    print(f"recall {found['all']['hit']}/{found['all']['n']} = {res['recall']:.4f}")
    print(f"false splits: {len(false_single)} in {singles} single documents = "
          f"{res['false_per_1000_single']:.2f} per 1,000; {len(false_inside)} inside joined files")
    print(f"title at found boundaries: {title_ok}/{title_n} = {res['title_accuracy']:.4f}")
    for prefix in ("variant", "source", "title", "sep"):
        print(f"-- recall by {prefix}")
        for axis in sorted(a for a in found if a.startswith(prefix + "=")):
            c = found[axis]
            print(f"   {axis.split('=', 1)[1]:<14} {c['hit']:4d}/{c['n']:<4d} {c['hit'] / c['n']:.3f}")
    for name, rows in (("missed", misses), ("false (single)", false_single), ("false (joined)", false_inside)):
        if rows and args.show:
            print(f"-- {name}, first {min(args.show, len(rows))} of {len(rows)}")
            for r in rows[: args.show]:
                print("   " + r)
    if args.dump:
        out = Path(args.dump)
        out.mkdir(parents=True, exist_ok=True)
        for i, (text, _) in enumerate(build_joined(docs, min(args.files, 20), args.seed)):
            (out / f"joined_{i:03d}.txt").write_text(text, encoding="utf-8")
    return res


def evaluate_crawl(root: Path, show: int) -> dict:
    """False splits on a crawl-shaped corpus (``bench/make_crawl.py``): its truth file names one
    essay per text file, so every text file split into several essays is a false split.  Counted
    per class of page (the real-page classes of issue 23 apart: ``paginated`` pages carry a site
    advert between their pages).  Files are decoded like ingest does (``decode_bytes``);
    undecodable ones are skipped."""
    from corpuspipe.stages.ingest.decode import DecodeRejected, decode_bytes

    cfg = IngestConfig()
    kw = dict(max_title_chars=cfg.max_title_chars, min_essay_chars=cfg.min_essay_chars,
              max_long_title_chars=cfg.max_long_title_chars)
    rows = [json.loads(x) for x in (root / "truth.jsonl").read_text(encoding="utf-8").splitlines()]
    truth = Counter(t["path"] for t in rows)
    kind_of = {t["path"]: t["kind"] for t in rows}
    files = sorted(p for p in (root / "raw").rglob("*") if p.suffix in (".txt", ".md") and p.is_file())
    split_files: list[str] = []
    per_kind: dict[str, Counter] = defaultdict(Counter)
    n = 0
    t0 = time.perf_counter()
    for p in files:
        rel = p.relative_to(root / "raw").as_posix()
        if truth.get(rel, 0) != 1:
            continue  # not a one-essay file of the truth
        try:
            text, _ = decode_bytes(p.read_bytes())
        except DecodeRejected:
            continue
        n += 1
        spans = split_text(text, **kw)
        per_kind[kind_of[rel]]["files"] += 1
        if len(spans) > 1:
            per_kind[kind_of[rel]]["split"] += 1
            split_files.append(f"{kind_of[rel]} {rel}: " + " | ".join(repr(text[s.start : s.start + 30]) for s in spans[1:3]))
    res = {"crawl_files": n, "crawl_false_split_files": len(split_files),
           "crawl_false_per_1000": 1000 * len(split_files) / max(1, n), "crawl_seconds": time.perf_counter() - t0,
           "crawl_split_by_kind": {k: [c["split"], c["files"]] for k, c in sorted(per_kind.items())}}
    print(f"crawl {root}: {len(split_files)} of {n} one-essay text files split = "
          f"{res['crawl_false_per_1000']:.2f} per 1,000 ({res['crawl_seconds']:.0f} s)")
    print("   by class: " + ", ".join(f"{k} {c['split']}/{c['files']}" for k, c in sorted(per_kind.items())))
    for r in split_files[:show]:
        print("   " + r)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=600)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--show", type=int, default=5)
    ap.add_argument("--dump", default=None, help="write the first 20 joined files here")
    ap.add_argument("--json", action="store_true", help="print the summary as JSON last")
    ap.add_argument("--crawl", default=None, help="also count false splits in a make_crawl.py corpus (its folder)")
    ap.add_argument("--crawl-only", action="store_true", help="only the --crawl count")
    args = ap.parse_args()
    if args.crawl:
        need(Path(args.crawl) / "truth.jsonl", "a make_crawl.py corpus with its truth file",
             "make one with .venv/bin/python bench/make_crawl.py --mb 5 --real-share 0.3 --out DIR")
    if not args.crawl_only:
        for sub in ("gov_reports", "outline_laws/lawrefbook"):
            need_external(sub)
    res = {} if args.crawl_only else evaluate(args)
    if args.crawl:
        res.update(evaluate_crawl(Path(args.crawl), args.show))
    if args.json:
        json.dump(res, sys.stdout)
        print()


if __name__ == "__main__":
    main()
