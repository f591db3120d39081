"""The outline-marker grammar of Chinese essays, reports and laws: one vocabulary, four readings.

Chinese documents number their parts with a handful of marker families (GB/T 9704: ``一、`` ->
``（一）`` -> ``1.``/``1、`` -> ``（1）``; plus ``①``, ``A.``, ``第一，``, ``一是``, ``首先/其次``,
``第X章/节/部分/编/篇`` and ``第X条`` in laws).  Four stages need to recognise them:

* **section** finds every marker (line starts, and ``一是``/``第一，``/``首先`` after a sentence or
  clause end) and builds the tree -- the full grammar, :data:`SECTION_FAMILY_PATTERNS`;
* **ingest** asks "does this line start with a marker, and which level/number?" to keep headings
  from being taken for essay titles and to see an outline restart at 一 (a new essay);
* **normalize** asks "does this paragraph start with a marker?" so a heading line is never joined
  to the line before it;
* **watermark** asks it of a boilerplate key (digits folded to 0, half-width punctuation, no
  spaces) so a template heading repeated across reports (``一、2024年工作回顾`` heads 13 of 88
  real reports) is never removed as boilerplate.

Until issue 11 each stage had its own copy and they had drifted.  The vocabulary (numerals,
digits, parentheses, delimiters, structure words) and the family builders are now here once;
each stage's reading is built from them with **parameters that reproduce its behaviour exactly**
(checked by ``bench/zh_equivalence.py``: one sha256 over four stages on 160 real essays plus every
line and 15,920 synthetic marker lines, identical before and after).  The differences found,
kept as parameters rather than silently unified (changing any of them changes releases):

==================  =====================  =====================  ====================  ===================
knob                section                ingest                 normalize             watermark (key)
==================  =====================  =====================  ====================  ===================
numerals            一..十百千零〇两        no 千                   no 千, 两              all
Arabic number       [0-9０-９]{1,3}        \\d{1,3} (any Unicode   \\d{1,2}              0+(.0+)* (key view:
                                           digit)                                       1.2.3 dotted)
space inside        none                   \\s* before delimiter   none                  none (key has none)
                                           and inside （ ）
一、 delimiter       、 or ． (not before   、 . ．                 、 . ．                  、 . ．
                    a digit); no ASCII .
（一） parens        （( + )）             （( + )）              （( + )）, numerals     optional "(" + ")"
                                                                  and digits mixed      (一) also matches)
1. / 1、            1、 ; 1. not before    1、 1. 1． not before   1、 1． 1. not before   0、 0. 0)
                    digit . ． % ％        a digit               a digit
一是                run of numerals, not   run of numerals       ONE numeral           --
                    before ，,。；：、的否
第X                 章编 (not before ，的),  第X + one of           第X + one of           第X + one of
                    节節 (not 的/课),        ，,、章节条部分          章节篇条部款、，,：:     章节部分篇编条款项
                    部分, 篇 (before ：/    (X may be digits;     (X may be digits)     (X may be 0)
                    space), 条條 (at line   部分 as a class: 第三分
                    end/space), ，,、：:    matches too)
A.                  A-Z then . ． not      A-Z a-z, \\s*, 、 . ．   A-Z then . ． 、 not   --
                    before A-Za-z0-9                              before A-Za-z
circled             ①-⑳                    ①-⑳ and ⑴-⒇           ①-⑳                   --
other               首先/其次/再次/最后     一要..十要; 摘要 关键词    --                    --
                                           参考文献 heads
第X篇 (essay)       pian: 篇 then ：/:/     header: 第X篇 or 篇X,    --                    in the 第X class
                    space                  any title after
==================  =====================  =====================  ====================  ===================

Numbers: ingest reads its numerals with :func:`corpuspipe.zh.numerals.cn_small_value` (lenient,
0 for 一百), the sectioner with :func:`corpuspipe.zh.numerals.cn_to_int` (strict); see there.
"""

from __future__ import annotations

