"""Script and text normalization: Traditional -> Simplified, text repair, PII redaction.

Every change goes through ``essay.body.apply`` (stage ``normalize``) so the raw text can be
rebuilt.  Steps run in a fixed order (t2s + 著 + character repairs, PII, line structure,
punctuation, spacing) and each step's decisions only look at features the later steps cannot
change (Han-ness, the class of a line's last character, commas and sentence ends of a paragraph,
Han counts), which is what makes normalizing twice give the same text as normalizing once.

Speed: one numpy lookup per essay classifies every character (script-exclusive, can-change-in-
t2s, Han, needs-repair); only the *sentences* holding a t2s trigger character meet the converter
(t2s is local at 。！？；!?\n: no dictionary phrase holds one, see :data:`CUT_CHARS`), and the
converter itself (:class:`corpuspipe.zh.opencc.FastConverter`) only runs the slow engine on the
rare character runs that hold a phrase key.  Gating per document was not enough: on a
crawl-shaped corpus a Simplified essay with one stray Traditional character sent the whole
essay through the converter (stage 12.5 -> 1.2 MB/s).

Measured (``bench/profile_normalize.py``: 152 essays ingested from raw/ + gov reports + laws,
5.9 MB per kind, CPU seconds on a shared 2-core machine, noisy +-20 %):

* limits: classifying every character (UTF-32 + flag lookup) ~880 MB/s; the sentence gate
  ~140 MB/s; the fast converter on whole essays ~35 MB/s; the plain engine 2.4-2.8 MB/s.
* stage: Simplified 12.7 MB/s, Simplified with one stray Traditional character per essay
  10.8 MB/s (was 5.4 with per-document gating), 25 % Traditional essays 5.1, all Traditional
  2.0 MB/s.  Not the 25 MB/s aimed at: ``TrackedText.apply`` (core/edits.py) takes ~40 % of the
  stray-character run (28k edits, mostly blank-line ``whitespace`` edits) and ~60 % of the
  Traditional run (152k t2s edits, one per changed stretch); the rest is line structure
  (~12 %), spacing, PII and punctuation (~5 % each).  ``TrackedText.apply`` rebuilds all edits per
call, so steps that touch nothing make no call and the character-level steps share one.
"""

from __future__ import annotations

import bisect
import difflib
import re
import unicodedata
from typing import Iterable, Mapping

import numpy as np

from corpuspipe.zh import opencc as _opencc
from corpuspipe.core.config import PipelineConfigBase

from corpuspipe.core.edits import Replacement
from corpuspipe.core.records import Essay, Shard
from corpuspipe.core.stage import Context, ShardStage, StageReport
from corpuspipe.stages.normalize.config import NormalizeConfig
from corpuspipe.zh.chars import (
    CJK_STABLE_PUNCT,
    FULLWIDTH_ALNUM_RANGES,
    FULLWIDTH_OFFSET,
    HAN,
    HAN_RANGES,
    HSPACE,
    KANGXI_RANGES,
    SENTENCE_END,
)
from corpuspipe.zh.outline import normalize_marker_re
from corpuspipe.zh.pii import find_pii
from corpuspipe.zh.zhe import prev_char, zhe_spans
from corpuspipe.stages.quality.flags import encoding_damage, quality_flags, truncated

STAGE = "normalize"

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


# -- line structure ------------------------------------------------------------------------------

# a gap between two lines' content: trailing ws, newline(s), blank lines, indentation
_GAP_RE = re.compile(f"[{_WS}]*\n(?:[{_WS}\r]*\n)*[{_WS}]*")
# The same gaps found from their first newline: sre only fast-scans for a pattern that starts
# with a character (class); a leading ``[ws]*`` makes it try every position (145 MB/s -> ~600).
_GAP_CORE_RE = re.compile(f"\n(?:[{_WS}\r]*\n)*[{_WS}]*")


