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

from corpuspipe.core.edits import Replacement
from corpuspipe.zh.chars import HAN_BMP

_HAN = HAN_BMP
_PUA = r"\ue000-\uf8ff"


# UTF-8 bytes of Chinese text: leads E2 (quotes, dashes), E3-E9 (CJK), EF (full-width forms).
_UTF8_LEADS = (0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEF)
_UTF8_CJK_SEQ = re.compile(rb"(?:[\xe2-\xe9\xef][\x80-\xbf]{2})+")


@lru_cache(maxsize=1)
def _mojibake_run() -> tuple[re.Pattern[str], re.Pattern[str], frozenset[str]]:
    """Runs of GBK characters whose two bytes are both UTF-8 lead/continuation bytes, holding
    at least one character outside GB2312.

    Clean Simplified text is full of short runs of such characters (、构建), but rarely of
    GBK-only ones, while 98.9% of mojibake phrases (measured: 4,379 random 2-8 character
    phrases of the gov reports, UTF-8 read as GBK) contain one.  Anchoring on it keeps the
    scan cheap; the rare run without one is left alone (never a wrong repair).
    """
    utf8_bytes = list(range(0x80, 0xC0)) + list(_UTF8_LEADS)
    chars: set[str] = set()
    for b1 in utf8_bytes:
        for b2 in utf8_bytes:
            try:
                chars.add(bytes((b1, b2)).decode("gbk"))
            except UnicodeDecodeError:
                continue
    strong = {c for c in chars if c.encode("gb2312", errors="replace") == b"?"}
    cls = "".join(re.escape(c) for c in sorted(chars))
    strong_cls = "".join(re.escape(c) for c in sorted(strong))
    return re.compile(f"[{strong_cls}]"), re.compile(f"[{cls}]*"), frozenset(chars)


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
    gate, run_chars, chars = _mojibake_run()
    end = 0
    # The candidate runs are the maximal runs of GBK-from-UTF-8-bytes characters that hold a
    # strong one (what ``finditer`` of ``[cls]*[strong][cls]*`` gives): grown from each strong
    # character found by the gate, instead of a scan whose leading ``[cls]*`` sre tries at every
    # position of the text (Simplified text is full of short runs of such characters).
    for hit in gate.finditer(text):
        q = hit.start()
        if q < end:
            continue  # inside the run just taken
        start = q
        while start > end and text[start - 1] in chars:
            start -= 1
        end = run_chars.match(text, q).end()
        if end - start < 3:
            continue
        found = _repair_run(text[start:end])
        if found is not None:
            s, e, fixed = found
            out.append(Replacement(start + s, start + e, fixed, rule))
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
    f"[{_HAN}]\\?(?:[\\x21-\\x3e\\x40-\\x7e](?=[{_HAN}{_PUA}])|(?=[{_PUA}]))"
)
_PRIVATE_USE = re.compile(f"[{_PUA}]")
_REPLACEMENT = "\ufffd"
_STRANGE_SHARE = 0.02  # of non-ASCII characters outside GB2312 and Big5 (real prose: ~0)


def _count_unencodable(text: str, codec: str) -> int:
    return text.encode(codec, errors="replace").count(b"?") - text.count("?")


def mojibake_evidence(text: str) -> dict[str, int]:
    """Counts of unrecoverable-mojibake signals; empty when the text looks clean.

    ``lost_lead``: '?' sandwiched between Han and an orphaned trail byte or private-use char.
    ``private_use``: private-use code points (no real font draws them in prose).
    ``outside_gb2312``: in a Simplified document (>= 10% of its non-ASCII characters are not
    in Big5), more than 2% of non-ASCII characters that neither GB2312 nor Big5 can encode
    (real prose of either script: ~0); ``garbled_lines``: lines of such a document with at
    least 3 (and 3%) characters that neither GB2312 nor Big5 encode (one mis-decoded paragraph).

    U+FFFD replacement characters are *not* mojibake evidence: they are bytes a decoder dropped
    (a cut UTF-8 sequence, a lossy re-encode), flagged ``encoding_damage`` by the normalize stage's
    quality flags.  Counting them here made ``mojibake`` fire on 2/2 such files of
    ``bench/eval_boilerplate.py`` with no mis-decoded character in them (precision 0/2), and as
    characters outside GB2312 they pushed a damaged Simplified text over the share checks below.
    They are blanked before any count.
    """
    ev: dict[str, int] = {}
    if _REPLACEMENT in text:
        text = text.replace(_REPLACEMENT, " ")  # a space: never joins two neighbours into a pattern
    if "?" in text:
        lost = len(_LOST_LEAD.findall(text))
        if lost:
            ev["lost_lead"] = lost
    if _PRIVATE_USE.search(text) is not None:
        ev["private_use"] = len(_PRIVATE_USE.findall(text))
    # Shares are over non-ASCII characters (Han plus CJK punctuation), counted by C codecs.
    non_ascii = _non_ascii(text)
    if non_ascii < 50:
        return ev
    not_gb2312 = _count_unencodable(text, "gb2312")
    if not_gb2312 < 3 or _count_unencodable(text, "big5") < 0.1 * non_ascii:
        return ev  # clean, or not a Simplified document
    # Counted are characters neither GB2312 nor Big5 encode: a Traditional page with a Simplified
    # site header (論聯合政府 under 文章整理自…) is outside GB2312 by 10 characters, all of them good
    # Big5, and was flagged; the 1954 report's Big5 bytes read as GBK put 222 of 3,077 (7.2 %)
    # characters outside both (896 outside GB2312 alone).
    strange = _outside_gb2312_and_big5(text)
    if strange >= 3 and strange > _STRANGE_SHARE * non_ascii:
        ev["outside_gb2312"] = strange
        return ev
    # A single garbled paragraph inside clean Simplified text.
    garbled = 0
    for line in text.split("\n"):
        n = _non_ascii(line)
        bad = _outside_gb2312_and_big5(line) if n >= 20 else 0
        if bad >= 3 and bad > 0.03 * n:
            garbled += 1
    if garbled:
        ev["garbled_lines"] = garbled
    return ev


_CHAR_REF = re.compile(r"&#(\d+);")


def _outside_gb2312_and_big5(text: str) -> int:
    """Characters neither GB2312 nor Big5 can encode: not Simplified, not Traditional prose.

    Mixed-script lines (a Simplified report quoting Traditional forms) score 0; GBK or Big5
    bytes decoded with the other codec land on such characters (篶竡㎝).
    """
    refs = _CHAR_REF.findall(text.encode("gb2312", errors="xmlcharrefreplace").decode("ascii", errors="replace"))
    chars = "".join(chr(cp) for cp in map(int, refs) if not _is_ordinary_symbol(cp))
    return _count_unencodable(chars, "big5") if chars else 0


def _is_ordinary_symbol(cp: int) -> bool:
    """Latin-1, general punctuation, CJK symbols (incl. 〇), full-width forms: never evidence."""
    return cp < 0x100 or 0x2000 <= cp <= 0x206F or 0x3000 <= cp <= 0x303F or 0xFF00 <= cp <= 0xFFEF


def _non_ascii(text: str) -> int:
    return len(text) - len(text.encode("ascii", errors="ignore"))