import re
from functools import lru_cache

from corpuspipe.zh.chars import HSPACE
from corpuspipe.zh.numerals import CN_DIGITS, CN_NUMERAL_CHARS, CN_UNITS, cn_small_value, cn_to_int, numeral_chars

__all__ = [
    "ARABIC_DIGITS",
    "CIRCLED",
    "PAREN_NUMBERS",
    "FIRST_NEXT",
    "SECTION_FAMILY_PATTERNS",
    "FAMILIES",
    "INLINE_FAMILIES",
    "STRONG_FAMILIES",
    "STRUCTURAL_FAMILIES",
    "section_matchers",
    "ordinal",
    "ingest_outline_re",
    "ingest_outline_level",
    "essay_header_re",
    "normalize_marker_re",
    "boilerplate_heading_re",
]

# -- vocabulary ------------------------------------------------------------------------------------

ARABIC_DIGITS = "0-9０-９"  # ASCII and full-width: the sectioner runs after normalize, ingest before
CIRCLED = "①-⑳"
PAREN_NUMBERS = "⑴-⒇"  # ⑴..⒇, single code points for (1)..(20)
OPEN_PAREN = "[（(]"
CLOSE_PAREN = "[）)]"
# The sequence words of first_next and their ordinals; 最后 (0) closes a run of any length.
FIRST_NEXT: dict[str, int] = {"首先": 1, "其次": 2, "再次": 3, "最后": 0}
# Front-matter heads of papers: not outline items, but never an essay title either (ingest).
FRONT_MATTER_HEADS = r"(?:摘\s*要|关键词|關鍵詞|参考文献|參考文獻)\s*[:：]"

_SP = HSPACE
_SPACE = f"[{_SP}]"


# -- family builders: number + gap + delimiter + lookahead ------------------------------------------
# Every reading below is built from these; the parameters carry the differences listed above.

def _num(body: str, group: str | None, run: bool = True) -> str:
    rx = f"[{body}]+" if run else f"[{body}]"
    return f"(?P<{group}>{rx})" if group else rx


def cn_item(numerals: str, delim: str, *, gap: str = "", after: str = "", group: str | None = None) -> str:
    """``一、`` and kin: Chinese numerals, optional gap, a delimiter (regex), optional lookahead."""
    return f"{_num(numerals, group)}{gap}{delim}{after}"


def cn_paren(numerals: str, *, gap: str = "", open_: str = OPEN_PAREN, close: str = CLOSE_PAREN,
             group: str | None = None) -> str:
    """``（一）``: numerals between parentheses (full- or half-width)."""
    return f"{open_}{gap}{_num(numerals, group)}{gap}{close}"


def arabic_paren(arabic: str, *, gap: str = "", open_: str = OPEN_PAREN, close: str = CLOSE_PAREN) -> str:
    """``（1）``: an Arabic number between parentheses."""
    return f"{open_}{gap}{arabic}{gap}{close}"


def arabic_item(arabic: str, delim: str, *, gap: str = "", after: str = "", group: str | None = None) -> str:
    """``1.`` / ``1、``: an Arabic number and a delimiter; ``after`` rejects ``1.5亿``-style numbers."""
    num = f"(?P<{group}>{arabic})" if group else arabic
    return f"{num}{gap}{delim}{after}"


def cn_word(numerals: str, word: str, *, run: bool = True, after: str = "") -> str:
    """``一是`` / ``一要``: numerals followed by a word that makes them a list item."""
    return f"{_num(numerals, None, run)}{word}{after}"


def di_item(numbers: str, unit: str, after: str = "") -> str:
    """``第X章`` / ``第X条`` / ``第一，``: 第, a number, a unit or delimiter (regex), lookahead."""
    return f"第[{numbers}]+{unit}{after}"


def latin_item(letters: str, delim: str, *, gap: str = "", after: str = "") -> str:
    """``A.``: one Latin letter and a delimiter."""
    return f"[{letters}]{gap}{delim}{after}"


