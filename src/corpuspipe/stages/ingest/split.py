"""Splitting one decoded text file into essays, and finding each essay's header lines.

Works line by line (never per character; :mod:`.lines`).  An essay starts (:mod:`.starts`) at a
``第X篇：title`` header, or at a *bare title line* when enough independent signals agree
(``starts._bare_title_score``): the strongest is what follows a title in a compilation -- the
lines that open a document (a salutation, a date or promulgation line, a byline, a teaser;
:func:`.titles.opening_follows`).
Measured with ``bench/eval_split.py`` (142 real reports, resolutions and laws joined in 600
files, 903 boundaries; every document alone in 14 renderings, 2,052 single documents): boundary
recall 33/903 (0.037) before, 893/903 (0.989) after; false splits 0 per 1,000 single documents
before and after.  Titles longer than ``max_title_chars`` pass with that evidence, up to
``max_long_title_chars`` (:func:`.titles.title_line_ok`).  On the 100 MB crawl bench (``eval_split.py
--crawl``: every text file there is one essay) 15 of 14,584 files were split at site promotions
inside the page; none since promotions are neither titles nor openings (``titles._PROMO``).
The split streams (:func:`iter_split`): a pre-scan takes the whole-file facts, then lines are
made lazily and released behind each essay (:class:`.lines.LazyLines`); a 200 MB file never holds its
1.1M lines at once.
Within each essay the header zone (teaser, header/title line, site lines, a repeated title,
a byline) is classified (:mod:`.headerzone`); non-body lines are returned as removals so the
caller can record them as edits.  Site lines (``時間:``, ``導語:``, breadcrumbs) are recognised
but kept: the watermark stage removes them.
"""

from __future__ import annotations

from typing import Iterator

from corpuspipe.stages.ingest.headerzone import analyse_essay
from corpuspipe.stages.ingest.lines import EssaySpan, LazyLines
from corpuspipe.stages.ingest.starts import iter_essay_starts


def iter_split(
    text: str, max_title_chars: int, min_essay_chars: int, max_long_title_chars: int | None = None
) -> Iterator[EssaySpan]:
    """Essay spans that partition ``text`` exactly, with their non-body removals, one at a time.

    Lines are made lazily and released as each essay is handed out (:class:`LazyLines`), so
    memory is the text plus one essay's lines, not every line of the file.
    ``max_long_title_chars`` (None: same as ``max_title_chars``, the old behaviour) lets a
    longer line be a title when the evidence around it is strong (:func:`title_line_ok`).
    """
    if not text:
        return
    lines = LazyLines(text)
    a: int | None = None
    first = True
    for b in iter_essay_starts(text, lines, max_title_chars, min_essay_chars, max_long_title_chars):
        if a is not None:
            span = analyse_essay(text, lines, a, b, max_title_chars, max_long_title_chars=max_long_title_chars)
            if first:
                span.start, first = 0, False
            yield span
            lines.release(b)
        a = b
    assert a is not None
    span = analyse_essay(text, lines, a, len(lines), max_title_chars, max_long_title_chars=max_long_title_chars)
    if first:
        span.start = 0
    span.end = len(text)
    yield span


def split_text(
    text: str, max_title_chars: int, min_essay_chars: int, max_long_title_chars: int | None = None
) -> list[EssaySpan]:
    """Essay spans that partition ``text`` exactly, with their non-body removals (:func:`iter_split`)."""
    return list(iter_split(text, max_title_chars, min_essay_chars, max_long_title_chars))
