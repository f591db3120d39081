"""Traditional -> Simplified, gated per sentence, and the edits that record it.

Only the *sentences* holding a t2s trigger character meet the converter (t2s is local at
。！？；!?\n: no dictionary phrase holds one, see :data:`CUT_CHARS`), and the converter itself
(:class:`corpuspipe.zh.opencc.FastConverter`) only runs the slow engine on the rare character
runs that hold a phrase key.  Gating per document was not enough: on a crawl-shaped corpus a
Simplified essay with one stray Traditional character sent the whole essay through the converter
(stage 12.5 -> 1.2 MB/s).  Measured limits (``bench/profile_normalize.py``): the sentence gate
~140 MB/s, the fast converter on whole essays ~35 MB/s, the plain engine 2.4-2.8 MB/s.

A conversion becomes edits (:func:`_t2s_replacements`): one replacement per changed stretch of a
Han run when the length is kept, a line-by-line diff otherwise.
"""

from __future__ import annotations

import difflib

import numpy as np

from corpuspipe.core.edits import Replacement
from corpuspipe.stages.normalize.chars import (
    _F_HAN,
    _F_PHRASE,
    _F_TRIG,
    _FLAGS,
    _PHRASE_KEY_RE,
    _PHRASE_ONLY,
    _codepoints,
)
from corpuspipe.zh import opencc as _opencc
from corpuspipe.zh.zhe import zhe_spans

_T2S = _opencc.fast_converter("t2s")


def _needs_t2s_flags(text: str, fl: np.ndarray) -> bool:
    if (fl & _F_TRIG).any():
        return True
    for p in np.flatnonzero(fl & _F_PHRASE).tolist():
        ch = text[p]
        for k in _PHRASE_ONLY[ch]:
            i = k.find(ch)
            while i >= 0:
                if text.startswith(k, p - i) and p - i >= 0:
                    return True
                i = k.find(ch, i + 1)
    return False


def needs_t2s(text: str) -> bool:
    """True if t2s could change ``text`` (False guarantees t2s(text) == text)."""
    return bool(text) and _needs_t2s_flags(text, _FLAGS[_codepoints(text)])


# -- per-sentence gating -------------------------------------------------------------------------
#
# t2s is local at these characters: no key or value of any dictionary in the t2s chain holds
# one (checked below against the dictionaries actually loaded; a character that ever appears in
# one is dropped from the set), so no phrase match can cross them, and the engine also splits
# its input at each of them.  Hence t2s(a + c + b) == t2s(a) + c + t2s(b) for a cut c, and a
# sentence without trigger characters is its own t2s: converting only the sentences that hold a
# trigger gives the same text as converting the whole essay.
_CUT_CANDIDATES = "。！？；!?\n"


def _cut_chars() -> str:
    used: set[str] = set()
    for step in _opencc.converter("t2s")._dict_chain_data:
        for _mx, _mn, mapping in step:
            for k, v in mapping.items():
                used.update(k)
                used.update(v)
    return "".join(c for c in _CUT_CANDIDATES if c not in used)


CUT_CHARS = _cut_chars()
_CUT = np.zeros(0x110000, dtype=bool)
_CUT[[ord(c) for c in CUT_CHARS]] = True
# Selected sentences closer than this are converted as one block (the text between them is its
# own t2s): one converter call per block costs ~15 us, so mostly-Traditional text becomes a few
# large blocks instead of thousands of sentences.
_BLOCK_GAP = 256


def _t2s_blocks(text: str, cps: np.ndarray, fl: np.ndarray) -> list[tuple[int, int]]:
    """Spans of ``text`` to convert: runs of sentences holding a t2s trigger (sorted, disjoint)."""
    trig = np.flatnonzero(fl & _F_TRIG)
    phrase = np.flatnonzero(fl & _F_PHRASE)
    if trig.size == 0 and phrase.size == 0:
        return []
    n = len(text)
    cuts = np.flatnonzero(_CUT[cps])
    # sentence k = text[cuts[k-1]+1 : cuts[k]] (from 0 / to n at the ends); a trigger is never a cut
    ends = np.append(cuts, n)
    starts = np.concatenate(([0], cuts + 1))
    ks = np.unique(np.searchsorted(cuts, trig)).tolist() if trig.size else []
    if phrase.size:  # phrase-only characters (覆 in 反覆, not in 覆盖) trigger only inside a phrase
        # An occurrence of a key holding the char at p lies in text[p-L+1 : p+L]; the window is
        # clipped to the sentence, so whatever the search finds selects the right sentence.
        have = set(ks)
        pk = np.searchsorted(cuts, phrase).tolist()
        for p, k in zip(phrase.tolist(), pk):
            if k in have:
                continue
            rx, span = _PHRASE_KEY_RE[text[p]]
            if rx.search(text, max(int(starts[k]), p - span + 1), min(int(ends[k]), p + span)):
                have.add(k)
        if len(have) > len(ks):
            ks = sorted(have)
    blocks: list[tuple[int, int]] = []
    for k in ks:
        s, e = int(starts[k]), int(ends[k])
        if blocks and s - blocks[-1][1] <= _BLOCK_GAP:
            blocks[-1] = (blocks[-1][0], e)
        else:
            blocks.append((s, e))
    return blocks


