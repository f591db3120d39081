"""Junk and damage flags: text that must be released flagged, never dressed up.

Called from the normalize stage's ``_flags`` (after every repair, on the clean text), except
:func:`encoding_damage`, which normalize also asks *before* its punctuation pass: a lossy
re-encode writes ``?`` for every character the target code page lacks, and turning those into
full-width ``？`` (379 of them in one report) made damage look like questions.

Flags (each measured on real text by ``bench/eval_boilerplate.py``; none fires on the 88 real
reports or the seeds):

* ``encoding_damage``: U+FFFD replacement characters, or ASCII ``?`` standing *inside* Chinese
  words in a text that otherwise writes full-width punctuation.
* ``mostly_non_han``: letters are mostly neither Han nor Latin/digits (box drawing ``╰╰╰`` from
  random bytes decoded as cp950, symbol soup), or the text has almost no Han at all.
* ``punctuation_only``: nothing but punctuation, symbols and spaces.
"""

from __future__ import annotations

import re
import unicodedata

HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_HAN_RE = re.compile(f"[{HAN}]")
_QMARK_IN_WORD = re.compile(f"(?<=[{HAN}])\\?+(?=[{HAN}])")
_QMARK_RUN = re.compile(f"(?<=[{HAN}])\\?{{2,}}|\\?{{2,}}(?=[{HAN}])")
_FULLWIDTH_PUNCT = re.compile("[，。、；：！？]")
_REPLACEMENT = "\ufffd"

# A `?` between two Han characters is a question mark only in sloppy half-width text; a text that
# writes ，。 at least this many times per in-word `?` is full-width text, and its `?` are damage.
MIN_QMARKS = 3
_HAN_PER_QMARK = 200  # at least one in-word `?` per this many Han characters
_FULLWIDTH_PER_QMARK = 1


def encoding_damage(text: str) -> bool:
    """Replacement characters, a run of ``??`` touching Han, or in-word ``?`` in full-width text."""
    if _REPLACEMENT in text or _QMARK_RUN.search(text):
        return True
    n_q = len(_QMARK_IN_WORD.findall(text))
    if n_q < MIN_QMARKS:
        return False
    # Real questions are sparse: the 10th CPC congress report writes 5 half-width `?` in 10k Han
    # characters; a GB2312 re-encode of a Traditional report loses one character in ~10.
    han = len(_HAN_RE.findall(text))
    return (n_q * _HAN_PER_QMARK >= han and text.count(",") < n_q
            and len(_FULLWIDTH_PUNCT.findall(text)) >= _FULLWIDTH_PER_QMARK * n_q)


def _letter_counts(text: str) -> tuple[int, int, int, int]:
    """(Han, ASCII letters/digits, other letters/symbols, punctuation) among non-space characters."""
    han = len(_HAN_RE.findall(text))
    latin = other = punct = 0
    for ch in text:
        if ch.isspace() or _HAN_RE.match(ch):
            continue
        if ch.isascii() and ch.isalnum():
            latin += 1
        elif unicodedata.category(ch)[0] in "LNS" and not unicodedata.category(ch).startswith("Sk"):
            other += 1  # letters of other scripts, box drawing (So), math symbols ...
        else:
            punct += 1
    return han, latin, other, punct


def junk_flags(text: str) -> list[str]:
    """``punctuation_only`` / ``mostly_non_han`` for one clean text (empty list for real Chinese)."""
    han, latin, other, punct = _letter_counts(text)
    letters = han + latin + other
    if letters == 0:
        return ["punctuation_only"] if punct else []
    if other > han + latin or (han < 0.2 * letters and letters >= 20 and latin < 0.8 * letters):
        return ["mostly_non_han"]
    return []


def quality_flags(text: str) -> list[str]:
    """Every junk or damage flag of one text, sorted."""
    flags = junk_flags(text)
    if encoding_damage(text):
        flags.append("encoding_damage")
    return sorted(flags)
