"""Boilerplate and quality-flag evaluation on real reports plus re-hosted copies with site lines.

Usage:  python bench/eval_boilerplate.py [--out bench/out/boilerplate] [--sites 40]
        python bench/eval_boilerplate.py --laws [--out DIR]       # the 55 laws released as one folder
        python bench/eval_boilerplate.py --crawl CORPUS [--out DIR] # the real-page classes of make_crawl.py

``--laws`` (issue 23): the 55 laws of ``../shared/external/outline_laws/lawrefbook`` as one site;
prints their adoption / promulgation / effective-date lines kept (every non-blank line between a
law's title and ``<!-- INFO END -->``), titles starting with markup and the watermark edits made.
``--crawl``: a ``make_crawl.py`` corpus (best with a larger ``--real-share``) through the real
stages; for its real-page classes (``paginated``, ``dated``, ``contained``, ``real_original``,
``markdown``) prints per class and overall: body text lost (characters of the page's body lines
missing from the document that holds most of that page's body: removed, or released as another
document), planted watermark lines removed, junk kept (planted characters still released, over
all released characters), dated content lines kept, files split, titles with markup.

Builds a deterministic corpus from ``../shared/external/gov_reports`` (88 real reports, PRC state
documents, Wikisource): every report under ``zh.wikisource.org/``, plus ``--sites`` crawl sites that
each re-host 5 reports (title line, the site's own header line on all but one page, its own footer
line on every page; wordings built from parts no shipped rule names) and one title-only page (title
+ the footer line).  Each site's wording sits on 6 of ~330 documents (<= 2 % of the corpus).  Also:
truncated copies (cut mid-sentence), lossy re-encodes (``?`` for characters GB2312 lacks, U+FFFD),
a file of random high bytes read as cp950, a punctuation-only file.

Runs ``pipeline.build`` (the real stages) and prints: boilerplate recall (inserted site lines gone),
body sentences removed by the watermark stage (report sentences before the Wikisource licence),
title-only pages quarantined, flag precision/recall per flag, and whether adding one unrelated file
changed any other document's text.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sys
from pathlib import Path

from corpuspipe import pipeline
from corpuspipe.config import PipelineConfig
from corpuspipe.core import shardio
from corpuspipe.core.runner import ProcessRunner

from _need import EXTERNAL, REPO, need, need_external  # ../shared/external, or CORPUSPIPE_EXTERNAL
_HEAD_A = ["本页内容由", "此文档经", "该资料来自", "文章整理自", "以下资料由"]
_HEAD_B = ["星河", "青禾", "远山", "云帆", "墨林", "知行", "书海", "鸿雁"]
_HEAD_C = ["学习驿站", "资料小屋", "文稿平台", "知识角", "写作社区"]
_FOOT_A = ["喜欢本篇请告诉朋友们", "觉得有用就转给同事吧", "更多同类稿件每天更新", "整理不易感谢支持",
           "本页仅作学习交流之用", "如有疑问请留言反馈"]
_FOOT_B = ["长按识别进入", "记得常来看看", "期待再次光临", "点个赞再走吧", "下次再见"]
# Site sentences shaped like prose (finished, two clauses or more), half with a word about the
# site or the reader, half without one: the genre-prose guard must not keep them.
_PROSE_A = ["愿每一位读者都能有所收获", "愿大家在学习中不断进步", "希望这些内容能带来启发"]
_PROSE_B = ["学有所成", "工作顺利", "事事顺心"]
_PROSE_C = ["我们明天同一时间再见。", "下周同一时间不见不散。", "让我们一起继续努力。"]
_PROSE_SITE = ["本站资料均由会员上传，仅供学习参考，请勿用于商业用途。", "感谢您的耐心阅读，如有不妥之处，敬请批评指正。"]
OPENER = "现在，我代表国务院，向大会报告政府工作"
_SENT = re.compile(r"[^。！？!?\n]{8,}[。！？!?]")


def _reports() -> list[dict]:
    rows = []
    for name in ("government_work_reports.jsonl", "cpc_congress_reports.jsonl"):
        with open(EXTERNAL / "gov_reports" / name, encoding="utf-8") as fh:
            rows += [json.loads(line) for line in fh]
    return rows


def _body(content: str) -> str:
    """The report before Wikisource's licence block (what must survive)."""
    cut = [content.find(m) for m in ("本作品", "这部作品", "Public domain") if m in content]
    return content[: min(cut)] if cut else content