def _t2s_gated(text: str, cps: np.ndarray, fl: np.ndarray, use_cache: bool = True) -> str:
    """t2s(text), running the converter only on the sentences that can change."""
    blocks = _t2s_blocks(text, cps, fl)
    if not blocks:
        return text
    if blocks[0] == (0, len(text)):
        return _T2S.convert(text, use_cache=use_cache)
    pieces: list[str] = []
    pos = 0
    for s, e in blocks:
        pieces.append(text[pos:s])
        pieces.append(_T2S.convert(text[s:e], use_cache=use_cache))
        pos = e
    pieces.append(text[pos:])
    return "".join(pieces)


def t2s_raw(text: str, use_cache: bool = True) -> str:
    """OpenCC t2s (current dictionaries), identical to ``converter('t2s').convert(text)``."""
    if not text:
        return text
    cps = _codepoints(text)
    return _t2s_gated(text, cps, _FLAGS[cps], use_cache)


def t2s_whole(text: str, use_cache: bool = True) -> str:
    """t2s gated per document only (the reference the per-sentence gate must equal)."""
    if not needs_t2s(text):
        return text
    return _T2S.convert(text, use_cache=use_cache)


def fix_zhe(text: str) -> str:
    """The 著 pass on its own (t2s never turns 著 into 着): only where the neighbours say 着
    (:mod:`corpuspipe.zh.zhe`)."""
    spans = zhe_spans(text)
    if not spans:
        return text
    chars = list(text)
    for s, _e in spans:
        chars[s] = "着"
    return "".join(chars)


def to_simplified(text: str) -> str:
    """t2s with the current dictionaries plus the contextual 著 pass."""
    return fix_zhe(t2s_raw(text))


# -- diffs -> coalesced replacements -------------------------------------------------------------

_MERGE_GAP = 1  # difflib path: changed runs separated by at most this many unchanged chars merge


def _runs_to_replacements(old: str, new: str, a: np.ndarray, b: np.ndarray, offset: int, rule: str) -> list[Replacement]:
    """Equal-length texts: one replacement per changed stretch inside a run of Han characters.

    Changed characters are coalesced across unchanged Han characters but never across anything
    else (punctuation, spaces, newlines, digits), so a Traditional clause becomes one edit and
    later punctuation or line edits do not overlap it.
    """
    diff = np.flatnonzero(a != b)
    if diff.size == 0:
        return []
    nonhan = np.cumsum((_FLAGS[a] & _F_HAN) == 0)
    far = nonhan[diff[1:]] != nonhan[diff[:-1]]  # a non-Han char between consecutive changes
    far |= (_FLAGS[a[diff[1:]]] & _F_HAN) == 0  # ...or the change itself is not Han
    cuts = np.flatnonzero(far)
    starts = np.concatenate(([diff[0]], diff[cuts + 1])).tolist()
    ends = (np.concatenate((diff[cuts], [diff[-1]])) + 1).tolist()
    return [Replacement(offset + s, offset + e, new[s:e], rule) for s, e in zip(starts, ends)]


def _diff_replacements(old: str, new: str, offset: int, rule: str, gap: int = _MERGE_GAP) -> list[Replacement]:
    """Replacements turning ``old`` into ``new`` (at ``offset``), nearby changed runs coalesced."""
    if old == new:
        return []
    spans: list[tuple[int, int, int, int]] = []  # old_s, old_e, new_s, new_e
    if len(old) == len(new):
        return _runs_to_replacements(old, new, _codepoints(old), _codepoints(new), offset, rule)
    else:
        ops = difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes()
        for tag, i1, i2, j1, j2 in ops:
            if tag == "equal":
                continue
            if spans and i1 - spans[-1][1] <= gap and j1 - spans[-1][3] == i1 - spans[-1][1]:
                spans[-1] = (spans[-1][0], i2, spans[-1][2], j2)
            else:
                spans.append((i1, i2, j1, j2))
    return [Replacement(offset + s, offset + e, new[ns:ne], rule) for s, e, ns, ne in spans]


def _t2s_replacements(text: str, cps: np.ndarray, fl: np.ndarray) -> tuple[list[Replacement], str]:
    """t2s as coalesced replacements, and the converted text.  Never crosses a newline."""
    new = _t2s_text(text, cps, fl)
    if new is text:
        return [], text
    if len(new) == len(text):
        return _runs_to_replacements(text, new, cps, _codepoints(new), 0, "t2s"), new
    reps: list[Replacement] = []
    old_lines, new_lines = text.split("\n"), new.split("\n")
    assert len(old_lines) == len(new_lines)
    off = 0
    for old, nl in zip(old_lines, new_lines):
        if old != nl:
            reps += _diff_replacements(old, nl, off, "t2s")
        off += len(old) + 1
    return reps, new


# the whole-text conversion used by the stage; tests swap in the engine on the whole text
_t2s_text = _t2s_gated