# -- section: the full grammar ---------------------------------------------------------------------

_CN = CN_NUMERAL_CHARS
_DIG = f"[{ARABIC_DIGITS}]{{1,3}}"

# Family -> regex for the marker text.  The order matters where prefixes overlap: 第X章 and 第X条
# before 第X，; 一是 before 一、 (both start with a numeral but differ at the next char).
SECTION_FAMILY_PATTERNS: dict[str, str] = {
    "bian": di_item(_CN, "编", f"(?!{_SPACE}*[，,的])"),
    "zhang": di_item(_CN, "章", f"(?!{_SPACE}*[，,的])"),
    "jie": di_item(_CN, "[节節]", "(?![，,的课])"),
    "bufen": di_item(_CN, "部分", "(?![，,的])"),
    "pian": di_item(_CN, "篇", f"(?=[：:{_SP}])"),
    "tiao": di_item(_CN, "[条條]", f"(?=[{_SP}\n]|$)"),
    "di_comma": di_item(_CN, "[，,、：:]"),
    "cn_shi": cn_word(_CN, "是", after="(?![，,。；：、的否])"),
    "first_next": "(?:" + "|".join(FIRST_NEXT) + ")[，,：:]?",
    "cn_dun": cn_item(_CN, f"(?:、|．(?![{ARABIC_DIGITS}]))"),
    "cn_paren": cn_paren(_CN),
    "paren_arabic": arabic_paren(_DIG),
    "arabic_dun": arabic_item(_DIG, "、"),
    "arabic_dot": arabic_item(_DIG, "[.．]", after=f"(?![{ARABIC_DIGITS}.．%％])"),
    "circled": f"[{CIRCLED}]",
    "latin_dot": latin_item("A-Z", "[.．]", after="(?![A-Za-z0-9])"),
}
FAMILIES: tuple[str, ...] = ("preamble", *SECTION_FAMILY_PATTERNS)

# Families that may also start inside a paragraph, after a sentence or clause end.
INLINE_FAMILIES = frozenset({"cn_shi", "first_next", "di_comma"})
# Families whose lone "1" at a line start is believable; the others need a run.
STRONG_FAMILIES = frozenset(
    {"bian", "zhang", "jie", "bufen", "pian", "tiao", "cn_dun", "cn_paren", "paren_arabic", "arabic_dun", "arabic_dot"}
)
# Document structure (编/章/节/部分/篇): never nests inside an article or a list item.
STRUCTURAL_FAMILIES = frozenset({"bian", "zhang", "jie", "bufen", "pian"})

# Where an inline marker may begin: right after one of these.
MARKER_SEPARATORS = r"\n。；！？：;!?:"
# Characters a marker (or its indentation) can start with: a lookahead on them lets the engine
# skip most sentence ends without trying every family (2x faster).
_FIRST_CHARS = f"[{_SP}第{_CN}首其再最（(0-9０-９{CIRCLED}A-Z]"


