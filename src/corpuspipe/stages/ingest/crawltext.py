"""Crawl text as it comes: line endings, invisible characters and HTML left in the text.

Found on the whole decoded file *before* it is split (:func:`find_repairs`), so the splitter, the
watermark detector and every later stage see LF text without format characters or markup, and
recorded as edits of stage ``ingest`` (the raw text stays as it was read).  Issue 24 measured what
happened without this, on copies of clean essays:

* ``#8`` CRLF kept ``\\r`` as the paragraph separator; lone CR made the file one line (no title,
  breadcrumb kept, 1 section instead of 12), and the damaged copies became their clusters'
  representatives.  Now ``\\r\\n`` -> ``\\n`` (rule ``crlf``), a lone ``\\r`` and U+2028/U+2029 ->
  ``\\n`` (``cr``, ``line_separator``).
* ``#9`` a site watermark with U+200C (zero-width non-joiner) was kept on 10/10 pages: only U+200B,
  U+FEFF and U+00AD were removed, and only by the normalizer, after the watermark stage.  Now every
  character of Unicode category Cf (except the prepended concatenation marks, which are visible)
  and the invisible non-Cf fillers and selectors (:data:`INVISIBLE`) go (``invisible``).
* ``#10`` ``&nbsp;``, ``&#22269;``, ``<br/>``, ``<p>`` were kept, and the normalizer then turned
  the entities' ``;`` into ``；`` so nothing could decode them later.  Now entities are decoded
  (``html_entity``; a double-escaped ``&amp;nbsp;`` in one step), runs of tags of known HTML
  elements become a line break where they break a line (``br``, ``p``, ``div`` … in mid-line) and
  nothing otherwise (``html_tag``), ``<script>``/``<style>`` blocks and comments go whole
  (``html_block``).  What cannot be decided safely stays and is flagged ``html_residue``
  (:func:`html_residue`): an unknown ``&name;``, a reference to an invalid code point, a legacy
  entity without its ``;`` (``&nbsp`` — or ``&amp`` in a URL?), a tag cut at a line end.

Each repaired essay is flagged by kind (:data:`FLAG_OF_RULE`: ``line_endings``,
``invisible_chars``, ``html_markup``) so that dedup's representative rule (fewest flags first)
never prefers a damaged copy of a text to a clean one.
"""

from __future__ import annotations

import html
import re
import sys
import unicodedata
from array import array
from bisect import bisect_left
from dataclasses import dataclass
from functools import lru_cache
from html.entities import html5

from corpuspipe.core.edits import Replacement

__all__ = ["INVISIBLE", "FLAG_OF_RULE", "Repairs", "find_repairs", "repair_string", "html_residue", "flags_for"]

# Visible although category Cf: the Prepended_Concatenation_Mark characters (Arabic number signs…).
_VISIBLE_CF = frozenset([*range(0x0600, 0x0606), 0x06DD, 0x070F, 0x0890, 0x0891, 0x08E2, 0x110BD, 0x110CD])
# Invisible although not Cf: the combining grapheme joiner, Hangul fillers (U+115F, U+1160, U+3164,
# U+FFA0: blank glyphs used to pad names and hide marks), Khmer inherent vowels, Mongolian variation
# selectors, the braille blank, variation selectors (VS1-16, VS17-256: they ride on a visible
# character and carry nothing a reader sees; "variation selector smuggling" hides bytes in them).
_INVISIBLE_EXTRA = (
    (0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180D), (0x180F, 0x180F),
    (0x2800, 0x2800), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0xE0100, 0xE01EF),
)  # fmt: skip