def _left_ws(text: str, i: int, floor: int) -> int:
    """Start of the run of horizontal whitespace ending at ``i``, not before ``floor``."""
    while i > floor and text[i - 1] in _WS:
        i -= 1
    return i


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


def _is_han(ch: str) -> bool:
    return bool(_FLAGS[ord(ch)] & _F_HAN)


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


# -- flags ---------------------------------------------------------------------------------------

_YEAR_RANGE_RE = re.compile(r"((?:19|20)\d\d)\s*[-－—–~～至到]\s*\1\s*年")
def _flags(essay: Essay) -> None:
    text = essay.body.text
    if _YEAR_RANGE_RE.search(text):
        essay.add_flag("rewritten_year")
    if truncated(text):
        essay.add_flag("truncated")
    for flag in quality_flags(text):
        essay.add_flag(flag)


# -- driver --------------------------------------------------------------------------------------


def _apply(essay: Essay, reps: list[Replacement], counts: dict[str, int], count: bool = True) -> None:
    if not reps:
        return  # every step emits only real changes, so no no-op filtering here
    essay.body.apply(reps, STAGE)
    if count:
        _count_reps(essay, reps, counts)


def _count_reps(essay: Essay, reps: Iterable[Replacement], counts: dict[str, int]) -> None:
    per_rule: dict[str, list[int]] = {}
    for r in reps:
        c = per_rule.setdefault(r.rule, [0, 0])
        c[0] += 1
        c[1] += r.end - r.start
    for rule, (n, chars) in per_rule.items():
        _count(counts, rule, n, chars)
        essay.bump(f"normalize.{rule}", n)
        if rule.startswith("pii_"):
            essay.bump(f"redacted.{rule[4:]}", n)


def _count(counts: dict[str, int], rule: str, edits: int, chars: int) -> None:
    counts[f"{rule}.edits"] = counts.get(f"{rule}.edits", 0) + edits
    counts[f"{rule}.chars"] = counts.get(f"{rule}.chars", 0) + chars


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


def _char_layer(essay: Essay, text: str, cps: np.ndarray, fl: np.ndarray, cfg: NormalizeConfig, counts: dict[str, int]) -> None:
    """t2s, the 著 pass and character repairs as ONE apply when t2s keeps the length.

    Each ``apply`` rebuilds all of an essay's Edit objects, so fewer calls is most of the
    stage's speed on Traditional essays.  Repairs of non-Han characters never overlap t2s spans
    (those cover Han runs only); a 著 or 臵 inside a t2s span is folded into it (rule
    ``t2s+zhe``), which is what a second ``apply`` would have merged it into anyway.
    """
    t2s: list[Replacement] = []
    new = text
    if cfg.convert_traditional:
        t2s, new = _t2s_replacements(text, cps, fl)
    if len(new) != len(text):  # rare: a phrase changed length; plain sequential applies
        _apply(essay, t2s, counts)
        if cfg.convert_traditional and (fl & _F_ZHU).any():
            _apply(essay, [Replacement(s, e, "着", "zhe") for s, e in zhe_spans(essay.body.text)], counts)
        if (fl & _F_FIX).any():
            _apply(essay, _char_repairs(essay.body.text, cfg), counts)
        return
    singles: list[Replacement] = []
    if cfg.convert_traditional and (fl & _F_ZHU).any():
        singles += [Replacement(s, e, "着", "zhe") for s, e in zhe_spans(new)]
    if (fl & _F_FIX).any():
        singles += _char_repairs(new, cfg)
    if not singles:
        _apply(essay, t2s, counts)
        return
    _count_reps(essay, t2s, counts)
    _count_reps(essay, singles, counts)
    starts = [r.start for r in t2s]
    merged: dict[int, Replacement] = {}
    loose: list[Replacement] = []
    for r in singles:
        i = bisect.bisect_right(starts, r.start) - 1
        if i >= 0 and t2s[i].start <= r.start and r.end <= t2s[i].end:
            base = merged.get(i, t2s[i])
            k = r.start - base.start
            after = base.after[:k] + r.after + base.after[k + len(r.after) :]
            rule = base.rule if r.rule in base.rule.split("+") else f"{base.rule}+{r.rule}"
            merged[i] = Replacement(base.start, base.end, after, rule)
        else:
            loose.append(r)
    reps = [merged.get(i, r) for i, r in enumerate(t2s)] + loose
    essay.body.apply(reps, STAGE)


