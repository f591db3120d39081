"""The line prefilter gives exactly ``finditer``'s matches, and refuses patterns it cannot vouch for."""

from __future__ import annotations

import random
import re

import pytest
from tests.helpers.paths import DATA

from corpuspipe.core.regex_prefilter import (
    LineIndex,
    WordScan,
    finditer_lines,
    finditer_windows,
    line_plan,
    line_starts,
    window_plan,
)
from corpuspipe.stages import watermark as W



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


_INLINE = ["[来源：范文大全 www.ybask.com]", "（来源：某某网）", "【本文来源：人民网】", "[范文模版]", "（精选）",
           "[word版可编辑]", "http://www.ybask.com/a/1.html", "www.x.com", "ybask.com/fanwen", "见 gov.cn。", "3.5%",
           "(来源：", "[精选"]


def _planted_texts(seed: int) -> list[str]:
    """Real text, and real text with site lines and inline watermarks planted at line starts,
    mid-line and at the ends (a text may end without a newline)."""
    rng = random.Random(seed)
    texts = _texts()
    for _ in range(200):
        base = rng.choice(texts)
        lines = base.split("\n")[: rng.randrange(1, 60)]
        for _k in range(rng.randrange(0, 6)):
            i = rng.randrange(0, len(lines) + 1)
            planted = rng.choice(_LINES + _INLINE)
            lines.insert(i, planted if rng.random() < 0.7 else rng.choice(lines or [""])[:5] + planted)
        for _k in range(rng.randrange(0, 4)):  # inline notes inside lines
            if lines:
                i = rng.randrange(0, len(lines))
                cut = rng.randrange(0, len(lines[i]) + 1)
                lines[i] = lines[i][:cut] + rng.choice(_INLINE) + lines[i][cut:]
        texts.append("\n".join(lines) + rng.choice(["", "\n"]))
    return texts


@pytest.mark.parametrize("rule", [r for r in W.load_rules(None) if line_plan(r.pattern) is not None], ids=lambda r: r.name)
def test_line_rules_find_what_finditer_finds(rule):
    rx = re.compile(rule.pattern, re.MULTILINE)
    lit = line_plan(rule.pattern)
    for t in _planted_texts(5):
        assert [m.span() for m in finditer_lines(rx, lit, t)] == [m.span() for m in rx.finditer(t)]


@pytest.mark.parametrize("rule", [r for r in W.load_rules(None) if window_plan(r.pattern) is not None], ids=lambda r: r.name)
def test_inline_rules_find_what_finditer_finds(rule):
    """The shipped inline rules (a source note's lookahead, the bare URL's lookbehind and lookahead)
    run over the lines holding their literals only, and find every match finditer finds."""
    rx = re.compile(rule.pattern, re.MULTILINE)
    lit = window_plan(rule.pattern)
    n = 0
    for t in _planted_texts(6):
        want = [m.span() for m in rx.finditer(t)]
        assert [m.span() for m in finditer_windows(rx, lit, t)] == want
        n += len(want)
    assert n > 50


def test_every_shipped_rule_is_planned():
    assert all(line_plan(r.pattern) or window_plan(r.pattern) for r in W.load_rules(None))


@pytest.mark.parametrize("automaton", [True, False])
def test_one_pass_for_all_rules_gives_each_rule_its_lines(automaton):
    """The Aho-Corasick pass over every rule's literals (overlapping occurrences too: 就来源 holds
    来源 though a scan for 就来 would take its 来) gives each rule the lines its own scan gives."""
    plans = {r.name: line_plan(r.pattern) or window_plan(r.pattern) for r in W.load_rules(None)}
    index = LineIndex(plans, use_automaton=automaton)
    assert (index.automaton is not None) == automaton
    for t in _planted_texts(7) + ["就来源：某某网\n", "完整版权所有", ""]:
        got = index.lines(t)
        assert got == {name: line_starts(rx, t) for name, rx in plans.items()}


def test_find_spans_is_the_same_without_the_automaton(monkeypatch):
    from corpuspipe.core import regex_prefilter
    from corpuspipe.stages.watermark import removal

    texts = _planted_texts(8)
    with_ac = [W.find_spans(t, removal.rule_plan(W.load_rules(None))) for t in texts]
    monkeypatch.setattr(regex_prefilter, "_ac", None)
    plan = removal._prefilter.__wrapped__(tuple(W.load_rules(None)))  # a new plan (not the cached one), without it
    assert plan.lines.automaton is None
    assert [W.find_spans(t, plan) for t in texts] == with_ac
    assert sum(map(len, with_ac)) > 100


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


@pytest.mark.parametrize("pattern", [
    r"^版权所有",                      # anchored: line_plan's
    r"版权\s*所有",                   # \s can match a newline
    r"版权所有(?=\s*声明)",            # the lookahead can read past the line's end
    r"版权所有(?![^。]*完)",            # so can this one
    r"版权所有\Z",                    # the end of the whole text
    r"(?i)copyright",                 # case-insensitive
    r"[ \t]*",                        # no literal every match holds
])
def test_unanchored_patterns_it_cannot_vouch_for_are_refused(pattern):
    assert window_plan(pattern) is None


def test_an_unanchored_line_local_pattern_is_planned():
    assert window_plan(r"(?<![A-Za-z].)版权所有(?![A-Za-z])[^\n]{0,9}$") is not None


def test_required_literals_of_a_line_rule():
    assert line_plan(r"^[^\n]{0,50}?(?:点击下载|[Ww][Oo][Rr][Dd]版下载)[^\n]{0,50}$").pattern == "点击下载|版下载"


@pytest.mark.parametrize("automaton", [True, False])
def test_word_scan_finds_what_findall_of_the_alternation_finds(automaton):
    """Leftmost, longest at a position, never overlapping: 就来源 gives 就来 and not 来源, as the
    regex does, and 转载自 gives 转载自 alone (the caller adds the words inside it)."""
    plan = W.removal.rule_plan(W.load_rules(None))
    words = plan.prefilter.words
    scan = WordScan(words, use_automaton=automaton)
    assert (scan.automaton is not None) == automaton
    rx = re.compile("|".join(map(re.escape, sorted(words, key=lambda w: (-len(w), w)))))
    texts = [t.lower() for t in _planted_texts(9)] + ["就来源", "转载自x", "完整版权所有", "www.x.com", ""]
    for t in texts:
        assert scan.found(t) == set(rx.findall(t))
    assert WordScan(["就来", "来源"], use_automaton=automaton).found("就来源") == {"就来"}
    assert WordScan([], use_automaton=automaton).found("anything") == set()
