"""A text's lines with their offsets, made all at once (:func:`split_lines`) or lazily within a
moving window (:class:`LazyLines`), and the splitter's output: essay spans with their removals."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import islice
from typing import Iterator

from corpuspipe.zh.outline import ingest_outline_level

# Markup a converter or a crawler leaves on a line: a Markdown heading mark (``# 标题``, ``## 一、…``,
# a closing ``##``), emphasis around the whole line (``**标题**``), HTML tags (``<h1>标题</h1>``).
# 54 of the 55 laws of ../shared/external are Markdown: their titles were released as ``# 标题``.
_MD_HEADING = re.compile(r"^#{1,6}[ \t\u3000]+")
_MD_CLOSING = re.compile(r"[ \t\u3000]+#+$")
_EMPHASIS = re.compile(r"^(\*\*|__)(?=\S)(.+?)(?<=\S)\1$")
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]{0,80})?>")
_NOSPACE = re.compile(r"\s+")


@dataclass(slots=True)
class Line:
    start: int  # offset of the first character
    end: int  # offset after the line break
    content: str  # stripped
    indent: int  # leading whitespace characters


@dataclass
class Removal:
    start: int  # file offsets
    end: int
    rule: str


@dataclass
class EssaySpan:
    start: int
    end: int
    title: str | None = None
    author: str | None = None
    date: str | None = None
    removals: list[Removal] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)


def iter_lines(text: str) -> Iterator[Line]:
    """Lines with offsets, one at a time; ``end`` includes the line break.

    Walks the text with ``find`` instead of ``split``: a split held a second full copy of a
    200 MB file (as 1.1M line strings) beside the stripped contents.
    """
    n = len(text)
    pos = 0
    while pos < n:
        nl = text.find("\n", pos)
        stop = n if nl < 0 else nl
        raw = text[pos:stop]
        content = raw.strip()
        if content[:1] == "#":  # a Markdown heading reads as its words (## 一、总则 is an outline item)
            content = strip_markup(content)
        end = n if nl < 0 else nl + 1
        yield Line(pos, end, content, len(raw) - len(raw.lstrip()) if content else 0)
        pos = end


def split_lines(text: str) -> list[Line]:
    """All lines of ``text`` (:func:`iter_lines` as a list)."""
    return list(iter_lines(text))


class LazyLines:
    """The lines of a text, made on demand and forgotten behind a moving floor (``release``).

    Reads like the list :func:`split_lines` returns (``len``, ``lines[j]``), so the splitter's
    code is unchanged, but only the window between the floor and the furthest line looked at
    is held: the splitter looks back no further than the start of the essay it is building and
    ahead a bounded distance (12 content lines, 10,000 characters).  A list of every line held
    1.1M ``Line`` objects and their stripped contents for a 200 MB file (~0.5 GB); the window is
    a few hundred lines.  Asking below the floor is a bug and raises IndexError.
    """

    __slots__ = ("text", "_n", "_lo", "_buf", "_levels", "_rest")
    _BATCH = 256  # lines parsed per refill

    def __init__(self, text: str):
        self.text = text
        self._n = text.count("\n") + (0 if not text or text.endswith("\n") else 1)
        self._lo = 0  # index of _buf[0]
        self._buf: list[Line] = []
        self._levels: list = []  # outline level per buffered line, _UNSET until asked
        self._rest = iter_lines(text)  # the lines not parsed yet

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, j: int) -> Line:
        k = j - self._lo
        if k < 0 or j >= self._n:
            raise IndexError(f"line {j} outside the window [{self._lo}, {self._n})")
        buf = self._buf
        if k >= len(buf):
            self._fill(k + 1)
        return buf[k]

    def level(self, j: int) -> tuple[str, int] | None:
        ln = self[j]
        k = j - self._lo
        lv = self._levels[k]
        if lv is _UNSET:
            lv = self._levels[k] = ingest_outline_level(ln.content) if ln.content else None
        return lv

    def _fill(self, want: int) -> None:
        buf = self._buf
        buf.extend(islice(self._rest, want + self._BATCH - len(buf)))
        self._levels.extend([_UNSET] * (len(buf) - len(self._levels)))

    def release(self, upto: int) -> None:
        """Forget the lines before ``upto``."""
        k = min(upto - self._lo, len(self._buf))
        if k > 0:
            del self._buf[:k]
            del self._levels[:k]
            self._lo += k


class Levels:
    """``levels[j]`` over a :class:`LazyLines` (the outline level of line j, computed once)."""

    __slots__ = ("_lines",)

    def __init__(self, lines: LazyLines):
        self._lines = lines

    def __getitem__(self, j: int) -> tuple[str, int] | None:
        return self._lines.level(j)


_UNSET = object()


def nospace(s: str) -> str:
    return _NOSPACE.sub("", s)


def strip_markup(s: str) -> str:
    """The line without Markdown heading marks, whole-line emphasis or HTML tags."""
    s = s.strip()
    if s[:1] == "#":
        s = _MD_CLOSING.sub("", _MD_HEADING.sub("", s, count=1))
    if "<" in s:
        s = _HTML_TAG.sub("", s).strip()
    m = _EMPHASIS.match(s)
    return m.group(2).strip() if m else s

