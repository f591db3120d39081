"""What a character is to the normalizer: one flag table over every code point, built once.

One numpy lookup (:func:`_codepoints` then ``_FLAGS[...]``) classifies every character of an
essay: script-exclusive (Traditional / Simplified), can change in t2s on its own (``_F_TRIG``) or
only inside a phrase (``_F_PHRASE``), Han, full-width alnum, 著, or a character repaired before
t2s (invisible characters, Kangxi radicals, PDF glyphs).  Classifying costs ~880 MB/s
(UTF-32 + flag lookup), so every later step asks the table instead of looking at characters one
by one.  The essay's ``script`` and ``trad_ratio`` come from the same table.
"""

from __future__ import annotations

import re
from typing import Iterable

import numpy as np

from corpuspipe.stages.normalize.config import NormalizeConfig
from corpuspipe.zh import opencc as _opencc
from corpuspipe.zh.chars import CJK_STABLE_PUNCT, FULLWIDTH_ALNUM_RANGES, HAN, HAN_RANGES, HSPACE, KANGXI_RANGES

_HAN_RE = re.compile(f"[{HAN}]")
_WS = HSPACE  # horizontal whitespace seen in scraped text (NBSP, ideographic space)

# CJK punctuation the normalizer never produces: a stable "Chinese context" signal.
_CJK_STABLE = CJK_STABLE_PUNCT
_CTX = frozenset(_CJK_STABLE)

# zero-width space, BOM/zero-width no-break space, soft hyphen: scraped-HTML residue, never text
_INVISIBLE = "\u200b\ufeff\u00ad"
_INVISIBLE_RE = re.compile(f"[{_INVISIBLE}]+")

# -- conversion tables (built once) ------------------------------------------------------------

_T2S = _opencc.fast_converter("t2s")

# One uint8 flag per code point; one numpy lookup classifies a whole essay.
# FIX: full-width alnum (repaired with t2s); PRE: invisible chars and PDF glyphs, repaired before
# t2s because the characters they produce can complete a t2s phrase (覆⽂ -> 覆文 -> 复文).
_F_TRAD, _F_SIMP, _F_TRIG, _F_PHRASE, _F_HAN, _F_FIX, _F_ZHU, _F_PRE = 1, 2, 4, 8, 16, 32, 64, 128
_FLAGS = np.zeros(0x110000, dtype=np.uint8)


def _build_tables() -> dict[str, tuple[str, ...]]:
    """Fill the flag table; return phrase-only trigger chars with the phrase keys that hold them.

    Trigger chars (see :func:`corpuspipe.zh.opencc.t2s_trigger_chars`) are split in two: chars
    that change on their own (flag TRIG) and chars that change only inside a phrase (覆 in 反覆,
    flag PHRASE).  A PHRASE char triggers conversion only if one of its phrases is present, so
    Simplified text with 覆盖 skips the converter.
    """
    conv = _opencc.converter("t2s")
    char_level: set[str] = set()
    phrase_keys: dict[str, list[str]] = {}
    for step in conv._dict_chain_data:
        for _mx, _mn, mapping in step:
            for k, v in mapping.items():
                v1 = _opencc.first_candidate(v)
                if k == v1:
                    continue
                if len(k) == 1:
                    char_level.add(k)
                    continue
                changed = [x for x, y in zip(k, v1) if x != y] if len(k) == len(v1) else list(k)
                for ch in set(changed):
                    phrase_keys.setdefault(ch, []).append(k)
    only_phrase = {ch: tuple(sorted(ks)) for ch, ks in phrase_keys.items() if ch not in char_level}
    assert set(only_phrase) | char_level == set(_opencc.t2s_trigger_chars())

    def mark(chars: Iterable[str], bit: int) -> None:
        idx = np.fromiter((ord(c) for c in chars), dtype=np.int64)
        _FLAGS[idx] |= bit

    mark(_opencc.traditional_only_chars(), _F_TRAD)
    mark(_opencc.simplified_only_chars(), _F_SIMP)
    mark(char_level, _F_TRIG)
    mark(only_phrase, _F_PHRASE)
    for lo, hi in HAN_RANGES:
        _FLAGS[lo : hi + 1] |= _F_HAN
    for lo, hi in FULLWIDTH_ALNUM_RANGES:
        _FLAGS[lo : hi + 1] |= _F_FIX
    for lo, hi in KANGXI_RANGES:
        _FLAGS[lo : hi + 1] |= _F_PRE
    _FLAGS[ord("臵")] |= _F_PRE
    _FLAGS[ord("著")] |= _F_ZHU
    for ch in _INVISIBLE:
        _FLAGS[ord(ch)] |= _F_PRE
    return only_phrase


_PHRASE_ONLY = _build_tables()
# per phrase-only char: a regex of its phrase keys and their longest length (189 keys in all)
_PHRASE_KEY_RE = {
    ch: (re.compile("|".join(re.escape(k) for k in sorted(ks, key=lambda k: (-len(k), k)))), max(map(len, ks)))
    for ch, ks in sorted(_PHRASE_ONLY.items())
}


def _codepoints(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)



def _is_han(ch: str) -> bool:
    return bool(_FLAGS[ord(ch)] & _F_HAN)


def _left_ws(text: str, i: int, floor: int) -> int:
    """Start of the run of horizontal whitespace ending at ``i``, not before ``floor``."""
    while i > floor and text[i - 1] in _WS:
        i -= 1
    return i


def _script_from_counts(trad: int, simp: int, cfg: NormalizeConfig) -> tuple[str, float]:
    if trad + simp == 0:
        return "unknown", 0.0
    ratio = trad / (trad + simp)
    if ratio >= cfg.trad_ratio_traditional:
        return "traditional", ratio
    if ratio >= cfg.trad_ratio_mixed:
        return "mixed", ratio
    return "simplified", ratio


def script_ratio(text: str, cfg: NormalizeConfig | None = None) -> tuple[str, float]:
    """(simplified|traditional|mixed|unknown, trad/(trad+simp)) from script-exclusive characters."""
    fl = _FLAGS[_codepoints(text)]
    return _script_from_counts(int(np.count_nonzero(fl & _F_TRAD)), int(np.count_nonzero(fl & _F_SIMP)), cfg or NormalizeConfig())