def normalize_essay(essay: Essay, cfg: NormalizeConfig, counts: dict[str, int] | None = None) -> dict[str, int]:
    """Normalize one essay in place (see :func:`normalize_essays`)."""
    counts = {} if counts is None else counts
    text = essay.body.text
    cps = _codepoints(text)
    fl = _FLAGS[cps]
    first_run = not any(STAGE in e.stage.split("+") for e in essay.body.edits)
    if first_run:
        # the script of the text as it reached us; a re-run keeps the first answer
        trad, simp = int(np.count_nonzero(fl & _F_TRAD)), int(np.count_nonzero(fl & _F_SIMP))
        essay.script, essay.trad_ratio = _script_from_counts(trad, simp, cfg)
    if (fl & _F_PRE).any():
        # own apply, first: every later step must see the repaired characters
        _apply(essay, _pre_repairs(text, cfg), counts)
        text = essay.body.text
        cps = _codepoints(text)
        fl = _FLAGS[cps]
    counts[f"script.{essay.script}"] = counts.get(f"script.{essay.script}", 0) + 1
    _char_layer(essay, text, cps, fl, cfg, counts)
    if cfg.convert_traditional:
        for attr in ("title", "author"):
            val = getattr(essay, attr)
            if val:
                setattr(essay, attr, to_simplified(val))
    if cfg.redact_pii:
        _apply(essay, find_pii(essay.body.text, cfg.pii_kinds, cfg.pii_id_card_15), counts)
    joins = _line_structure(essay.body.text, cfg)
    _apply(essay, joins, counts)
    if cfg.fix_punctuation:
        _apply(essay, _punctuation(essay.body.text, keep_qmark=encoding_damage(essay.body.text)), counts)
    spacing = _spacing(essay.body.text)
    _apply(essay, spacing, counts)
    if cfg.convert_traditional and (joins or spacing):
        # Joining broken lines and removing spaces between Han characters can bring a dictionary
        # phrase together (反 覆 -> 反覆, which t2s makes 反复): convert what the repairs exposed, so
        # a second run changes nothing.  Only those two passes join Han runs, so only their edits trigger it.
        text = essay.body.text
        cps = _codepoints(text)
        _char_layer(essay, text, cps, _FLAGS[cps], cfg, counts)
    _flags(essay)
    return counts


def normalize_essays(essays: list[Essay], cfg: NormalizeConfig) -> dict[str, int]:
    """Set essay.script/trad_ratio from the RAW essay text (before conversion), convert to Simplified, repair text,
    redact PII; all as edits with stage "normalize"; flags; also convert essay.title (and author) to Simplified.
    Returns counts per rule (edits and chars) for the manifest; also bump essay.stats."""
    counts: dict[str, int] = {}
    for essay in essays:
        normalize_essay(essay, cfg, counts)
    return dict(sorted(counts.items()))


class Normalize(ShardStage):
    """Traditional -> Simplified, text repairs, PII redaction; script and flags."""

    name = STAGE
    config_sections = ("normalize",)

    def process(self, batch: Shard, ctx: Context) -> Shard:
        ctx.count_all(self.name, normalize_essays(batch.essays, ctx.cfg.normalize))
        return batch

    def report(self, counts: Mapping[str, int], fact: None, cfg: PipelineConfigBase) -> StageReport:
        """Its counters (edits and characters per rule) also as the manifest's ``normalize``, and the
        PII rules' ones as ``redactions``."""
        ordered = dict(sorted(counts.items()))
        return StageReport(counts=ordered, entries={
            "normalize": ordered, "redactions": {k: v for k, v in ordered.items() if k.startswith("pii")}})
