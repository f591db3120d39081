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
  random bytes decoded as cp950, symbol soup), or the text has almost no Han at all (under 20 %
  of 20+ letters: a Latin page, a run of one repeated letter).
* ``punctuation_only``: nothing but punctuation, symbols and spaces.
* ``truncated`` (:func:`truncated`): running prose that stops mid-sentence.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np

from corpuspipe.zh.chars import HAN, HAN_RANGES
from corpuspipe.zh.outline import normalize_marker_re

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
    if _REPLACEMENT in text:
        return True
    if "?" not in text:  # every other test needs a `?`: the lookbehind regexes cost ~0.4 ms a 3k essay
        return False
    if _QMARK_RUN.search(text):
        return True
    n_q = len(_QMARK_IN_WORD.findall(text))
    if n_q < MIN_QMARKS:
        return False
    # Real questions are sparse: the 10th CPC congress report writes 5 half-width `?` in 10k Han
    # characters; a GB2312 re-encode of a Traditional report loses one character in ~10.
    han = len(_HAN_RE.findall(text))
    return (n_q * _HAN_PER_QMARK >= han and text.count(",") < n_q
            and len(_FULLWIDTH_PUNCT.findall(text)) >= _FULLWIDTH_PER_QMARK * n_q)


def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per BMP code point: is-space, is-ASCII-alnum, is-"other" (letters of other scripts, numbers,
    symbols but not modifier symbols).  Built once (~60 ms); the per-character loop it replaces ran
    at ~1 MB/s and made this check the slowest part of the normalize stage."""
    space = np.zeros(0x10000, dtype=bool)
    ascii_alnum = np.zeros(0x10000, dtype=bool)
    other = np.zeros(0x10000, dtype=bool)
    for c in range(0x10000):
        ch = chr(c)
        if ch.isspace():
            space[c] = True
        elif ch.isascii() and ch.isalnum():
            ascii_alnum[c] = True
        else:
            cat = unicodedata.category(ch)
            other[c] = cat[0] in "LNS" and not cat.startswith("Sk")
    return space, ascii_alnum, other


_TABLES: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
_HAN_C, _LATIN_C, _OTHER_C, _PUNCT_C, _SPACE_C = 0, 1, 2, 3, 4
_CLASS: np.ndarray | None = None


def _class_table() -> np.ndarray:
    """One class per code point (Han, ASCII letter/digit, other, punctuation, space), from the
    tables above: a single lookup and ``bincount`` per text instead of a dozen masks (the letter
    counts were ~0.3 of normalize's 2.8 CPU s on a 14.5 MB crawl100 slice)."""
    global _TABLES
    if _TABLES is None:
        _TABLES = _tables()
    space, ascii_alnum, other_t = _TABLES
    cls = np.full(0x110000, _OTHER_C, dtype=np.uint8)  # outside the BMP: other, unless Han (below)
    bmp = np.full(0x10000, _PUNCT_C, dtype=np.uint8)
    bmp[other_t] = _OTHER_C
    bmp[ascii_alnum] = _LATIN_C
    bmp[space] = _SPACE_C
    cls[:0x10000] = bmp
    for lo, hi in HAN_RANGES:
        cls[lo:hi + 1] = _HAN_C
    return cls


def _letter_counts(text: str) -> tuple[int, int, int, int]:
    """(Han, ASCII letters/digits, other letters/symbols, punctuation) among non-space characters."""
    global _CLASS
    if _CLASS is None:
        _CLASS = _class_table()
    cp = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    han, latin, other, punct, _space = np.bincount(_CLASS[cp], minlength=5).tolist()
    return han, latin, other, punct


def junk_flags(text: str) -> list[str]:
    """``punctuation_only`` / ``mostly_non_han`` for one clean text (empty list for real Chinese)."""
    han, latin, other, punct = _letter_counts(text)
    letters = han + latin + other
    if letters == 0:
        return ["punctuation_only"] if punct else []
    # A page of Latin letters or one repeated character ("DDDD…" from a mis-decoded file) is not a
    # Chinese essay either: under 20 % Han among 20+ letters is flagged, whatever the rest is.
    if other > han + latin or (han < 0.2 * letters and letters >= 20):
        return ["mostly_non_han"]
    return []


def quality_flags(text: str) -> list[str]:
    """Every junk or damage flag of one text, sorted."""
    flags = junk_flags(text)
    if encoding_damage(text):
        flags.append("encoding_damage")
    return sorted(flags)


_END_OK = frozenset("。！？!?…”\"’』」）)】]》；;.")
_SENTENCE_END = re.compile("[。！？!?]")
# A line of running text never starts with these; a line broken out of a link-split page does
# (Wikisource renders every hyperlink as its own line: "，1953年4月《毛澤東選集》第三卷").
_NO_LINE_START = frozenset("，、。；：！？）》」』”’,.;:!?)]】")
# ...and a link split leaves an opening bracket at the end of the line before it ("依据《").
_OPENERS = frozenset("《“「『（([【‘")
_MARKER_RE = normalize_marker_re()
# a last line shorter than this is a signature, date, heading or page leftover, not a cut sentence
_TRUNCATED_MIN_CHARS = 12


def truncated(text: str) -> bool:
    """The text stops mid-sentence: its last line is running prose (>= 12 non-space characters or a
    clause comma, holding Han) that does not end a sentence.

    What is *not* evidence, each a class of false positives on real pages (precision 0.69 before,
    on ``bench/eval_boilerplate.py``): a short last line (``二〇二四年三月五日``, a signature, a
    leftover ``false``; 26/26 .txt reports fired on Wikisource's ``false`` tail); a line broken
    out of a link-split block, i.e. one starting with clause punctuation or ending with an opening
    bracket (an unseen licence variant left ``本作品来自 / 中华人民共和国法律。依据《``); and a page of
    several lines with no finished sentence at all (a Wikisource version/disambiguation page:
    ``论联合政府 / 的版本包括： / 论联合政府（1945年），…第三卷`` is a list, not cut prose).
    """
    body = text.rstrip()
    last = body.rpartition("\n")[2]
    last = last.strip()
    if not last or last[-1] in _END_OK:
        return False
    bare = "".join(last.split())
    long_or_clause = len(bare) >= _TRUNCATED_MIN_CHARS or any(c in bare for c in "，、；")
    if not long_or_clause or _HAN_RE.search(bare) is None or _MARKER_RE.match(bare):
        return False
    if bare[0] in _NO_LINE_START or bare[-1] in _OPENERS:
        return False
    # several lines and not one finished sentence: a list page, not cut prose (one cut line still counts)
    return "\n" not in body or _SENTENCE_END.search(body) is not None
