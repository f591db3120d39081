"""Where essays start in a file: a ``第X篇`` header, or a bare title line when enough independent
signals agree (:func:`_bare_title_score`), found in one streaming pass (:func:`iter_essay_starts`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from corpuspipe.stages.ingest.lines import LazyLines, Levels, Line, iter_lines
from corpuspipe.stages.ingest.titles import (
    advert_shaped, bigrams, ends_paragraph, ends_text, essay_header_title, generic_heading, is_prose, is_site_line,
    is_title_like, note_or_promotion, official_title, opening_follows, prose_follows, removed_as_watermark,
    teaser_at, title_line_ok,
)
from corpuspipe.zh.outline import ingest_outline_level


@dataclass
class _FileFacts:
    top_kind: str | None  # the highest outline level used in the file
    body_indent: int  # typical indentation of paragraphs


class _TitleIndex:
    """The titles seen so far, asked "does any share >= half its bigrams (Dice) with this line?".

    The list it replaces was compared with every title-like line, and it grows by one title
    per essay found: quadratic on a big compilation (a 20 MB file of concatenated reports:
    630k Dice computations, 1.6 s).  Distinct bigram sets are kept once, with an inverted
    index, so a query only counts overlaps with titles sharing a bigram; the score
    ``2*|a&b|/(|a|+|b|)`` is the same arithmetic as before, so the answer is identical.
    """

    __slots__ = ("_ids", "_sizes", "_postings")

    def __init__(self) -> None:
        self._ids: dict[frozenset[str], int] = {}
        self._sizes: list[int] = []
        self._postings: dict[str, list[int]] = {}

    def add(self, grams: set[str]) -> None:
        key = frozenset(grams)
        if not key or key in self._ids:
            return  # an empty set never reaches Dice 0.5
        tid = self._ids[key] = len(self._sizes)
        self._sizes.append(len(key))
        for g in key:
            self._postings.setdefault(g, []).append(tid)

    def any_similar(self, grams: set[str], threshold: float = 0.5) -> bool:
        if not grams:
            return False
        shared: dict[int, int] = {}
        for g in grams:
            for tid in self._postings.get(g, ()):
                shared[tid] = shared.get(tid, 0) + 1
        n = len(grams)
        sizes = self._sizes
        return any(2 * c / (n + sizes[tid]) >= threshold for tid, c in shared.items())


def _bare_title_score(
    lines: list[Line],
    i: int,
    facts: _FileFacts,
    levels: list[tuple[str, int] | None],
    titles: _TitleIndex,
    before: int | None,
    prev: Line | None,
    opening: str | None = None,
    teaser_before: bool = False,
    genre_prose: bool = False,
    lookahead: int = 12,
) -> int:
    """Evidence that line i starts a new essay without a header.

    +2 the top outline level restarts at 1 right after it (and had passed 1 before it);
    +2 it shares >= half its character bigrams with another title in the file;
    +1 it is indented deeper than the file's paragraphs (centred titles);
    +1 the paragraph before it is complete (ends with sentence-final punctuation);
    +4 the next line opens a document (``opening``, see :func:`opening_follows`; the caller
       passes it only when the line before is body text, not another header line);
    +4 the line before it is a teaser of what follows (``teaser_before``);
    +4 (without an opening; ``genre_prose``) it has the official title formula (…关于…的决议,
       …关于…的规定), a paragraph follows, and the line before it ends a text (sentence-final
       punctuation, or scraped junk without Han characters such as Wikisource's ``false``):
       the laws and NPC resolutions open with prose, no salutation or date line.
    A real heading inside a report rarely has more than two of these.  The opening signal is
    what bare titles lacked: in ``bench/eval_split.py`` a document's title is usually the only
    one of its kind in the file (no similar title) and its outline restarts more than 12 lines
    down (after 各位代表： and an opening paragraph), so the old four signals found 33 of 903
    real boundaries.

    ``before`` (the last top-level outline number since the essay started) and ``prev`` (the
    last content line since then) are running values kept by the caller: rescanning the
    essay for them at every title-like line made a 200 MB file take 1,445 s.
    """
    score = 0
    if facts.top_kind is not None and before is not None and before >= 2:
        after = None
        seen = 0
        for j in range(i + 1, len(lines)):
            if not lines[j].content:
                continue
            seen += 1
            if seen > lookahead:
                break
            lv = levels[j]
            if lv is not None and lv[0] == facts.top_kind:
                after = lv[1]
                break
        if after == 1:
            score += 2
    if titles.any_similar(bigrams(lines[i].content)):
        score += 2
    if lines[i].indent > facts.body_indent:
        score += 1
    if prev is not None and ends_paragraph(prev.content):
        score += 1
    if opening is not None and not generic_heading(lines[i].content):
        score += 4
    elif genre_prose:
        score += 4
    if teaser_before:
        score += 4
    return score

# A bare title needs this much evidence, and at least one of the two strong signals.
_BARE_TITLE_MIN_SCORE = 4
# How far ahead a bare title looks for the text it would start (characters).
_LOOKAHEAD_CHARS = 10_000


@dataclass
class _Prescan:
    """What the splitter needs from the whole file before its one streaming pass: the file's
    facts, its ``第X篇`` header lines (their titles seed the title index; the look-ahead stops at
    them) and its first content lines.  Taken in a pass that keeps no line: a few bytes per header."""

    facts: _FileFacts
    headers: dict[int, str]
    first: int | None  # first content line
    second: int | None  # second content line


def _prescan(text: str, max_title_chars: int) -> _Prescan:
    kinds: set[str] = set()
    indents: dict[int, int] = {}  # indent -> lines of more than 60 characters (for the median)
    headers: dict[int, str] = {}
    first = second = None
    for idx, ln in enumerate(iter_lines(text)):
        content = ln.content
        if content:
            if first is None:
                first = idx
            elif second is None:
                second = idx
            lv = ingest_outline_level(content)
            if lv is not None:
                kinds.add(lv[0])
            if len(content) > 60:
                indents[ln.indent] = indents.get(ln.indent, 0) + 1
            t = essay_header_title(content, max_title_chars)
            if t is not None:
                headers[idx] = t
    top = next((k for k in ("l1", "l2", "l3") if k in kinds), None)
    return _Prescan(_FileFacts(top, _median(indents)), headers, first, second)


def _median(counts: dict[int, int]) -> int:
    """``sorted(values)[len // 2]`` from a histogram (0 when empty)."""
    total = sum(counts.values())
    if not total:
        return 0
    rank = total // 2
    for value in sorted(counts):
        rank -= counts[value]
        if rank < 0:
            return value
    raise AssertionError("unreachable")


def find_essay_starts(
    text: str, lines: list[Line], max_title_chars: int, min_essay_chars: int, max_long_title_chars: int | None = None
) -> list[int]:
    """Line indexes where essays start (the first is always 0); see :func:`iter_essay_starts`."""
    return list(iter_essay_starts(text, lines, max_title_chars, min_essay_chars, max_long_title_chars))


def iter_essay_starts(
    text: str, lines, max_title_chars: int, min_essay_chars: int, max_long_title_chars: int | None = None,
    pre: _Prescan | None = None,
) -> Iterator[int]:
    """Line indexes where essays start, in order, as they are found (the first is always 0).

    One pass over the lines with running values (last top-level outline number and last
    content line of the current essay), so the time is linear in the file: ingesting a 20 MB
    compilation of real reports went from 11.8 s to 2.1 s (profiled: 8 s of it were rescans and
    slices in the bare-title score), and a 200 MB one (1,445 s before) takes 8x the CPU time of
    the 20 MB one (2.5 s vs 16.6 s, ``bench/bench_ingest_bigfile.py``; still 1.9 s CPU for 20 MB
    with the opening-line signals of issue 12, which changed the spans on purpose: see
    ``bench/eval_split.py``).  A start is final when it is yielded: the scan never looks back
    before the previous start (a teaser above a start moves it up, a preamble too short to be
    an essay joins the first one), so with :class:`LazyLines` the caller may release every line
    before it (issue 11: a 200 MB file in bounded memory).  The whole-file facts (outline kind,
    paragraph indent, ``第X篇`` headers) come from :func:`_prescan`.
    """
    yield 0
    if pre is None:
        pre = _prescan(text, max_title_chars)
    first = pre.first
    if first is None:
        return
    scan = _Scan(text, lines, pre, max_title_chars, min_essay_chars, max_long_title_chars)
    found = False  # a start after the preamble seen yet?
    last = 0  # the last start yielded
    for i in range(first, len(lines)):
        ln = lines[i]
        if not ln.content:
            continue
        if i in pre.headers or (i != first and scan.bare_title(i, ln)):
            moved = scan.restart(i)
            if not found:
                found = True
                # Keep a preamble as its own essay only when it holds real text.  (Its lines are
                # still in the window: nothing is released before the first start.)
                if moved != 0 and scan.preamble_chars(moved) >= min_essay_chars:
                    last = moved
                    yield moved
            elif moved != last:  # starts only move up to the previous content line: never back
                last = moved
                yield moved
        scan.advance(i, ln)


class _Scan:
    """One pass over a file's lines (:func:`iter_essay_starts`): the file's facts and the titles
    seen, and the running values of the essay being built (its characters, last top-level outline
    number, last two content lines, whether it has prose yet), kept as the pass goes so that no
    line is looked at again."""

    __slots__ = ("text", "lines", "headers", "facts", "levels", "titles", "max_title_chars", "min_essay_chars",
                 "max_long", "seg_chars", "before", "prev", "prev_i", "prev2_i", "seg_start", "seg_prose")

    def __init__(self, text: str, lines, pre: _Prescan, max_title_chars: int, min_essay_chars: int,
                 max_long_title_chars: int | None) -> None:
        self.text, self.lines, self.headers, self.facts = text, lines, pre.headers, pre.facts
        self.max_title_chars, self.min_essay_chars = max_title_chars, min_essay_chars
        self.max_long = max_long = max(max_title_chars, max_long_title_chars or max_title_chars)
        self.levels = Levels(lines) if isinstance(lines, LazyLines) else [
            ingest_outline_level(ln.content) if ln.content else None for ln in lines
        ]
        self.titles = _TitleIndex()
        for t in pre.headers.values():
            self.titles.add(bigrams(t))
        first = first_title = pre.first
        if teaser_at(lines, first, text) and pre.second is not None:
            first_title = pre.second  # a file opening with a teaser: its title comes next
        if title_line_ok(lines, first_title, text, max_title_chars, max_long, after_teaser=first_title != first):
            self.titles.add(bigrams(lines[first_title].content))
        self.seg_chars = 0
        self.before: int | None = None  # last top-level outline number since the essay's start line
        self.prev: Line | None = None  # last content line since the essay's start line
        self.prev_i: int | None = None
        self.prev2_i: int | None = None  # the content line before prev_i
        self.seg_start: int | None = first
        self.seg_prose = False  # has the current essay a line of prose (Han, not title-shaped) yet?

    def bare_title(self, i: int, ln: Line) -> bool:
        """Does content line i (not the file's first) start an essay without a header: enough
        evidence (:func:`_bare_title_score`) and enough text after it?  Its title is then seen."""
        s, lines, text = ln.content, self.lines, self.text
        if (
            self.seg_chars < self.min_essay_chars
            or not is_title_like(s, self.max_long)
            # a note wholly in parentheses or a site's promotion is not a title
            or note_or_promotion(s)
        ):
            return False
        # An opening counts only once the essay has prose: before that, title-shaped lines
        # are one document's header zone (政府工作报告 / ——… / 国务院总理 / 李克强 over 各位代表：
        # in the 2017 report; a law restating its title over 法释〔2022〕10号; a title, a
        # zero-width space, then the resolution's own title and date in the 2020/2021 ones).
        in_header = not self.seg_prose
        opening = None if in_header else opening_follows(lines, i, text)
        prev = self.prev
        genre_prose = (
            opening is None
            and not in_header
            and prev is not None
            and ends_text(prev.content)
            and len(s) >= 10
            and official_title(s)
            and prose_follows(lines, i)
        )
        # A teaser under the title that started this essay is that essay's, not a new one's.
        teaser_before = self.prev_i is not None and self.prev2_i != self.seg_start and teaser_at(lines, self.prev_i, text)
        if (
            (len(s) <= self.max_title_chars or opening is not None or teaser_before)
            and _bare_title_score(
                lines, i, self.facts, self.levels, self.titles, self.before, prev, opening, teaser_before, genre_prose
            )
            >= _BARE_TITLE_MIN_SCORE
            and self._chars_until_next_start(i) >= self.min_essay_chars
            and not advert_shaped(s)
            and not removed_as_watermark(s)
        ):
            self.titles.add(bigrams(s))
            return True
        return False

    def _chars_until_next_start(self, i: int) -> int:
        """Content characters after line i up to the next header line, stopping once past
        _LOOKAHEAD_CHARS (the value the old line-by-line loop returned)."""
        lines, headers = self.lines, self.headers
        acc = 0
        for j in range(i + 1, len(lines)):
            c = lines[j].content
            if not c:
                continue
            if j in headers:
                return acc
            acc += len(c)
            if acc >= _LOOKAHEAD_CHARS:
                return acc
        return acc

    def restart(self, i: int) -> int:
        """An essay starts at line i: its running values start again.  The line it starts at: i,
        or the teaser just above it (a teaser belongs to the essay it summarises)."""
        self.seg_chars, self.before, self.seg_start, self.seg_prose = 0, None, i, False
        lines = self.lines
        j = i - 1
        while j >= 0 and not lines[j].content:
            j -= 1
        return j if j >= 0 and teaser_at(lines, j, self.text) else i

    def preamble_chars(self, upto: int) -> int:
        """Characters of real text before the first start (site lines and teasers left out)."""
        lines, text = self.lines, self.text
        return sum(
            len(lines[k].content)
            for k in range(0, upto)
            if not is_site_line(lines[k].content) and not teaser_at(lines, k, text)
        )

    def advance(self, i: int, ln: Line) -> None:
        """Content line i joins the essay being built."""
        self.seg_chars += len(ln.content)
        lv = self.levels[i]
        if lv is not None and lv[0] == self.facts.top_kind:
            self.before = lv[1]
        self.prev, self.prev_i, self.prev2_i = ln, i, self.prev_i
        if not self.seg_prose and is_prose(self.lines, i, self.text, self.max_long):
            self.seg_prose = True