def _ranges(cps: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for c in cps:
        if out and out[-1][1] == c - 1:
            out[-1] = (out[-1][0], c)
        else:
            out.append((c, c))
    return out


@lru_cache(maxsize=1)
def _invisible_ranges() -> tuple[tuple[int, int], ...]:
    cf = [c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf" and c not in _VISIBLE_CF]
    extra = [c for lo, hi in _INVISIBLE_EXTRA for c in range(lo, hi + 1)]
    return tuple(_ranges(sorted(set(cf) | set(extra))))


def _class(ranges: tuple[tuple[int, int], ...]) -> str:
    return "".join(re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" for lo, hi in ranges)


#: regex class body of every character removed as invisible (Cf but the visible marks, plus the fillers above)
INVISIBLE = _class(_invisible_ranges())
_INVISIBLE_RE = re.compile(f"[{INVISIBLE}]")

# Elements of HTML (and Word's o:p) whose tags are markup wherever they appear in crawled text; an
# unknown ``<abc>`` stays (Chinese text writes titles in ASCII angle brackets: <红楼梦>, <Java编程>).
_BLOCK = ("p", "div", "br", "li", "ul", "ol", "tr", "td", "th", "table", "tbody", "thead", "tfoot", "h1", "h2", "h3",
          "h4", "h5", "h6", "hr", "blockquote", "section", "article", "header", "footer", "nav", "aside", "main",
          "dd", "dt", "dl", "pre", "center", "form", "figure", "figcaption", "caption", "address", "title", "body",
          "html", "head", "iframe")
_INLINE = ("span", "a", "b", "i", "u", "s", "em", "strong", "font", "img", "sup", "sub", "small", "big", "code",
           "tt", "strike", "del", "ins", "label", "input", "button", "select", "option", "textarea", "abbr", "cite",
           "q", "mark", "meta", "link", "wbr", "nobr", "col", "colgroup", "source", "video", "audio", "embed",
           "object", "param", "base", "o:p")
_BLOCK_SET = frozenset(_BLOCK)
_NAMES = "|".join(re.escape(n) for n in sorted((*_BLOCK, *_INLINE), key=len, reverse=True))
_TAG = f"(?:<|&lt;)/?(?:{_NAMES})(?![\\w:-])(?:[^<>&]|&(?!gt;|lt;)){{0,1000}}?/?(?:>|&gt;)"
_ENTITY = r"&(?:amp;)?(?:#[0-9]{1,7}(?![0-9]);?|#[xX][0-9a-fA-F]{1,6}(?![0-9a-fA-F]);?|[A-Za-z][A-Za-z0-9]{1,31};)"

_REPAIR_RE = re.compile(
    "(?P<crlf>\r\n)|(?P<cr>\r)|(?P<ls>[\u2028\u2029])"
    "|(?P<block><(?P<code>script|style)\\b[^>]*>.*?</(?P=code)\\s*>|<!--.*?-->)"
    f"|(?P<tags>{_TAG}(?:[ \t]*{_TAG})*)"
    f"|(?P<entity>{_ENTITY})"
    f"|(?P<inv>[{INVISIBLE}]+)",
    re.IGNORECASE | re.DOTALL,
)
_GATE = re.compile(f"[\r&<\u2028\u2029{INVISIBLE}]")
# The same without the supplementary planes (tag characters, VS17-256...): a class holding ranges
# above U+FFFF scanned real reports at 151 MB/s, the BMP part alone at 654 MB/s.  A text holds a
# character above U+FFFF only if CPython stores it 4 bytes a character, which its size tells in O(1).
_GATE_BMP = re.compile(f"[\r&<\u2028\u2029{_class(tuple(r for r in _invisible_ranges() if r[1] <= 0xFFFF))}]")
_UCS_HEADER = sys.getsizeof("\u0100") - 4  # a compact non-ASCII str: header + (len + 1) * bytes per char
# (a cached UTF-8 copy makes a str look bigger: then the full class is scanned, which is only slower)


def _has_astral(text: str) -> bool:
    return not text.isascii() and sys.getsizeof(text) - _UCS_HEADER >= 4 * (len(text) + 1)


if _has_astral("国a") or not _has_astral("\U0001F600a"):  # not CPython's layout: always scan everything
    def _has_astral(text: str) -> bool:  # noqa: F811
        return True


def _gate(text: str) -> re.Pattern:
    return _GATE if _has_astral(text) else _GATE_BMP


_TAG_NAME = re.compile(r"(?:<|&lt;)/?([A-Za-z0-9:]+)")

#: rule -> the flag an essay gets when one of its edits has that rule
FLAG_OF_RULE = {
    "crlf": "line_endings", "cr": "line_endings", "line_separator": "line_endings",
    "invisible": "invisible_chars",
    "html_entity": "html_markup", "html_tag": "html_markup", "html_block": "html_markup",
}  # fmt: skip


def _decode_entity(text: str, m: re.Match) -> str | None:
    """The entity's text (invisible characters dropped, CR as a line break), or None to leave it."""
    ent = m.group()
    if ent[1:5].lower() == "amp;" and len(ent) > 5:
        ent = "&" + ent[5:]  # &amp;nbsp; -> &nbsp;: escaped twice by a CMS
    if ent[1] != "#":
        out = html5.get(ent[1:])
        if out is None:
            return None  # not an entity: flagged by html_residue
    else:
        out = html.unescape(ent)
        if out == ent or "\ufffd" in out:
            return None  # an invalid code point (&#0;, a surrogate): left and flagged
    out = _INVISIBLE_RE.sub("", out)
    if out == "\r":  # &#13;: a CR (before &#10; or a newline it is part of a CRLF)
        nxt = text[m.end() : m.end() + 6].lower()
        out = "" if nxt.startswith(("\n", "&#10;", "&#xa;")) else "\n"
    return out


def _tag_run(text: str, m: re.Match) -> str:
    """In mid-line, a run of tags holding a block element breaks the line: one line break per
    ``<br>`` (``<br><br>`` is a blank line), else one; at a line's start or end, and for inline
    elements, nothing."""
    names = [n.group(1).lower() for n in _TAG_NAME.finditer(m.group())]
    if not any(n in _BLOCK_SET for n in names):
        return ""
    s, e = m.start(), m.end()
    before = text[s - 1] if s else "\n"
    after = text[e] if e < len(text) else "\n"
    if before in "\r\n" or after in "\r\n":
        return ""
    return "\n" * max(1, names.count("br"))


_RULE = {"crlf": "crlf", "cr": "cr", "ls": "line_separator", "block": "html_block", "tags": "html_tag",
         "entity": "html_entity", "inv": "invisible"}


@dataclass
class Repairs:
    """The repairs of one decoded text and the repaired text, with offsets between the two.

    Replacements are kept as columns (``array``), not tuples: a 200 MB CRLF file has one per line."""

    text: str  # the repaired text: what the splitter sees
    raw_start: array
    raw_end: array
    new_start: array  # where each replacement's text starts in ``text``
    new_end: array
    after: list[str]
    rule: list[str]
    length: int  # of the decoded text

    def to_raw(self, p: int) -> int:
        """The decoded-text offset of a boundary at ``p`` in the repaired text.  A boundary never
        falls inside a replacement (one that would is taken whole to the left of it); a deletion
        at the boundary goes to the right, with the text it was in front of."""
        if p >= len(self.text):
            return self.length
        j = bisect_left(self.new_start, p)
        if j < len(self.new_start) and self.new_start[j] == p:
            return self.raw_start[j]
        k = j - 1
        if k < 0:
            return p
        if self.new_end[k] > p:
            return self.raw_end[k]
        return p + (self.raw_end[k] - self.new_end[k])

    def inside(self, start: int, end: int) -> list[Replacement]:
        """The replacements within decoded ``[start, end)``, in coordinates relative to ``start``."""
        lo = bisect_left(self.raw_start, start)
        out = []
        for k in range(lo, len(self.raw_start)):
            if self.raw_start[k] >= end:
                break
            out.append(Replacement(self.raw_start[k] - start, self.raw_end[k] - start, self.after[k], self.rule[k]))
        return out


def _matches(text: str):
    """``_REPAIR_RE.finditer(text)``, tried only where the gate's character class hits: the
    alternation tried at every position ran at 14-16 MB/s on real reports; jumping from hit to hit
    costs a C-level class scan (200+ MB/s) plus one match per ``\r``, ``&``, ``<`` or invisible run."""
    at = 0
    search, match = _gate(text).search, _REPAIR_RE.match
    while (g := search(text, at)) is not None:
        m = match(text, g.start())
        if m is None:
            at = g.start() + 1
            continue
        yield m
        at = m.end()


def find_repairs(text: str) -> Repairs | None:
    """The repairs of ``text``, or None when it needs none (one regex scan settles a clean text)."""
    if _gate(text).search(text) is None:
        return None
    rs, re_, ns, ne = array("q"), array("q"), array("q"), array("q")
    afters: list[str] = []
    rules: list[str] = []
    pieces: list[str] = []
    pos = shift = 0
    for m in _matches(text):
        kind = m.lastgroup  # the outer group of the block alternative closes last: "block"
        if kind == "crlf" or kind == "cr" or kind == "ls":
            after = "\n"
        elif kind == "tags":
            after = _tag_run(text, m)
        elif kind == "entity":
            decoded = _decode_entity(text, m)
            if decoded is None:
                continue
            after = decoded
        else:  # block, inv
            after = ""
        s, e = m.span()
        if text[s:e] == after:
            continue
        pieces.append(text[pos:s])
        pieces.append(after)
        pos = e
        rs.append(s)
        re_.append(e)
        ns.append(s + shift)
        shift += len(after) - (e - s)
        ne.append(e + shift)
        afters.append(after)
        rules.append(_RULE[kind])
    if not rules:
        return None
    pieces.append(text[pos:])
    return Repairs("".join(pieces), rs, re_, ns, ne, afters, rules, len(text))


def repair_string(text: str) -> str:
    """The same repairs for a metadata string (a title from a record's field), line breaks as spaces."""
    rep = find_repairs(text)
    if rep is None:
        return text
    return " ".join(rep.text.split("\n")).strip()


_LEGACY = sorted((k for k in html5 if not k.endswith(";")), key=len, reverse=True)
_RESIDUE_RE = re.compile(
    r"&#[0-9]+;?|&#[xX][0-9a-fA-F]+;?|&[A-Za-z][A-Za-z0-9]{1,31};"
    f"|&(?:{'|'.join(map(re.escape, _LEGACY))})(?![A-Za-z0-9])"
    f"|<(?:{_NAMES})(?![\\w:-])[^<>\n]*$",
    re.IGNORECASE | re.MULTILINE,
)


def html_residue(text: str) -> bool:
    """Markup left after the repairs because decoding it was not safe (see the module docstring)."""
    return ("&" in text or "<" in text) and _RESIDUE_RE.search(text) is not None


def flags_for(rules: set[str]) -> set[str]:
    return {FLAG_OF_RULE[r] for r in rules if r in FLAG_OF_RULE}