def make_corpus(out: Path, n_sites: int) -> dict:
    rnd = random.Random(12)
    if out.exists():
        shutil.rmtree(out)
    reports = _reports()
    truth: dict = {"boilerplate": {}, "body": {}, "expect": {}}

    def put(rel: str, text: str, body: str | None = None, lines: list[str] = (), expect: list[str] = ()) -> None:
        p = out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
        truth["boilerplate"][rel] = list(lines)
        truth["body"][rel] = body or ""
        truth["expect"][rel] = list(expect)

    for i, r in enumerate(reports):
        put(f"zh.wikisource.org/r{i:03d}.txt", f"{r['title']}\n{r['content']}\n", _body(r["content"]))
    for s in range(n_sites):
        site = f"site{s:02d}"
        head = f"{rnd.choice(_HEAD_A)}{rnd.choice(_HEAD_B)}{rnd.choice(_HEAD_C)}第{s}站精心编排"
        foot = f"{rnd.choice(_FOOT_A)}，{rnd.choice(_FOOT_B)}～{site}小编"
        prose = None
        if s % 4 == 1:
            prose = f"{rnd.choice(_PROSE_A)}，{rnd.choice(_PROSE_B)}，{rnd.choice(_PROSE_C)}"
        elif s % 4 == 3:
            prose = rnd.choice(_PROSE_SITE)
        picks = rnd.sample(range(len(reports)), 5)
        for k, i in enumerate(picks):
            r = reports[i]
            lines = [foot] + ([head] if k else []) + ([prose] if prose else [])
            text = (f"{r['title']}\n" + (f"{head}\n" if k else "") + f"{r['content']}\n"
                    + (f"{prose}\n" if prose else "") + f"{foot}\n")
            put(f"{site}/p{k}.txt", text, _body(r["content"]), lines)
        put(f"{site}/title_only.txt", f"{reports[picks[0]]['title']}（节选目录）\n{foot}\n", "", [foot],
            ["quarantined"])
    # damage and junk, on real text
    for k, i in enumerate(rnd.sample(range(len(reports)), 10)):
        body = _body(reports[i]["content"]).rstrip()
        cut = body[: int(len(body) * 0.6)]
        cut = cut.rstrip("。！？!?\n ")  # stops mid-sentence
        put(f"damaged/trunc{k}.txt", f"{reports[i]['title']}\n{cut}\n", cut, [], ["truncated"])
    trad = [i for i, r in enumerate(reports) if "國" in r["content"][:2000]][:4]
    for k, i in enumerate(trad):
        lossy = reports[i]["content"].encode("gb2312", errors="replace").decode("gb2312")
        put(f"damaged/lossy{k}.txt", f"报告{k}\n{_body(lossy)}\n", "", [], ["encoding_damage"])
    raw = _body(reports[0]["content"]).encode("utf-8")
    holes = bytearray(raw)
    for pos in sorted(rnd.sample(range(100, len(holes) - 100), 12), reverse=True):
        del holes[pos]
    put("damaged/fffd.txt", "受损报告\n" + holes.decode("utf-8", errors="replace") + "\n", "", [], ["encoding_damage"])
    # mojibake: a Traditional report's Big5 bytes read as GBK; a Big5 paragraph read as GBK inside a
    # Simplified report (one garbled line)
    big5 = _body(reports[trad[0]]["content"])[:6000].encode("big5", errors="ignore").decode("gbk", errors="ignore")
    put("damaged/big5_as_gbk.txt", f"报告乙\n{big5}\n", "", [], ["mojibake"])
    para = max(_body(reports[trad[1]]["content"]).split("\n"), key=len)
    garbled = para.encode("big5", errors="ignore").decode("gbk", errors="ignore")
    simp = _body(reports[0]["content"]).split("\n")  # the 2025 report, complete: the garbled line sits inside
    put("damaged/garbled_para.txt", "报告丙\n" + "\n".join(simp[:6] + [garbled] + simp[6:]) + "\n", "", [],
        ["mojibake"])
    junk = bytes(rnd.randrange(0xA1, 0xF9) for _ in range(4000))
    (out / "junk").mkdir(parents=True, exist_ok=True)
    (out / "junk" / "cp950.txt").write_bytes(junk)
    truth["expect"]["junk/cp950.txt"] = ["mostly_non_han|quarantined"]
    put("junk/punct.txt", "……——！！？？。。，，、、；；：：“”《》" * 12 + "\n", "", [], ["punctuation_only|quarantined"])
    (out / "truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1), encoding="utf-8")
    return truth


def run(raw: Path, work: Path, workers: int = 1) -> tuple[dict, set[str]]:
    if work.exists():
        shutil.rmtree(work)
    if workers > 1:  # the CLI's runner: a warm pool of spawned worker processes
        with ProcessRunner(workers) as runner:
            res = pipeline.build(raw, PipelineConfig(), work, runner=runner)
    else:  # in this process
        res = pipeline.build(raw, PipelineConfig(), work)
    essays = {}
    for r in res.passes[-1]:
        for e in shardio.read_essays(Path(r["essays"])):
            essays[(e.source_path, e.essay_index)] = e
    quarantined = {q.path for q in res.quarantine} | {
        q["path"] for results in res.passes for r in results for q in pipeline.shard_files(r)[1]}
    return {"essays": essays, "fact": res.reduces["watermark"]["fact"]}, quarantined


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "boilerplate",
                    help="corpora and work folders (emptied per mode; default: bench/out/boilerplate)")
    ap.add_argument("--sites", type=int, default=40)
    ap.add_argument("--laws", action="store_true", help="only the 55 laws released as one folder")
    ap.add_argument("--crawl", type=Path, default=None, help="only the real-page classes of this make_crawl.py corpus")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--show", type=int, default=0, help="with --crawl: this many lost / left lines per class")
    args = ap.parse_args()
    if args.crawl is not None:
        need(args.crawl / "truth.jsonl", "a make_crawl.py corpus with its truth file",
             "make one with .venv/bin/python bench/make_crawl.py --mb 5 --real-share 0.3 --out DIR")
    else:
        for sub in ("outline_laws/lawrefbook",) if args.laws else ("gov_reports", "outline_laws"):
            need_external(sub)
    if args.laws:
        evaluate_laws(args.out / "laws")
        return
    if args.crawl is not None:
        evaluate_crawl(args.crawl, args.out / "crawl", args.workers, args.show)
        return
    raw = args.out / "raw"
    truth = make_corpus(raw, args.sites)
    built, quarantined = run(raw, args.out / "work")
    essays = built["essays"]
    by_path: dict[str, list] = {}
    for (path, _), e in sorted(essays.items()):
        by_path.setdefault(path, []).append(e)

    def removed(path: str) -> str:
        return "".join("".join(ed.before.split()) for e in by_path.get(path, []) for ed in e.body.edits
                       if ed.stage == "watermark")

    planted = found = 0
    sent_total = sent_removed = 0
    for path, lines in truth["boilerplate"].items():
        gone = removed(path)
        text = "".join(e.body.text for e in by_path.get(path, []))
        for line in lines:
            planted += 1
            found += path in quarantined or line in gone or line not in text
        for sent in _SENT.findall(truth["body"][path]):
            s = "".join(sent.split())
            sent_total += 1
            sent_removed += s in gone
    print(f"documents released {len(essays)}, sites {args.sites + 1}")
    print(f"boilerplate recall {found}/{planted} = {found / max(planted, 1):.4f}")
    print(f"body sentences removed {sent_removed}/{sent_total} = {sent_removed / max(sent_total, 1):.5f}")
    sel = built["fact"]["selected"]
    print(f"selected keys: corpus {sum(x['scope'] == 'corpus' for x in sel)}, site {sum(x['scope'] == 'site' for x in sel)}")
    # flags: precision over every released document, recall over the planted cases
    flags = ["truncated", "encoding_damage", "mojibake", "mostly_non_han", "punctuation_only"]
    for flag in flags:
        fired = {p for p, es in by_path.items() if any(flag in e.flags for e in es)}
        want = {p for p, ex in truth["expect"].items() if any(flag in x.split("|") for x in ex)}
        hit = {p for p in want if p in fired or (p in quarantined and any("quarantined" in x for x in truth["expect"][p]))}
        tp = len(fired & want)
        print(f"flag {flag:17s} fired {len(fired):3d}  precision {tp}/{len(fired)} = "
              f"{(tp / len(fired)) if fired else 1:.3f}  planted handled {len(hit)}/{len(want)}"
              + (f"  false on: {sorted(fired - want)[:4]}" if fired - want else ""))
    prose_lines = [(p, x) for p, ls in truth["boilerplate"].items() for x in ls if x.endswith("。")]
    print(f"prose-shaped site sentences gone {sum(x not in ''.join(e.body.text for e in by_path.get(p, [])) or p in quarantined for p, x in prose_lines)}/{len(prose_lines)}")
    tonly = [p for p in truth["expect"] if "title_only" in p]
    print(f"title-only pages quarantined {sum(p in quarantined for p in tonly)}/{len(tonly)}")
    # stability: one unrelated file added
    extra = sorted((EXTERNAL / "outline_laws").rglob("*.md"))[0]
    (raw / "otherlaw").mkdir(exist_ok=True)
    shutil.copy(extra, raw / "otherlaw" / "law.md")
    built2, _ = run(raw, args.out / "work2")
    changed = [k for k, e in essays.items() if k in built2["essays"] and built2["essays"][k].body.text != e.body.text]
    print(f"documents whose text changed after adding one unrelated file: {len(changed)}")
    recent_only(args.out / "recent")


