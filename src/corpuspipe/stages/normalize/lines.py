"""Line structure: whitespace around lines, blank-line runs, and lines broken mid-sentence.

PDF extraction breaks a paragraph into lines; a line that does not end a sentence is joined to the
next one (dropping a page number caught between them) only when its paragraph is already running
text, so titles and headings keep their own lines.  Decisions look only at what later steps cannot
change (the class of a line's last character, sentence ends, commas, Han counts), which keeps
normalizing twice equal to normalizing once.
"""

from __future__ import annotations

import re
from typing import Iterable

import numpy as np

from corpuspipe.core.edits import Replacement
from corpuspipe.stages.normalize.chars import _F_HAN, _FLAGS, _WS, _codepoints, _is_han, _left_ws
from corpuspipe.stages.normalize.config import NormalizeConfig
from corpuspipe.zh.chars import SENTENCE_END
from corpuspipe.zh.outline import normalize_marker_re

# -- line structure ------------------------------------------------------------------------------

# a gap between two lines' content: trailing ws, newline(s), blank lines, indentation
_GAP_RE = re.compile(f"[{_WS}]*\n(?:[{_WS}\r]*\n)*[{_WS}]*")
# The same gaps found from their first newline: sre only fast-scans for a pattern that starts
# with a character (class); a leading ``[ws]*`` makes it try every position (145 MB/s -> ~600).
_GAP_CORE_RE = re.compile(f"\n(?:[{_WS}\r]*\n)*[{_WS}]*")


def _gaps(text: str, lo: int, hi: int) -> Iterable[tuple[int, int]]:
    """(start, end) of each ``_GAP_RE.finditer(text, lo, hi)`` match, scanned from the newline."""
    prev = lo
    for m in _GAP_CORE_RE.finditer(text, lo, hi):
        yield _left_ws(text, m.start(), prev), m.end()
        prev = m.end()
# a line ends a sentence/paragraph if its last char is one of these (ASCII and full-width alike,
# so later punctuation repair cannot change the decision)
_FINAL = frozenset("。！？!?；;：:…”\"’』」）)】]》>.")
# a paragraph opening with an outline marker is a heading, never joined (zh.outline, normalize's reading)
_MARKER_RE = normalize_marker_re()
_PAGE_NUM_RE = re.compile(rf"[{_WS}]+\d{{1,4}}$")  # at a line end, after Han or a comma (checked)
_STRIP = _WS + "\r\n"


_SENT_END_RE = re.compile(f"[{SENTENCE_END}]")
_COMMA_RE = re.compile("[，,]")
# a line starting with one of these continues the previous line (Wikisource link breaks: "…——\n憲法\n，接着")
_CONTINUATION = frozenset("，,、。；;：:？?！!）)」』”…")


def _is_running_text(text: str, start: int, end: int, cfg: NormalizeConfig) -> bool:
    """Is text[start:end] (a paragraph so far) prose rather than a title or heading?

    Prose if it already holds a sentence end; a paragraph starting with a heading marker
    (``D.加强……的能力``, ``一、…``) counts only then; an unmarked one also if it holds a comma
    (titles rarely do) or has at least ``join_min_han`` Han characters.
    """
    if _SENT_END_RE.search(text, start, end):
        return True
    if _MARKER_RE.match(text, start):
        return False
    if _COMMA_RE.search(text, start, end):  # titles rarely hold a comma, running text does
        return True
    return int(np.count_nonzero(_FLAGS[_codepoints(text[start:end])] & _F_HAN)) >= cfg.join_min_han


def _line_structure(text: str, cfg: NormalizeConfig) -> list[Replacement]:
    """Whitespace around lines, blank-line runs, and rejoining of lines broken mid-sentence."""
    reps: list[Replacement] = []
    n = len(text)
    lead = n - len(text.lstrip(_STRIP))
    if lead:
        reps.append(Replacement(0, lead, "", "whitespace"))
        if lead == n:
            return reps
    end_content = len(text.rstrip(_STRIP))
    para_start = lead  # start of the current (possibly joined) paragraph
    for gs, ge in _gaps(text, lead, end_content):
        if ge >= end_content:
            continue
        # Blank lines between do not block a join: the output has none left, so a decision that
        # depended on them would change when normalizing again.
        joined = False
        if cfg.join_broken_lines and text[ge] in _CONTINUATION:
            joined = True
            reps.append(Replacement(gs, ge, "", "join_lines"))
        elif cfg.join_broken_lines and text[gs - 1] not in _FINAL:
            cut = gs
            pn = _PAGE_NUM_RE.search(text, max(para_start, gs - 12), gs)
            if pn:
                before = text[pn.start() - 1] if pn.start() > para_start else ""
                if before and (before in "，、," or _is_han(before)) and _is_han(text[ge]):
                    cut = pn.start()
                else:
                    pn = None
            last = text[cut - 1] if cut > para_start else ""
            if (
                last
                and last not in _FINAL
                and not _MARKER_RE.match(text, ge)
                and _is_running_text(text, para_start, cut, cfg)
            ):
                joined = True
                reps.append(Replacement(cut, ge, "", "page_number" if pn else "join_lines"))
        if not joined:
            if ge - gs != 1:
                reps.append(Replacement(gs, ge, "\n", "whitespace"))
            para_start = ge
    if end_content < n:
        reps.append(Replacement(end_content, n, "", "whitespace"))
    return reps


