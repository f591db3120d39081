"""Repairs inside a line: characters (full-width alnum, invisible characters, Kangxi radicals,
PDF glyphs), ASCII punctuation in Chinese context, and spaces between Han characters.

Each function returns the :class:`~corpuspipe.core.edits.Replacement` list for one text; the
stage (``stage.py``) applies them in its fixed order.  None uses NFKC on the whole text: only the
code points named here change.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Iterable

from corpuspipe.core.edits import Replacement
from corpuspipe.stages.normalize.chars import (
    _CJK_STABLE,
    _CTX,
    _HAN_RE,
    _INVISIBLE_RE,
    _WS,
    _is_han,
    _left_ws,
)
from corpuspipe.stages.normalize.config import NormalizeConfig
from corpuspipe.zh.chars import FULLWIDTH_ALNUM_RANGES, FULLWIDTH_OFFSET, HAN_RANGES, KANGXI_RANGES
from corpuspipe.zh.zhe import prev_char

# -- character repairs ---------------------------------------------------------------------------

_FW_ALNUM_RE = re.compile("[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in FULLWIDTH_ALNUM_RANGES) + "]+")
_FW_ALNUM_TABLE = {cp: cp - FULLWIDTH_OFFSET for lo, hi in FULLWIDTH_ALNUM_RANGES for cp in range(lo, hi + 1)}


def _kangxi_table() -> dict[int, str]:
    """Kangxi radicals / CJK radical supplement -> the ideograph NFKC names (only these code points)."""
    out: dict[int, str] = {}
    for cp in (c for lo, hi in KANGXI_RANGES for c in range(lo, hi + 1)):
        ch = chr(cp)
        n = unicodedata.normalize("NFKC", ch)
        if n != ch and len(n) == 1 and _HAN_RE.match(n):
            out[cp] = n
    return out


_KANGXI_TABLE = _kangxi_table()
_KANGXI_RE = re.compile("[" + "".join(chr(c) for c in sorted(_KANGXI_TABLE)) + "]+")
# PDF font-mapping glyphs: only in contexts where the intended character is certain (Simplified
# and Traditional context chars: this runs before t2s; the context char may sit across
# whitespace that a later step deletes).
_PDF_CONTEXT = ((re.compile("臵"), frozenset("布位设配处安放购装倒搁闲佈設處購裝擱閑閒"), "置"),)


def _char_repairs(text: str, cfg: NormalizeConfig) -> list[Replacement]:
    """Full-width digits and Latin letters -> ASCII (``１９５５年`` -> ``1955年``), never NFKC."""
    if not cfg.fix_fullwidth_alnum:
        return []
    return [Replacement(m.start(), m.end(), m.group().translate(_FW_ALNUM_TABLE), "fullwidth_alnum") for m in _FW_ALNUM_RE.finditer(text)]


def _pre_repairs(text: str, cfg: NormalizeConfig) -> list[Replacement]:
    """Invisible characters go; Kangxi radicals and PDF glyphs become the intended ideograph."""
    reps = [Replacement(m.start(), m.end(), "", "invisible") for m in _INVISIBLE_RE.finditer(text)]
    if cfg.fix_pdf_glyphs:
        reps += [Replacement(m.start(), m.end(), m.group().translate(_KANGXI_TABLE), "pdf_glyph") for m in _KANGXI_RE.finditer(text)]
        for rx, ctx, repl in _PDF_CONTEXT:
            reps += [Replacement(m.start(), m.end(), repl, "pdf_glyph") for m in rx.finditer(text) if prev_char(text, m.start()) in ctx]
    return reps

# -- punctuation and spacing inside lines ----------------------------------------------------------

_ASCII_TO_FW = str.maketrans({",": "，", ";": "；", ":": "：", "?": "？", "!": "！", "(": "（", ")": "）"})
_PUNCT_RUN_RE = re.compile(f"[{_WS}]*(?P<run>[,;:?!](?:[{_WS}]*[,;:?!])*)[{_WS}]*")
# the same runs found from their first mark (leading whitespace added back by _left_ws): 104 -> ~400 MB/s
_PUNCT_CORE_RE = re.compile(f"[,;:?!](?:[{_WS}]*[,;:?!])*")
_WS_TAIL_RE = re.compile(f"[{_WS}]*")
_PAREN_RE = re.compile(r"[(（](?P<body>[^()（）\n]{0,100})[)）]")
_SPACE_NEIGHBORS = frozenset(_CJK_STABLE + "，；：？！（）")
_ENTITY_HEAD = re.compile(r"&#?[A-Za-z0-9]{1,32}$")  # text before a ';' that ends an HTML entity (&nbsp;, &#0;)


def _is_ctx(ch: str) -> bool:
    return bool(ch) and (ch in _CTX or _is_han(ch))


def _neighbor_left(text: str, i: int) -> str:
    while i > 0 and text[i - 1] in _WS:
        i -= 1
    return text[i - 1] if i > 0 and text[i - 1] != "\n" else ""


def _neighbor_right(text: str, i: int) -> str:
    n = len(text)
    while i < n and text[i] in _WS:
        i += 1
    return text[i] if i < n and text[i] != "\n" else ""


def _punct_runs(text: str) -> Iterable[tuple[int, int, str, int]]:
    """(start, run start, run, end) of each ``_PUNCT_RUN_RE.finditer(text)`` match, found faster."""
    prev = 0
    for m in _PUNCT_CORE_RE.finditer(text):
        rs = m.start()
        if rs < prev:
            continue
        end = _WS_TAIL_RE.match(text, m.end()).end()
        yield _left_ws(text, rs, prev), rs, m.group(), end
        prev = end


def _punctuation(text: str, keep_qmark: bool = False) -> list[Replacement]:
    """ASCII , ; : ? ! ( ) next to Chinese become full-width; numbers, URLs, Latin keep theirs.

    ``keep_qmark``: the text has encoding damage (lossy re-encode ``?``): runs holding a ``?`` stay
    as they are, flagged, never dressed up as full-width question marks."""
    reps: list[Replacement] = []
    if not any(c in text for c in ",;:?!()"):
        return reps
    for m in _PAREN_RE.finditer(text):
        o, c = m.start(), m.end() - 1
        if text[o] == "（" and text[c] == "）":
            continue
        if (
            _HAN_RE.search(m.group("body"))
            or _is_ctx(_neighbor_left(text, o))
            or _is_ctx(_neighbor_right(text, c + 1))
            or text[o] == "（"
            or text[c] == "）"
        ):
            if text[o] == "(":
                reps.append(Replacement(o, o + 1, "（", "punct"))
            if text[c] == ")":
                reps.append(Replacement(c, c + 1, "）", "punct"))
    for start, rs, run, end in _punct_runs(text):
        left = _neighbor_left(text, start)
        right = _neighbor_right(text, end)
        if not (_is_ctx(left) or _is_ctx(right)):
            continue
        if run[0] == "?" and rs + 1 < len(text) and "\x40" <= text[rs + 1] <= "\x7e" and _HAN_RE.match(left or " "):
            continue  # GBK mojibake (lost lead byte): flagged by ingest, left as is
        if keep_qmark and "?" in run:
            continue
        if run[0] == ";" and _ENTITY_HEAD.search(text, max(0, rs - 40), rs) is not None:
            continue  # the end of an HTML entity ingest left (flagged html_residue): never half-converted
        body = "".join(ch for ch in run if ch not in _WS).translate(_ASCII_TO_FW)
        reps.append(Replacement(start, end, body, "punct"))
    reps.sort(key=lambda r: r.start)
    return reps


def _spacing(text: str) -> list[Replacement]:
    """Spaces between two Han characters (or CJK punctuation) go: ``全面 加强`` -> ``全面加强``.

    One regex finds exactly the whitespace runs with such a neighbour on both sides (a run is
    maximal because no neighbour is whitespace); it starts with the whitespace class, so sre skips
    to the runs.  It replaced a Python check of every run's neighbours (0.100 -> 0.036 CPU s over
    the 14.5 MB crawl slice's texts before and after pass 0; same replacements)."""
    return [Replacement(m.start(), m.end(), "", "han_space") for m in _HAN_SPACE_RE.finditer(text)]


_SPACE_NEIGHBOR_CLASS = "".join(re.escape(c) for c in sorted(_SPACE_NEIGHBORS)) + "".join(
    f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" for lo, hi in HAN_RANGES)  # what _is_han says, and the punctuation
assert not set(_WS) & (_SPACE_NEIGHBORS | {c for c in _WS if _is_han(c)})
_HAN_SPACE_RE = re.compile(f"[{_WS}](?<=[{_SPACE_NEIGHBOR_CLASS}][{_WS}])[{_WS}]*(?=[{_SPACE_NEIGHBOR_CLASS}])")