def recent_only(out: Path) -> None:
    """The corpus of issue 12's opener case: the 14 newest government work reports on one site, two
    sites re-hosting 5 of them each with their own footer.  The opener heads every distinct text."""
    if out.exists():
        shutil.rmtree(out)
    reports = [r for r in _reports() if "政府工作报告" in r["title"] and "决议" not in r["title"]][:14]
    raw = out / "raw"
    for i, r in enumerate(reports):
        (raw / "wikisource").mkdir(parents=True, exist_ok=True)
        (raw / "wikisource" / f"r{i:02d}.txt").write_text(f"{r['title']}\n{r['content']}\n", encoding="utf-8")
    foots = {"siteA": "喜欢本篇请告诉朋友们，点个赞再走吧～A站小编", "siteB": "整理不易感谢支持，期待再次光临～B站小编"}
    for s, (site, foot) in enumerate(sorted(foots.items())):
        (raw / site).mkdir()
        for k in range(5):
            r = reports[(s * 5 + k) % len(reports)]
            (raw / site / f"p{k}.txt").write_text(f"{r['title']}\n{r['content']}\n{foot}\n", encoding="utf-8")
    built, _ = run(raw, out / "work")
    es = built["essays"].values()
    with_opener = [e for e in es if OPENER in e.body.raw]
    kept = [e for e in with_opener if OPENER in e.body.text]
    foot_left = [e for e in es if any(f in e.body.text for f in foots.values())]
    print(f"recent-only corpus: opener kept {len(kept)}/{len(with_opener)}, site footers left {len(foot_left)}")


