"""One essay's header zone: which of its first lines are a teaser, a ``第X篇`` header, the title
line, a repeated title or a byline (removed as edits, title, author and date kept), and which
are site lines (kept for the watermark stage)."""

from __future__ import annotations

from corpuspipe.stages.ingest.lines import EssaySpan, Line, Removal, nospace
from corpuspipe.stages.ingest.titles import (
    advert_shaped, clean_title, essay_header_title, is_site_line, is_title_like, parse_byline, removed_as_watermark,
    teaser_at, title_line_ok,
)

# Lines longer than this are never asked whether a rule removes them whole in the header zone (the
# shipped line rules stop at ~300 characters; a long first paragraph is body).
_MAX_WATERMARK_LINE = 160


def analyse_essay(
    text: str,
    lines: list[Line],
    a: int,
    b: int,
    max_title_chars: int,
    known_title: str | None = None,
    max_long_title_chars: int | None = None,
) -> EssaySpan:
    """Classify the header zone of lines[a:b] and return the essay span with its removals."""
    start = lines[a].start if a < len(lines) else len(text)
    end = lines[b - 1].end if b > a else start
    span = EssaySpan(start, end, title=known_title)
    i = a
    # Leading blank lines.
    while i < b and not lines[i].content:
        i += 1
    if i > a:
        span.removals.append(Removal(lines[a].start, lines[i].start if i < b else end, "blank_lines"))

    max_long = max(max_title_chars, max_long_title_chars or max_title_chars)
    seen_title_line = known_title is not None
    after_teaser = False
    teaser_after_title = False
    repeated = False
    header_titles: list[str] = [known_title] if known_title else []
    budget = 8  # header zones are short; never scan deep into the body
    while i < b and budget > 0:
        budget -= 1
        s = lines[i].content
        if not seen_title_line and teaser_at(lines, i, text):
            i = _consume(lines, i, b, span, "teaser")
            after_teaser = True
            continue
        if not seen_title_line:
            head = essay_header_title(s, max_title_chars)
            if head is not None:
                span.title = head
                header_titles = [head, s]
                seen_title_line = True
                i = _consume(lines, i, b, span, "essay_header")
                continue
        if is_site_line(s) or (not seen_title_line and len(s) <= _MAX_WATERMARK_LINE and (
                removed_as_watermark(s) or (advert_shaped(s) and is_title_like(s, max_long)))):
            # site lines stay for the watermark stage; one above the title (an advert, a page stamp,
            # 温馨提示：…如有侵权请联系删除。) neither titles the essay nor hides the title below it
            i += 1
            while i < b and not lines[i].content:
                i += 1
            continue
        if not seen_title_line and title_line_ok(lines, i, text, max_title_chars, max_long, after_teaser):
            span.title = clean_title(s)
            header_titles = [span.title]
            seen_title_line = True
            i = _consume(lines, i, b, span, "title_line")
            continue
        if seen_title_line and not teaser_after_title and known_title is None and teaser_at(lines, i, text):
            # A teaser under the title line (title, teaser, body): the same summary, placed lower.
            teaser_after_title = True
            i = _consume(lines, i, b, span, "teaser")
            continue
        if seen_title_line and not repeated and header_titles and _is_repeat(s, header_titles):
            repeated = True
            i = _consume(lines, i, b, span, "repeated_title")
            continue
        if seen_title_line and span.author is None:
            byline = parse_byline(s)
            if byline is not None:
                span.author, span.date = byline
                i = _consume(lines, i, b, span, "byline")
                continue
        break
    _strip_trailing(text, lines, a, b, span)
    return span


def _consume(lines: list[Line], j: int, b: int, span: EssaySpan, rule: str) -> int:
    """Remove line j plus the blank lines after it (before line b); return the next line index."""
    k = j + 1
    while k < b and not lines[k].content:
        k += 1
    stop = lines[k].start if k < b else lines[b - 1].end
    span.removals.append(Removal(lines[j].start, stop, rule))
    return k


def _is_repeat(s: str, titles: list[str]) -> bool:
    key = nospace(s)
    return any(key in (nospace(t), nospace(clean_title(t))) for t in titles if t)



def _strip_trailing(text: str, lines: list[Line], a: int, b: int, span: EssaySpan) -> None:
    """Remove whitespace after the last content character of the essay."""
    last_end = max((r.end for r in span.removals), default=span.start)
    j = b - 1
    while j >= a and not lines[j].content:
        j -= 1
    if j < a:
        return
    seg = text[lines[j].start : lines[j].end]
    cut = max(lines[j].start + len(seg.rstrip()), last_end)
    if cut < span.end:
        span.removals.append(Removal(cut, span.end, "blank_lines"))
