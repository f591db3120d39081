"""Personal-data detection for Chinese essays: spans to replace with typed placeholders.

Only patterns with a strong signal are redacted (a checksum, a fixed mobile prefix, an e-mail
shape, a keyword next to an ID); a personal name is redacted only where a byline puts it right
next to a redacted ID, and only if it starts with a common surname, so ordinary words stay.
"""

from __future__ import annotations

import re
from typing import Iterable

from corpuspipe.core.edits import Replacement
from corpuspipe.zh.chars import HAN_BMP

KINDS = ("id_card", "mobile", "email", "student_id", "exam_id", "staff_id", "name")

PLACEHOLDER = {
    "id_card": "[身份证号]",
    "mobile": "[手机号]",
    "email": "[邮箱]",
    "student_id": "[学号]",
    "exam_id": "[准考证号]",
    "staff_id": "[工号]",
    "name": "[姓名]",
}

_HAN = HAN_BMP
_SP = "[ \t\u3000\u00a0]"

# (the boundary lookbehind sits after the first character so sre can scan for a digit fast)
_ID18_RE = re.compile(
    r"[1-9](?<![0-9A-Za-z][1-9])\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx](?![0-9A-Za-z])"
)
_ID15_RE = re.compile(r"[1-9](?<![0-9A-Za-z][1-9])\d{7}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}(?![0-9A-Za-z])")
_ID18_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID18_CHECK = "10X98765432"

# the core is matched by regex (fast scan for "1"); the +86 prefix and left boundary in Python
_MOBILE_RE = re.compile(r"1[3-9]\d(?:\d{8}|-\d{4}-\d{4}| \d{4} \d{4})(?![0-9A-Za-z])")
_MOBILE_PREFIX_RE = re.compile(r"(?:\+86|86)[- ]?$")
_ALNUM = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def _mobiles(text: str) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for m in _MOBILE_RE.finditer(text):
        s = m.start()
        pre = _MOBILE_PREFIX_RE.search(text, max(0, s - 4), s)
        if pre:
            s = pre.start()
        if s > 0 and text[s - 1] in _ALNUM:
            continue
        out.append((s, m.end()))
    return out
_EMAIL_RE = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")

_ID_KEYWORDS = {
    "student_id": ("学号", "学籍号"),
    "exam_id": ("准考证号", "准考证", "考生号", "考号"),
    "staff_id": ("工号", "职工号", "员工号", "教工号"),
}
_KW_KIND = {kw: kind for kind, kws in _ID_KEYWORDS.items() for kw in kws}
_KW_ALT = "|".join(sorted(_KW_KIND, key=len, reverse=True))
_IDNUM = r"[A-Za-z]{0,3}\d{4,20}[A-Za-z]?"
# "学号：2009110686" / "学号 2009110686" / "学号为2009110686"
_KW_THEN_ID_RE = re.compile(rf"(?P<kw>{_KW_ALT})(?:{_SP}*[:：]|{_SP}*(?:为|是))?{_SP}*(?P<id>{_IDNUM})(?![0-9A-Za-z])")
# "2009110686（学号）" / "2009110686(学号)"
_ID_THEN_KW_RE = re.compile(rf"(?<![0-9A-Za-z])(?P<id>{_IDNUM}){_SP}*[（(]{_SP}*(?P<kw>{_KW_ALT}){_SP}*[）)]")
_KW_PAREN_RE = re.compile(rf"[（(]{_SP}*(?:{_KW_ALT}){_SP}*[）)]")
_NAME_KW_RE = re.compile(rf"姓{_SP}*名{_SP}*[:：]{_SP}*(?P<name>[{_HAN}]{{2,4}})(?![{_HAN}])")

# The most common Chinese surnames (single and compound); a name candidate must start with one.
_SURNAMES_1 = set(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
    "姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施"
    "文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷"
    "盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷"
    "晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝"
)
_SURNAMES_2 = ("欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒", "夏侯", "令狐")