# --- issue 23: dated content lines, adverts between pages, markup in titles ----------------------
_MARKUP_TITLE = re.compile(r"^\s*(?:#|\*\*|__|>|`|<[a-zA-Z])")
_KEEP = re.compile(r"[^\u4e00-\u9fff0-9A-Za-z]")


def _han_key(text: str) -> str:
    """What survives normalization of a body line: Han characters (Traditional folded to Simplified
    one by one, as the watermark view does), digits and letters (NFKC)."""
    import unicodedata  # noqa: PLC0415

    from corpuspipe.stages.watermark import normalized_view  # noqa: PLC0415

    return _KEEP.sub("", normalized_view(unicodedata.normalize("NFKC", text)))


def _released(built: dict) -> dict[str, list]:
    by_path: dict[str, list] = {}
    for (path, _), e in sorted(built["essays"].items()):
        by_path.setdefault(path, []).append(e)
    return by_path


def law_meta_lines(root: Path) -> list[tuple[str, str]]:
    """(file, line) of every non-blank line between a law's title and ``<!-- INFO END -->``."""
    out = []
    for p in sorted(root.glob("*.md")):
        lines = p.read_text(encoding="utf-8").split("\n")
        info = lines.index("<!-- INFO END -->") if "<!-- INFO END -->" in lines else 0
        out += [(p.name, ln.strip()) for ln in lines[1:info] if ln.strip()]
    return out


