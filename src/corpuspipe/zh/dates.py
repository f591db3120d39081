"""Dated statements: lines that date or number the document itself, never a site's page stamp.

A law opens with its adoption, promulgation and effective-date lines (``2000年9月14日 最高人民法院审判
委员会第1130次会议通过``, ``2000年9月22日 最高人民法院公告公布``, ``2000年9月28日 施行``); an official
document closes with its date (``二〇二四年三月五日``); an amended one carries its history
(``（2001年2月6日…通过，根据2020年12月23日…修正）``).  Folded to boilerplate keys (digits as 0) such
lines recur in every law of a folder, at the page top, exactly where a site's header sits: the
boilerplate detector removed 82 of the 107 such lines of the 55 laws released as one folder.
A site's lines with changing digits look different in the words and in the digits:

* **the words**: a page stamp is labelled (``发布时间：``, ``来源：``, ``浏览：…次``) or names the site
  (``[好范文网] 2019-05-06 工作报告频道``); a dated statement is a date and then an organ and an act
  (通过, 公布, 施行, 批准, 修正 ...), or the date alone;
* **the digits**: a statement's date is written 年月日 (Arabic or Chinese numerals); a page stamp's
  is ISO (``2019-05-06``) or carries a clock time (``10:30``), and counters are bare numbers
  (``第1页 共3页``, ``浏览2345次``).

A document number (``法释〔2022〕10号``, ``劳社部发[2008]3号``) is the same kind of line: one shape,
other digits in every document.

How the digits vary convicts nothing: identical digits are genuine content too (the 2020-12-23
amendment line closes the history of 20 of the 55 laws).
"""

from __future__ import annotations

import re

from corpuspipe.zh.prose import SITE_WORDS

_NUM = r"(?:\d{1,4}|[一二三四五六七八九十〇零○]{1,4})"
DATE = rf"{_NUM}年{_NUM}月{_NUM}日"
# Acts a dated line states about its document; 发布 alone is also what a site's stamp says
# (2019年05月06日 发布), so it counts only after an organ (1986年2月18日 国务院发布).
_ACT = re.compile(r"通过|公布|施行|实施|批准|修订|修正|废止|颁布|生效|印发|签署|签发|核准|备案|会议")
_STATEMENT = re.compile(rf"^[（(]?(?:根据)?{DATE}(?P<rest>.*?)[）)]?$")
# 法释〔2022〕10号 / 劳社部发[2008]3号 (〔〕 fold to [] in a key, a digit run to one 0)
_DOC_NUMBER = re.compile(r"^[\u4e00-\u9fff]{1,10}[〔\[［【(（]\d{1,4}[〕\]］】)）]第?\d{1,5}号$")
_NOT_STATEMENT = re.compile(
    r"[:：。！？!?]|\d{1,2}:\d{2}|[A-Za-z]|[网站]|" + "|".join(map(re.escape, SITE_WORDS))
)


def is_dated_statement(line: str) -> bool:
    """True for a line that is a 年月日 date alone, a date and an act of the document (with its
    organ) with no label, clock time, Latin letters, sentence end or word about a site, or a
    document number.

    ``line`` may be a boilerplate key (script, width and digits folded, spaces removed)."""
    s = "".join(line.split())
    m = _STATEMENT.match(s)
    if m is None:
        return _DOC_NUMBER.match(s) is not None
    rest = m.group("rest")
    if not rest:
        return True
    if _NOT_STATEMENT.search(rest):
        return False
    if _ACT.search(rest):
        return True
    return rest.endswith("发布") and len(rest) > len("发布")