@lru_cache(maxsize=1)
def section_matchers() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(marker regex after a separator, marker regex at position 0); named group = family.

    The separator is consumed (group ``sep``, not a lookbehind) so that the regex engine can skip
    ahead to the next separator character quickly; position 0 is tried separately.
    """
    alts = "|".join(f"(?P<{name}>{pat})" for name, pat in SECTION_FAMILY_PATTERNS.items())
    marker = re.compile(rf"(?P<sep>[{MARKER_SEPARATORS}])(?={_FIRST_CHARS}){_SPACE}*(?:{alts})")
    first = re.compile(rf"{_SPACE}*(?:{alts})")
    return marker, first


_ORDINAL_STRIP = "（()）第、．.，,：:是编章节節部分篇条條" + _SP


def ordinal(family: str, marker: str) -> int | None:
    """The number a section marker stands for; 0 means 'any' (最后 closes a first_next run)."""
    if family == "first_next":
        return FIRST_NEXT.get(marker[:2], 0)
    if family == "circled":
        return ord(marker) - 0x245F
    if family == "latin_dot":
        return ord(marker[0]) - 64
    core = marker.strip(_ORDINAL_STRIP)
    if not core:
        return None
    if core[0] in CN_DIGITS or core[0] in CN_UNITS:
        return cn_to_int(core)
    try:
        return int(core)
    except ValueError:
        return None


# -- ingest: does a line start with an outline marker (then it is no title)? ------------------------

_INGEST_CN = numeral_chars(without="千")


@lru_cache(maxsize=1)
def ingest_outline_re() -> re.Pattern[str]:
    """Line-start marker regex of the ingest splitter; groups ``l1`` (一、) ``l2`` (（一）) ``l3`` (1.)."""
    return re.compile(
        "^(?:"
        + "|".join((
            cn_item(_INGEST_CN, "[、.．]", gap=r"\s*", group="l1"),
            cn_paren(_INGEST_CN, gap=r"\s*", group="l2"),
            arabic_item(r"\d{1,3}", "[、.．]", gap=r"\s*", after=r"(?!\d)", group="l3"),
            arabic_paren(r"\d{1,3}", gap=r"\s*"),
            cn_word(_INGEST_CN, "是"),
            di_item(_INGEST_CN + r"\d", "[，,、章节条部分]"),
            latin_item("A-Za-z", "[、.．]", gap=r"\s*"),
            f"[{CIRCLED}{PAREN_NUMBERS}]",
            cn_word(numeral_chars(without="百千零〇两"), "要"),
            FRONT_MATTER_HEADS,
        ))
        + ")"
    )


_INGEST_OUTLINE = ingest_outline_re()


def ingest_outline_level(line: str) -> tuple[str, int] | None:
    """(``l1``/``l2``/``l3``, value) of a line opening with 一、 / （一） / 1.; None otherwise."""
    m = _INGEST_OUTLINE.match(line)  # bound once: ingest asks this for every line of a file
    if m is None:
        return None
    for kind in ("l1", "l2", "l3"):
        v = m.group(kind)
        if v is not None:
            return kind, cn_small_value(v)
    return None


@lru_cache(maxsize=1)
def essay_header_re() -> re.Pattern[str]:
    """``第X篇：title`` / ``篇X title``: the header that starts an essay in a compilation."""
    num = f"[{_INGEST_CN}\\d]+"
    return re.compile(rf"^(?:第{num}篇|篇{num})\s*[:：]?\s*(?P<title>\S.*)$")


# -- normalize: does a paragraph start with a marker (then it is never joined)? --------------------

@lru_cache(maxsize=1)
def normalize_marker_re() -> re.Pattern[str]:
    num = numeral_chars(without="千两")
    return re.compile(
        "(?:"
        + "|".join((
            cn_item(num, "[、.．]"),
            cn_paren(num + r"\d"),
            di_item(num + r"\d", "[章节篇条部款、，,：:]"),
            arabic_item(r"\d{1,2}", "[、．]", after=r"(?!\d)"),
            arabic_item(r"\d{1,2}", r"\.", after=r"(?!\d)"),
            latin_item("A-Z", "[.．、]", after="(?![A-Za-z])"),
            f"[{CIRCLED}]",
            cn_word(num, "是", run=False),
        ))
        + ")"
    )


# -- watermark: is a boilerplate key an outline heading (then it is structure, never boilerplate)? --

@lru_cache(maxsize=1)
def boilerplate_heading_re() -> re.Pattern[str]:
    """On a key (normalized view, digits as 0, no whitespace): a line opening with a marker."""
    return re.compile(
        "(?:"
        + "|".join((
            di_item(_CN + "0", "[章节部分篇编条款项]"),
            cn_item(_CN, "[、.．]"),
            cn_paren(_CN, open_=r"\(?", close=r"\)"),
            arabic_item(r"0+(?:\.0+)*", "[、.)]"),
            arabic_paren("0+", open_=r"\(", close=r"\)"),
        ))
        + ")"
    )
