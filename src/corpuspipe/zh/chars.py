"""Character classes of Chinese text: Han ranges, spaces, sentence ends, CJK punctuation, widths.

Each of these was defined two to four times (ingest, mojibake, PII, normalize, section) before
issue 11; a range that drifts in one copy silently changes one stage's idea of "Chinese".  The
strings are regex class *bodies* (use as ``f"[{HAN}]"``); the ``*_RANGES`` tuples are inclusive
code-point ranges for numpy lookup tables.

Where callers differ on purpose, both forms are here under their own names:

* :data:`HAN_BMP` (CJK Ext. A, the URO, compatibility ideographs) is what the title/byline checks,
  the mojibake detector and the PII name patterns use; :data:`HAN` adds the supplementary planes
  (Ext. B-H, U+20000-U+3134F) and is what the normalizer counts as Han.  The 160 essays of the
  seeds and the 143 external documents hold no supplementary-plane character at all, so the
  difference has decided nothing yet; unifying it would still change which rare-character lines
  count as titles or names, so it stays a visible choice.
* Sentence ends: :data:`SENTENCE_END` (。！？!?) is a full stop; the sectioner and ingest also stop a
  heading at :data:`SEMICOLONS`, the normalizer's paragraph-joining does not.
"""

from __future__ import annotations

__all__ = [
    "HAN_BMP",
    "HAN",
    "HAN_RANGES",
    "HSPACE",
    "SENTENCE_END",
    "SEMICOLONS",
    "CJK_STABLE_PUNCT",
    "FULLWIDTH_ASCII",
    "FULLWIDTH_OFFSET",
    "FULLWIDTH_ALNUM_RANGES",
    "KANGXI_RANGES",
]

# CJK Unified Ideographs Extension A, the Unified Ideographs block, CJK Compatibility Ideographs.
HAN_BMP = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# ... plus Extensions B to H (U+20000-U+3134F).
HAN = HAN_BMP + "\U00020000-\U0003134f"
HAN_RANGES: tuple[tuple[int, int], ...] = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x3134F))

# Horizontal whitespace seen in scraped text: space, tab, ideographic space, NBSP.
HSPACE = " \t\u3000\u00a0"

SENTENCE_END = "。！？!?"
SEMICOLONS = "；;"

# CJK punctuation the normalizer never produces or changes: a stable "Chinese context" signal.
CJK_STABLE_PUNCT = "。、“”‘’《》「」『』【】〔〕…—·"

# The full-width ASCII block (！ .. ～) sits at a fixed offset from ASCII (! .. ~).
FULLWIDTH_ASCII = (0xFF01, 0xFF5E)
FULLWIDTH_OFFSET = 0xFEE0
# Full-width digits, upper- and lower-case Latin letters (the part the normalizer folds to ASCII;
# full-width punctuation such as （ ， stays: it is the correct Chinese form).
FULLWIDTH_ALNUM_RANGES: tuple[tuple[int, int], ...] = ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A))

# CJK Radicals Supplement and Kangxi Radicals: PDF extraction emits them for ideographs (⽂ for 文).
KANGXI_RANGES: tuple[tuple[int, int], ...] = ((0x2E80, 0x2EF3), (0x2F00, 0x2FD5))
