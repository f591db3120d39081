"""Chinese numerals <-> int: the one place that knows 一百零一 is 101.

Outline markers number their items with Chinese numerals (一、 （十二） 第一百零三条 一是), so the
sectioner needs their values to check that markers form runs of consecutive ordinals, and the
ingest splitter needs them to see an outline restart at 一 (evidence of a new essay).  Before
issue 11 each stage carried its own digit table and parser; they live here now.

Two readings, kept apart on purpose (the stages that use them depend on their exact answers):

* :func:`cn_to_int` -- strict, up to the thousands: 一百零一 -> 101, 十二 -> 12, 两千 -> 2000;
  ``None`` for anything that is not one numeral (一二 is a list, not twelve; 十十 is read as 20,
  as the sectioner always did).  Used for ordinals of outline markers.
* :func:`cn_small_value` -- the ingest splitter's lenient reading of small numbers (一..九十九 and
  Arabic digit strings), ``0`` when it does not understand.  The splitter only ever asks "is it
  1?" and "is it >= 2?", so its quirks never mattered there and are kept bit for bit rather than
  silently changing where essays split: 一百 -> 0 (strict: 100), 〇一 -> 0 (strict: 1),
  二十一二 -> 20 (strict: None), 百 -> 0 (strict: 100).

Measured (``bench/zh_equivalence.py`` corpus: seeds, 88 reports, 55 laws, 160 essays): the 4,509
markers the sectioner keeps stand for 1..114 (0 only for 最后), so "up to the thousands" is ample;
``cn_to_int`` is cached because an essay repeats its markers' numerals.
"""

from __future__ import annotations

from functools import lru_cache

__all__ = [
    "CN_DIGITS",
    "CN_UNITS",
    "CN_NUMERAL_CHARS",
    "numeral_chars",
    "cn_to_int",
    "cn_small_value",
    "int_to_cn",
]

# Digit characters and their values (两 is the counting form of 2; 〇/零 are placeholders).
CN_DIGITS: dict[str, int] = {
    "零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}
CN_UNITS: dict[str, int] = {"十": 10, "百": 100, "千": 1000}

# Every character a numeral can hold, in the order the regex classes have always listed them.
CN_NUMERAL_CHARS = "一二三四五六七八九十百千零〇两"

# The splitter's digit table: 零..九 plus 〇 and 两 (no units).
_SMALL_VALUE: dict[str, int] = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"〇": 0, "两": 2}


def numeral_chars(without: str = "") -> str:
    """:data:`CN_NUMERAL_CHARS` minus ``without``, order kept (the body of a regex class).

    The stages accept different numeral sets in their markers (see :mod:`corpuspipe.zh.outline`):
    ingest leaves out 千, the normalizer 千 and 两; those are parameters, not copies.
    """
    return "".join(c for c in CN_NUMERAL_CHARS if c not in without)


@lru_cache(maxsize=4096)
def cn_to_int(s: str) -> int | None:
    """Value of a Chinese numeral up to the thousands (一百零一 -> 101), None if malformed."""
    total, digit = 0, None
    for ch in s:
        if ch in "零〇":
            continue  # placeholder in 一百零一
        if ch in CN_DIGITS:
            if digit is not None:  # two digits in a row: only "一二" style lists, not a numeral
                return None
            digit = CN_DIGITS[ch]
        elif ch in CN_UNITS:
            total += (1 if digit is None else digit) * CN_UNITS[ch]
            digit = None
        else:
            return None
    total += digit or 0
    return total or None


def cn_small_value(s: str) -> int:
    """The ingest splitter's reading of a small numeral (一..九十九) or digit string; 0 if not understood.

    Lenient by history (see the module docstring): the part before the first 十 counts as its
    tens digit only when it is one known digit (else 1), the part after only when it is one digit
    (else 0).
    """
    if s.isdigit():
        return int(s)
    if "十" in s:
        tens, _, ones = s.partition("十")
        return (_SMALL_VALUE.get(tens, 1) if tens else 1) * 10 + (_SMALL_VALUE.get(ones, 0) if ones else 0)
    return _SMALL_VALUE.get(s, 0) if len(s) == 1 else 0


def int_to_cn(n: int) -> str:
    """Canonical numeral of 1..9999 as documents write it: 十一 (not 一十一), 一百零一, 一千零一十.

    The inverse of :func:`cn_to_int` (round trip tested for 1..9999); used by tests and benches
    that generate markers, never to rewrite text.
    """
    if not 1 <= n <= 9999:
        raise ValueError(f"int_to_cn covers 1..9999, got {n}")
    digits = "零一二三四五六七八九"
    out: list[str] = []
    pending_zero = False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        d, n = divmod(n, value)
        if d == 0:
            pending_zero = bool(out)
            continue
        if pending_zero:
            out.append("零")
            pending_zero = False
        if not (unit == "十" and d == 1 and not out):
            out.append(digits[d])
        out.append(unit)
    return "".join(out)