# Words that look like a name after an ID but are the start of prose ("在长期执政…" is cut off
# by the space; these guard the no-space case and common field labels).
_NOT_NAMES = frozenset({"学院", "大学", "专业", "年级", "班级", "同学", "作者", "指导", "老师", "教师", "方向"})


def id18_valid(s: str) -> bool:
    """GB 11643 checksum of an 18-character resident ID number."""
    if len(s) != 18 or not s[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(s[:17], _ID18_WEIGHTS))
    return _ID18_CHECK[total % 11] == s[17].upper()


def _looks_like_name(cand: str) -> bool:
    if not (2 <= len(cand) <= 4) or cand in _NOT_NAMES:
        return False
    if cand[:2] in _SURNAMES_2:
        return len(cand) >= 3
    return cand[0] in _SURNAMES_1


_NAME_AFTER_RE = re.compile(rf"{_SP}*(?P<name>[{_HAN}]{{2,4}})(?={_SP}|[，,。；;：:、\n]|$)")
_NAME_BEFORE_RE = re.compile(rf"(?:^|(?<=[{_SP[1:-1]}\n，,]))(?P<name>[{_HAN}]{{2,4}}){_SP}*$")
_SENTENCE_PUNCT = re.compile(r"[，。；！？,;!?]")


def _byline_like(text: str, start: int, end: int) -> bool:
    """Is the ID at text[start:end] inside a byline: a line whose part before it has no sentence punctuation."""
    ls = text.rfind("\n", 0, start) + 1
    head = text[ls:start]
    return len(head) <= 80 and not _SENTENCE_PUNCT.search(head)


def find_pii(text: str, kinds: Iterable[str] = KINDS, id_card_15: bool = False) -> list[Replacement]:
    """Spans of personal data in ``text`` as non-overlapping Replacements (rule ``pii_<kind>``)."""
    want = set(kinds)
    spans: list[tuple[int, int, str]] = []  # start, end, kind
    id_spans: list[tuple[int, int]] = []  # keyword IDs that may anchor a byline name

    if "id_card" in want:
        spans += [(m.start(), m.end(), "id_card") for m in _ID18_RE.finditer(text) if id18_valid(m.group())]
        if id_card_15:
            spans += [(m.start(), m.end(), "id_card") for m in _ID15_RE.finditer(text)]
    if "mobile" in want:
        spans += [(s, e, "mobile") for s, e in _mobiles(text)]
    if "email" in want and "@" in text:
        spans += [(m.start(), m.end(), "email") for m in _EMAIL_RE.finditer(text)]
    kw_rxs = []
    if "号" in text or "准考证" in text:
        kw_rxs.append(_KW_THEN_ID_RE)
        if _KW_PAREN_RE.search(text):
            kw_rxs.append(_ID_THEN_KW_RE)
    for rx in kw_rxs:
        for m in rx.finditer(text):
            kind = _KW_KIND[m.group("kw")]
            if kind in want:
                spans.append((m.start(), m.end(), kind))
                id_spans.append((m.start(), m.end()))
    if "name" in want:
        if "姓" in text:
            spans += [(m.start("name"), m.end("name"), "name") for m in _NAME_KW_RE.finditer(text)]
        for s, e in id_spans:
            if not _byline_like(text, s, e):
                continue
            after = _NAME_AFTER_RE.match(text, e)
            if after and _looks_like_name(after.group("name")):
                spans.append((after.start("name"), after.end("name"), "name"))
                continue
            ls = text.rfind("\n", 0, s) + 1
            before = _NAME_BEFORE_RE.search(text, ls, s)
            if before and _looks_like_name(before.group("name")):
                spans.append((before.start("name"), before.end("name"), "name"))

    # resolve overlaps: earliest start wins, then the longest
    spans.sort(key=lambda t: (t[0], -(t[1] - t[0])))
    out: list[Replacement] = []
    last_end = -1
    for s, e, kind in spans:
        if s < last_end:
            continue
        out.append(Replacement(s, e, PLACEHOLDER[kind], f"pii_{kind}"))
        last_end = e
    return out
