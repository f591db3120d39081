"""Mojibake handling for ingestion: repair what is provably reversible, flag what is not.

Reversible: UTF-8 bytes that were decoded as GBK (``鍏ㄩ潰鍔犲己`` for ``全面加强``).  Every
character of such text is a GBK pair built from UTF-8 lead/continuation bytes, so candidate
runs are found with one compiled character class, and a run is repaired only when
``run.encode("gb18030").decode("utf-8")`` succeeds strictly and yields CJK text.

Unrecoverable: GBK text with characters outside GB2312 decoded as GB2312 (seed 001's
``?!稕Q定》``, ``?A不牢``): the lead byte became ``?`` and the trail byte survived as ASCII
or landed in the private use area.  Those bytes are gone, so the essay is only flagged.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .edits import Replacement

_HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_PUA = r"\ue000-\uf8ff"


# UTF-8 bytes of Chinese text: leads E2 (quotes, dashes), E3-E9 (CJK), EF (full-width forms).
_UTF8_LEADS = (0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEF)
_UTF8_CJK_SEQ = re.compile(rb"(?:[\xe2-\xe9\xef][\x80-\xbf]{2})+")


@lru_cache(maxsize=1)
def _mojibake_run() -> re.Pattern[str]:
    """Runs of >= 3 GBK characters whose two bytes are both UTF-8 lead/continuation bytes."""
    utf8_bytes = list(range(0x80, 0xC0)) + list(_UTF8_LEADS)
    chars: set[str] = set()
    for b1 in utf8_bytes:
        for b2 in utf8_bytes:
            try:
                chars.add(bytes((b1, b2)).decode("gbk"))
            except UnicodeDecodeError:
                continue
    cls = "".join(re.escape(c) for c in sorted(chars))
    return re.compile(f"[{cls}]{{3,}}")


_REPAIRED_OK = re.compile(f"[{_HAN}\u3000-\u303f\uff00-\uffef\u2010-\u2027]+")


def _repair_run(run: str) -> tuple[int, int, str] | None:
    """(start, end, fixed) in run characters for the aligned part that is provably UTF-8."""
    data = run.encode("gb18030")  # every char of a run is one 2-byte GBK pair
    if len(data) != 2 * len(run):
        return None
    for m in _UTF8_CJK_SEQ.finditer(data):
        ms, me = m.span()
        for start in (ms, ms + 3, ms + 6):
            if start % 2:
                continue
            for end in (me, me - 3, me - 6):
                if end % 2 or end - start < 6:
                    continue
                try:
                    fixed = data[start:end].decode("utf-8")
                except UnicodeDecodeError:
                    continue
                if _REPAIRED_OK.fullmatch(fixed):
                    return start // 2, end // 2, fixed
    return None


def find_mojibake_repairs(text: str, rule: str = "mojibake_repair") -> list[Replacement]:
    """Replacements for every run that provably is UTF-8 read as GBK."""
    out: list[Replacement] = []
    for m in _mojibake_run().finditer(text):
        found = _repair_run(m.group())
        if found is not None:
            s, e, fixed = found
            out.append(Replacement(m.start() + s, m.start() + e, fixed, rule))
    return out


def repair_string(text: str) -> str:
    """The same repair for metadata strings (titles) that are not tracked."""
    reps = find_mojibake_repairs(text)
    for r in reversed(reps):
        text = text[: r.start] + r.after + text[r.end :]
    return text


# A '?' that swallowed a lead byte: between Han characters with the orphaned trail byte
# (ASCII 0x21-0x7e) or a private-use character next to it.  A bare "呢?我" is a real question.
_LOST_LEAD = re.compile(
    f"(?<=[{_HAN}])\\?(?:[\\x21-\\x3e\\x40-\\x7e](?=[{_HAN}{_PUA}])|(?=[{_PUA}]))"
)
_PRIVATE_USE = re.compile(f"[{_PUA}]")
_NOT_HAN = re.compile(f"[^{_HAN}]+")


def _count_unencodable(text: str, codec: str) -> int:
    return text.encode(codec, errors="replace").count(b"?") - text.count("?")


def mojibake_evidence(text: str) -> dict[str, int]:
    """Counts of unrecoverable-mojibake signals; empty when the text looks clean.

    ``lost_lead``: '?' sandwiched between Han and an orphaned trail byte or private-use char.
    ``private_use``: private-use code points (no real font draws them in prose).
    ``outside_gb2312``: in a Simplified document, a share above 5% of Han characters that
    GB2312 cannot encode (real Simplified prose stays well below 1%).
    """
    ev: dict[str, int] = {}
    if "?" in text:
        lost = len(_LOST_LEAD.findall(text))
        if lost:
            ev["lost_lead"] = lost
    if _PRIVATE_USE.search(text) is not None:
        ev["private_use"] = len(_PRIVATE_USE.findall(text))
    # Cheap bound first: characters GB2312 cannot encode, Han or not.
    if _count_unencodable(text, "gb2312") <= 0.05 * 50:
        return ev
    han_text = _NOT_HAN.sub("", text)
    han = len(han_text)
    if han >= 50:
        not_big5 = han_text.encode("big5", errors="replace").count(b"?")
        not_gb2312 = han_text.encode("gb2312", errors="replace").count(b"?")
        simplified_like = not_big5 >= 0.1 * han
        if simplified_like and not_gb2312 > 0.05 * han:
            ev["outside_gb2312"] = not_gb2312
    return ev
