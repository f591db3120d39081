"""Text views and line keys: what every watermark match and boilerplate vote is computed on.

All matching runs on a *view* of the text of identical length (Traditional folded to
Simplified one character to one character, full-width punctuation to half-width), so a span
found in the view is the same span in the real text and both scripts need only one pattern.
A boilerplate *key* is a line (or bracketed run) of the key view -- every run of digits as one 0,
whitespace removed -- so a site line with another date or counter is the same key.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from pathlib import PurePosixPath
from typing import Iterator, Sequence
from urllib.parse import urlsplit

import numpy as np
import xxhash

from corpuspipe.stages.watermark.config import WatermarkConfig
from corpuspipe.core.records import Essay
from corpuspipe.zh.opencc import single_char_t2s
from corpuspipe.zh.outline import boilerplate_heading_re

LINE_PREFIX = "L|"  # doc-frequency keys of whole lines
RUN_PREFIX = "R|"  # doc-frequency keys of bracketed inline runs

_DIGIT = re.compile(r"\d")  # every Unicode decimal digit
_SPACE = re.compile(r"[^\S\n]")  # every whitespace character but the newline
_FOLD_PUNCT = {
    "【": "[", "】": "]", "〔": "[", "〕": "]", "〖": "[", "〗": "]",
    "“": '"', "”": '"', "‘": "'", "’": "'", "»": ">", "›": ">",
    "\u3000": " ", "\xa0": " ", "\u200b": " ", "\ufeff": " ", "\t": " ",
}


@lru_cache(maxsize=1)
def _luts() -> tuple[np.ndarray, np.ndarray]:
    """Code-point lookup tables of the view and of the key view; one code point to one, so a
    span in either view is the same span in the text."""
    view = np.arange(0x110000, dtype=np.uint32)
    for trad, simp in single_char_t2s():
        view[ord(trad)] = ord(simp)
    view[0xFF01:0xFF5F] -= 0xFEE0  # full-width ASCII to half-width
    for src, dst in _FOLD_PUNCT.items():
        view[ord(src)] = ord(dst)
    key = view.copy()
    every_char = np.arange(0x110000, dtype="<u4").tobytes().decode("utf-32-le", "surrogatepass")
    for rx, dst in ((_DIGIT, "0"), (_SPACE, " ")):  # string offset == code point
        key[[m.start() for m in rx.finditer(every_char)]] = ord(dst)
    return view, key


def _apply_lut(text: str, lut: np.ndarray) -> str:
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    return lut[codes].tobytes().decode("utf-32-le", "surrogatepass")


def normalized_view(text: str) -> str:
    """Same-length view of ``text``: Simplified script, half-width punctuation."""
    return _apply_lut(text, _luts()[0])


def key_view(text: str) -> str:
    """Same-length view for boilerplate keys: the normalized view with every digit as 0 and
    every whitespace but the newline as a space."""
    return _apply_lut(text, _luts()[1])


_ZERO_RUN = re.compile("00+")


def fold_digit_runs(key: str) -> str:
    """A run of digits as one 0: a counter's digits vary in number as well as value (本文共2177字 /
    本文共54252字, 浏览：38次 / 浏览：38489次): with one 0 per digit a site's footer split into one key
    per digit count, and the pages with the rarer count kept their footer (3 of 51 paginated real
    pages of the crawl bench)."""
    return _ZERO_RUN.sub("0", key) if "00" in key else key


def boilerplate_key(text: str) -> str:
    """Key of one line or run: normalized view, every digit run as one 0, whitespace removed."""
    return fold_digit_runs(key_view(text).replace(" ", "").replace("\n", ""))


def boilerplate_keys(texts: Sequence[str]) -> list[str]:
    """``[boilerplate_key(t) for t in texts]`` with one table lookup for all of them (the view keeps
    every string's length, so the joined view cuts back at the same offsets): the release report
    keys every removed boilerplate line, ~55k on the 100 MB crawl, at ~16 us each one by one."""
    view = key_view("".join(texts))
    out, pos = [], 0
    for t in texts:
        end = pos + len(t)
        out.append(fold_digit_runs(view[pos:end].replace(" ", "").replace("\n", "")))
        pos = end
    return out


# Bracketed inline runs considered by the detector (on the view; 【】 are already [ ]).
_RUN = re.compile(r"\[[^\[\]\n]{1,80}\]|\([^()\n]{1,80}\)")
PUNCT = re.compile(r"[\W_]+")
# On a key (view, digits as 0, no whitespace): the outline markers the sectioning stage reads.
_HEADING = boilerplate_heading_re()


def _lines(view: str) -> Iterator[tuple[int, int, str]]:
    """(start, end_including_newline, content) for each line of the view."""
    pos = 0
    for line in view.split("\n"):
        end = pos + len(line)
        yield pos, min(end + 1, len(view)), line
        pos = end + 1


def _line_keys(kview: str, min_chars: int) -> Iterator[tuple[int, int, str]]:
    """Candidate lines of a key view.  Outline headings (一、… （二）… 第三章…) are structure, never
    boilerplate, even when a template repeats them (一、2024年工作回顾 heads 13 of 88 real reports)."""
    for start, end, content in _lines(kview):
        if len(content) < min_chars:
            continue
        key = content.replace(" ", "")
        if len(key) >= min_chars and not _HEADING.match(key):
            yield start, end, fold_digit_runs(key)


def _run_keys(kview: str, min_chars: int) -> Iterator[tuple[int, int, str]]:
    for m in _RUN.finditer(kview):
        key = m.group().replace(" ", "")
        if len(key) >= min_chars:
            yield m.start(), m.end(), fold_digit_runs(key)


# ----------------------------------------------------------------------------- sites and candidates
def essay_site(essay: Essay) -> str:
    """The site an essay came from: its URL's host (JSON Lines), else the top-level folder of its
    file ("." for files at the raw root).  Sites carry their own templates, so they vote apart."""
    return site_of(essay.source_path, essay.url)


def site_of(source_path: str, url: str | None) -> str:
    """:func:`essay_site` from a released row's ``source_path`` and ``url``."""
    if url:
        try:
            host = urlsplit(url.strip()).hostname or ""
        except ValueError:
            host = ""
        if host:
            return host.lower().removeprefix("www.")
    parts = PurePosixPath(source_path).parts
    return parts[0] if len(parts) > 1 else "."


@dataclass(frozen=True, slots=True)
class Candidate:
    """One candidate line or run of a text: its span, its prefixed key and whether it sits at a page edge."""

    start: int
    end: int
    key: str
    edge: bool


def _nonblank(kview: str) -> list[tuple[int, int, str]]:
    return [(s, e, c) for s, e, c in _lines(kview) if c.strip()]


def edge_flags(kview: str, lines: Sequence[tuple[int, int, str]], cfg: WatermarkConfig) -> list[bool]:
    """Per non-blank line: is it in the header or footer zone (first/last ``edge_lines`` lines, or
    within ``edge_chars`` non-blank characters of either end)?  Site templates live there; the
    body of a report does not (the Wikisource licence block is the last ~15 lines / ~500 chars)."""
    n = len(lines)
    sizes = [len(c.replace(" ", "")) for _, _, c in lines]
    total = sum(sizes)
    out = []
    before = 0
    for i, size in enumerate(sizes):
        after = total - before - size
        out.append(i < cfg.edge_lines or i >= n - cfg.edge_lines or before < cfg.edge_chars or after < cfg.edge_chars)
        before += size
    return out


def candidates(text: str, cfg: WatermarkConfig) -> tuple[list[Candidate], int]:
    """Candidate lines and bracketed runs of one text, with their zone, and the text's identity.

    The identity is what a text votes under: the hash of its longest non-edge line when that line
    has ``identity_min_chars`` or more (a copy of a report with another site's header and footer
    still has the same longest paragraph, so it votes once), else the hash of the whole key text
    (title-only pages of one site differ in their title, so each votes).
    """
    kview = key_view(text)
    lines = _nonblank(kview)
    edges = edge_flags(kview, lines, cfg)
    out: list[Candidate] = []
    longest = ""
    view = normalized_view(text)  # identities keep digits: 正文1 and 正文2 are two texts
    for (s, e, content), edge in zip(lines, edges):
        key = content.replace(" ", "")
        if not edge and len(key) > len(longest):
            longest = "".join(view[s:e].split())
        if len(key) >= cfg.min_chars and not _HEADING.match(key):
            out.append(Candidate(s, e, LINE_PREFIX + fold_digit_runs(key), edge))
    if lines:
        first, last = lines[0][0], lines[-1][1]
        line_starts = [ln[0] for ln in lines]
        for s, e, key in _run_keys(kview, cfg.min_chars):
            i = bisect_right(line_starts, s) - 1
            out.append(Candidate(s, e, RUN_PREFIX + key, edges[i] if i >= 0 else s <= first or e >= last))
    basis = longest if len(longest) >= cfg.identity_min_chars else "".join(view.split())
    return out, xxhash.xxh3_64_intdigest(basis.encode("utf-8", "surrogatepass"))