def evaluate_laws(out: Path) -> dict:
    raw = out / "raw" / "laws"
    if raw.parent.exists():
        shutil.rmtree(raw.parent)
    raw.mkdir(parents=True)
    src = EXTERNAL / "outline_laws" / "lawrefbook"
    for p in sorted(src.glob("*.md")):
        shutil.copy(p, raw / p.name)
    built, quarantined = run(raw.parent, out / "work")
    by_path = _released(built)
    meta = law_meta_lines(src)
    kept = sum(any(_han_key(line) in _han_key(e.body.text) for e in by_path.get(f"laws/{name}", []))
               for name, line in meta)
    docs = [e for es in by_path.values() for e in es]
    markup = [e.title for e in docs if e.title and _MARKUP_TITLE.match(e.title)]
    rules: dict[str, int] = {}
    for e in docs:
        for ed in e.body.edits:
            if "watermark" in ed.stage.split("+"):
                rules[ed.rule] = rules.get(ed.rule, 0) + 1
    res = {"laws": len(list(src.glob("*.md"))), "documents": len(docs), "meta_lines": len(meta),
           "meta_lines_kept": kept, "titles_with_markup": len(markup), "watermark_edits": rules,
           "quarantined": len(quarantined)}
    print(f"laws {res['laws']} -> documents {res['documents']}, quarantined {res['quarantined']}")
    print(f"law metadata lines kept {kept}/{len(meta)}")
    print(f"titles starting with markup {len(markup)}/{len(docs)}" + (f"  e.g. {markup[0]!r}" if markup else ""))
    print(f"watermark edits by rule: {json.dumps(rules, ensure_ascii=False, sort_keys=True)}")
    return res


REAL_KINDS = ("paginated", "dated", "contained", "real_original", "markdown")


def _page_lines(text: str, row: dict) -> tuple[list[str], str | None]:
    """(body lines, the title line) of a real page: every non-blank line but the title and the
    planted lines (content lines are body)."""
    planted: dict[str, int] = {}
    for w in row.get("watermarks", []):
        planted[w] = planted.get(w, 0) + 1
    body, title_line = [], None
    for ln in (x.strip() for x in text.split("\n")):
        if not ln:
            continue
        if title_line is None and ln.lstrip("# ").strip() == row["title"]:
            title_line = ln
        elif planted.get(ln, 0) > 0:
            planted[ln] -= 1
        else:
            body.append(ln)
    return body, title_line


