"""One sha256 over what the Chinese-language knowledge decides: it must not move when that knowledge
is moved into ``corpuspipe.zh`` (issue 11).

    .venv/bin/python bench/zh_equivalence.py            # prints the hashes (about 3 s)
    .venv/bin/python bench/zh_equivalence.py --verbose  # + counts of essays, lines, probes

Two parts, both printed, and one ``total`` over them:

* **pipeline**: ingest -> watermark (rules + corpus boilerplate) -> normalize -> section, run with
  the stage functions directly (default config) over ``raw/`` and every file under
  ``../shared/external`` (or ``$CORPUSPIPE_EXTERNAL``; the gov/CPC report JSONL files a second time with ``content`` as
  text field, so the 88 reports are essays and not only quarantine entries).  Hashed per stage
  (essays in file order: doc id, title/author/date, text, every edit, flags, script/ratio,
  sections; plus quarantine reasons) so a moved byte names the stage that moved it.
* **probes**: the grammar pieces asked directly, on every distinct line of every essay (raw slice
  and final text) and on a grid of synthetic markers (every family x numerals x followers,
  including the traps: ``1.5亿``, ``一是否``, ``第一节课``, full-width digits, Traditional
  ``條``/``節``): ingest's ``ingest_outline_level``/``is_title_like``/``essay_header_title``,
  watermark's ``_HEADING`` on the boilerplate key, normalize's ``_MARKER_RE``, section's
  ``cn_numeral``/``_ordinal`` and ``section_text`` on each synthetic line.  The end-to-end run
  alone would miss drift in a family no real text uses.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
from pathlib import Path

from corpuspipe.config import IngestConfig, NormalizeConfig, SectionConfig, WatermarkConfig
from corpuspipe.core.records import Essay, SectionRow, Shard
from corpuspipe.stages import normalize as N
from corpuspipe.stages import section as S
from corpuspipe.stages import watermark as W
from corpuspipe.stages.ingest import titles as TI
from corpuspipe.stages.ingest.files import ingest_file
from corpuspipe.zh.numerals import cn_small_value
from corpuspipe.zh.outline import ingest_outline_level

from _need import EXTERNAL, REPO as ROOT, need_external  # ../shared/external, or CORPUSPIPE_EXTERNAL


def _inputs() -> list[tuple[Path, str, IngestConfig]]:
    """(root, relative path, ingest config) of every input, in a fixed order."""
    cfg = IngestConfig()
    out = [(ROOT / "raw", p.name, cfg) for p in sorted((ROOT / "raw").iterdir()) if p.is_file()]
    out += [(EXTERNAL, str(p.relative_to(EXTERNAL)), cfg) for p in sorted(EXTERNAL.rglob("*")) if p.is_file()]
    jcfg = IngestConfig(jsonl_text_field="content")
    out += [(EXTERNAL, f"gov_reports/{n}", jcfg) for n in ("government_work_reports.jsonl", "cpc_congress_reports.jsonl")]
    return out


def _essay_json(e: Essay) -> str:
    return json.dumps(
        {
            "doc": e.doc_id, "src": e.source_path, "i": e.essay_index, "title": e.title, "author": e.author,
            "date": e.date, "script": e.script, "ratio": round(e.trad_ratio, 12), "flags": e.flags,
            "text": e.body.text, "edits": [list(x) for x in e.body.edits],
            "sections": None if e.sections is None else [tuple(s) for s in e.sections],
        },
        ensure_ascii=False,
    )


def _digest(essays: list[Essay], extra: object = None) -> str:
    h = hashlib.sha256()
    for e in essays:
        h.update(_essay_json(e).encode())
        h.update(b"\n")
    h.update(json.dumps(extra, ensure_ascii=False, sort_keys=True, default=str).encode())
    return h.hexdigest()


def run_pipeline() -> tuple[dict[str, str], list[Essay]]:
    essays: list[Essay] = []
    quarantine: list[tuple[str, str]] = []
    for root, rel, cfg in _inputs():
        part: Shard = ingest_file(root, rel, cfg)
        essays += part.essays
        quarantine += [(q.path, q.reason) for q in part.quarantine]
    hashes = {"ingest": _digest(essays, quarantine)}

    wcfg = WatermarkConfig()
    stats = W.collect_boilerplate_stats(essays, wcfg)
    selected = W.select_boilerplate(stats, len(essays), wcfg)
    removed = W.remove_watermarks(essays, wcfg, selected)
    hashes["watermark"] = _digest(essays, [selected, removed])

    counts = N.normalize_essays(essays, NormalizeConfig())
    hashes["normalize"] = _digest(essays, counts)

    scfg = SectionConfig()
    for e in essays:
        e.sections = [
            SectionRow(e.doc_id, s.path, s.level, s.ordinal, s.marker, s.marker_family, s.heading, s.char_start,
                       s.char_end, s.parent_path)
            for s in S.section_text(e.body.text, scfg)
        ]
    hashes["section"] = _digest(essays)
    return hashes, essays


# -- probes -----------------------------------------------------------------------------------------

_NUMS = ["一", "二", "三", "九", "十", "十一", "二十", "二十三", "九十九", "一百", "一百零一", "两", "〇", "零", "一二", "百",
         "千", "十十", "1", "2", "9", "10", "12", "123", "1234", "０", "１", "１２", "Ⅱ"]
_WRAPS = ["{n}、", "{n}.", "{n}．", "{n}，", "{n}是", "{n}要", "（{n}）", "({n})", "（{n})", "（ {n} ）", "{n} 、",
          "第{n}章", "第{n}节", "第{n}節", "第{n}条", "第{n}條", "第{n}编", "第{n}部分", "第{n}篇", "第{n}款", "第{n}项",
          "第{n}，", "第{n}、", "第{n}：", "篇{n}", "{n}"]
_FOLLOW = ["", "加强党的领导", "，", "。", "的", "否", "5亿", ".5亿", "5", "课", " 总则", "\u3000坚持", ":", "：", "%", "是",
           "、", "月", "节课", "\n二、下一项"]
_OTHER = ["①", "⑳", "⑴", "⒇", "A.", "A．", "C、", "a.", "Z.", "A.B", "AB.", "首先", "首先，", "其次，", "再次：", "最后，", "最后",
          "摘要：", "摘 要:", "关键词：", "關鍵詞:", "参考文献：", "參考文獻：", "1.1", "1.1.", "1.1、", "(1.1)", "2024年", "2024.5",
          "一二三", "第一", "第", "（）", "、", "三、", "十、", "一、总则", "二是", "一是否", "１．", "（１）", "一、\n（一）甲\n（二）乙"]


def synthetic_lines() -> list[str]:
    lines = [w.format(n=n) + f for w, n, f in itertools.product(_WRAPS, _NUMS, _FOLLOW)]
    lines += [o + f for o, f in itertools.product(_OTHER, _FOLLOW)]
    return lines


def _probe_line(s: str) -> list:
    key = W.boilerplate_key(s)
    hm = W.views._HEADING.match(key)
    nm = N.lines._MARKER_RE.match(s)
    return [
        ingest_outline_level(s), TI.is_title_like(s, 40), TI.essay_header_title(s, 40),
        hm.end() if hm else None, nm.end() if nm else None,
    ]


def _probe_numerals() -> list:
    chars = "一二三四五六七八九十百千零〇两"
    out = []
    for k in (1, 2, 3):
        for t in itertools.product(chars, repeat=k):
            s = "".join(t)
            out.append([s, S.cn_numeral(s), cn_small_value(s)])
    for s in ("一百零一", "九百九十九", "一千二百三十四", "二十", "十一", "12", "0"):
        out.append([s, S.cn_numeral(s), cn_small_value(s)])
    return out


def _probe_sections(lines: list[str]) -> list:
    cfg = SectionConfig()
    out = []
    for s in lines:
        secs = S.section_text(s + "\n正文内容。\n" + s.replace("一", "二").replace("1", "2") + "\n正文。", cfg)
        out.append([tuple(x) for x in secs])
    return out


def _probe_ordinals(essays: list[Essay]) -> list:
    out = set()
    for e in essays:
        for s in e.sections or ():
            if s.marker:
                out.add((s.marker_family, s.marker))
    return [[f, m, S._ordinal(f, m)] for f, m in sorted(out)]


def run_probes(essays: list[Essay]) -> tuple[dict[str, str], dict[str, int]]:
    real: set[str] = set()
    for e in essays:
        for text in (e.body.raw, e.body.text):
            real.update(ln.strip() for ln in text.split("\n"))
    real.discard("")
    real_sorted = sorted(real)
    synth = synthetic_lines()
    h = {}
    h["lines"] = hashlib.sha256(
        json.dumps([_probe_line(s) for s in real_sorted + synth], ensure_ascii=False).encode()).hexdigest()
    h["numerals"] = hashlib.sha256(json.dumps(_probe_numerals(), ensure_ascii=False).encode()).hexdigest()
    h["synthetic_sections"] = hashlib.sha256(json.dumps(_probe_sections(synth), ensure_ascii=False).encode()).hexdigest()
    h["ordinals"] = hashlib.sha256(json.dumps(_probe_ordinals(essays), ensure_ascii=False).encode()).hexdigest()
    return h, {"real_lines": len(real_sorted), "synthetic_lines": len(synth)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    need_external()
    hashes, essays = run_pipeline()
    probes, sizes = run_probes(essays)
    for k, v in {**hashes, **{f"probe.{k}": v for k, v in probes.items()}}.items():
        print(f"{k:24s} {v}")
    total = hashlib.sha256(json.dumps([hashes, probes], sort_keys=True).encode()).hexdigest()
    print(f"{'total':24s} {total}")
    if args.verbose:
        n_sec = sum(len(e.sections or ()) for e in essays)
        print(f"essays {len(essays)}, sections {n_sec}, {sizes}", file=sys.stderr)


if __name__ == "__main__":
    main()
