"""The line prefilter gives exactly ``finditer``'s matches, and refuses patterns it cannot vouch for."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from corpuspipe.core.regex_prefilter import finditer_lines, line_plan
from corpuspipe.stages import watermark as W

DATA = Path(__file__).parent / "data"


def _texts() -> list[str]:
    out = [p.read_text(encoding="utf-8") for p in sorted((DATA / "normalize").glob("*.txt"))]
    out += [p.read_text(encoding="utf-8") for p in sorted((DATA / "watermark").rglob("*")) if p.is_file()
            and p.suffix in (".txt", ".md", ".json", ".jsonl")]
    return out


_LINES = ["版权所有 © 2024 某某网 All Rights Reserved", "Copyright 2020 www.ybask.com", "未经许可不得转载",
          "当前位置：首页 > 范文 > 工作总结", "首页 >> 信息公开", "上一篇：关于加强管理的通知", "下一篇", "点击下载本文 word版下载",
          "收藏本站 | 设为首页 | 我要投稿", "本文由网友上传，不代表本站观点，若需要原创文章可咨询客服老师", "发布时间：2022-11-27 03:08:00 来源：某某网",
          "来源：人民网  作者：佚名  发布时间：2020-01-01", "某某网（www.x.com）为您提供优质范文，欢迎阅读参考。",
          "一、坚持党的领导，版权所有的说法在正文里很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长",
          "首页", "位置", "  ", "", "下载"]


@pytest.mark.parametrize("rule", [r for r in W.load_rules(None) if line_plan(r.pattern) is not None], ids=lambda r: r.name)
def test_line_rules_find_what_finditer_finds(rule):
    rx = re.compile(rule.pattern, re.MULTILINE)
    lit = line_plan(rule.pattern)
    rng = random.Random(5)
    texts = _texts()
    for _ in range(200):  # real text with site lines planted at line starts, mid-line and at the ends
        base = rng.choice(texts)
        lines = base.split("\n")[: rng.randrange(1, 60)]
        for _k in range(rng.randrange(0, 6)):
            i = rng.randrange(0, len(lines) + 1)
            planted = rng.choice(_LINES)
            lines.insert(i, planted if rng.random() < 0.7 else rng.choice(lines or [""])[:5] + planted)
        texts.append("\n".join(lines))
    for t in texts:
        assert [m.span() for m in finditer_lines(rx, lit, t)] == [m.span() for m in rx.finditer(t)]


@pytest.mark.parametrize("pattern", [
    r"版权所有",                      # not anchored: matches anywhere
    r"^版权\s*所有",                  # \s can match a newline
    r"^[^，]{0,9}版权所有",           # [^，] can match a newline
    r"^.{0,9}版权所有",               # . is not analysed
    r"(?i)^copyright",               # case-insensitive
    r"^(?:版权所有)?[ \t]*$",          # no literal every match holds
    r"^首页|尾页",                    # the ^ holds for one branch only
])
def test_patterns_it_cannot_vouch_for_are_refused(pattern):
    assert line_plan(pattern) is None


def test_required_literals_of_a_line_rule():
    assert line_plan(r"^[^\n]{0,50}?(?:点击下载|[Ww][Oo][Rr][Dd]版下载)[^\n]{0,50}$").pattern == "点击下载|版下载"