def _score_page(row: dict, text: str, docs: list, quarantined: bool) -> dict:
    from corpuspipe.stages.watermark import boilerplate_key  # noqa: PLC0415

    body, _ = _page_lines(text, row)
    keys = [_han_key(e.body.text) for e in docs]
    body_keys = [_han_key(b) for b in body]
    main = max(range(len(docs)), key=lambda i: sum(len(k) for k in body_keys if k in keys[i])) if docs else None
    lost_lines = [b for b, k in zip(body, body_keys) if main is None or k not in keys[main]]
    lost = sum(len(_han_key(b)) for b in lost_lines)
    doc_keys = [boilerplate_key(e.body.text) for e in docs]
    left_lines = left_chars = 0
    left: list[str] = []
    for w in sorted(set(row.get("watermarks", []))):  # a planted line left n times counts n times
        n = min(row["watermarks"].count(w), sum(k.count(boilerplate_key(w)) for k in doc_keys))
        left_lines += n
        left_chars += n * len(_han_key(w))
        left += [w] * n
    content = row.get("content_lines") or []
    return {
        "pages": 1, "body_chars": sum(map(len, body_keys)), "body_lost": lost,
        "wm_lines": len(row.get("watermarks", [])), "wm_left": left_lines, "junk_chars": left_chars,
        "released_chars": sum(len(_han_key(e.body.text)) for e in docs),
        "content": len(content), "content_kept": sum(any(_han_key(c) in k for k in keys) for c in content),
        "split": int(len(docs) > 1), "quarantined": int(quarantined and not docs),
        "markup_titles": sum(1 for e in docs if e.title and _MARKUP_TITLE.match(e.title)),
        "title_ok": int(bool(docs) and docs[0].title == row["title"]),
        "examples": [f"lost: {x[:60]}" for x in lost_lines[:3]] + [f"left: {x[:60]}" for x in left[:3]],
    }


def evaluate_crawl(corpus: Path, out: Path, workers: int = 2, show: int = 0) -> dict:
    rows = [json.loads(x) for x in (corpus / "truth.jsonl").read_text(encoding="utf-8").splitlines()]
    rows = [t for t in rows if t["kind"] in REAL_KINDS]
    if not rows:
        sys.exit(f"error: {corpus} has no real-page classes (make_crawl.py --real-share > 0)")
    built, quarantined = run(corpus / "raw", out / "work", workers)
    by_path = _released(built)
    per: dict[str, dict] = {}
    shown: dict[str, list[str]] = {}
    for t in rows:
        text = (corpus / "raw" / t["path"]).read_bytes().decode(t["encoding"])
        sc = _score_page(t, text, by_path.get(t["path"], []), t["path"] in quarantined)
        examples = sc.pop("examples")
        for k in (t["kind"], "all"):
            acc = per.setdefault(k, {})
            for name, v in sc.items():
                acc[name] = acc.get(name, 0) + v
        if examples and len(shown.setdefault(t["kind"], [])) < show:
            shown[t["kind"]].extend(f"{t['path']}: {x}" for x in examples)
    print(f"{corpus}: {len(rows)} real pages")
    print(f"{'class':<14}{'pages':>6}{'body lost':>12}{'wm removed':>16}{'junk kept':>11}{'dated kept':>12}"
          f"{'split':>7}{'markup':>8}{'title ok':>10}")
    for k in (*REAL_KINDS, "all"):
        a = per.get(k)
        if not a:
            continue
        wm = f"{a['wm_lines'] - a['wm_left']}/{a['wm_lines']}"
        print(f"{k:<14}{a['pages']:>6}{a['body_lost'] / max(1, a['body_chars']):>11.2%} {wm:>15}"
              f"{a['junk_chars'] / max(1, a['released_chars']):>10.2%} {a['content_kept']:>5}/{a['content']:<5}"
              f"{a['split']:>7}{a['markup_titles']:>8}{a['title_ok']:>7}/{a['pages']}")
    for kind, lines in sorted(shown.items()):
        for x in lines[:show]:
            print(f"   {kind}: {x}")
    return per


if __name__ == "__main__":
    sys.exit(main())
