"""Run a ``^``-anchored, single-line regex only on the lines that can hold a match.

Why: the watermark stage's shipped line rules look like ``^[^\\n]{0,60}?(?:版权所有|…)[^\\n]{0,60}$``;
``re`` tries the lazy prefix and the alternation at every line start of every essay, and the rules
were ~45 % of the stage (py-spy, 14.5 MB crawl100 slice).  A match must contain one of a few
literal strings (版权所有, opyright, …), which one C-level scan finds; only the lines holding one are
tried.

:func:`line_plan` reads the pattern with the parser ``re`` itself compiles with and answers only
when all of this is certain, else ``None`` (then the caller scans as before):

* the pattern starts with a top-level ``^`` (under MULTILINE: matches start only at line starts);
* no part of it can match a newline (so a match lies within the line it starts on);
* every match contains one of a set of literal strings (no newline in them), and case matters
  (no IGNORECASE anywhere).

Then :func:`finditer_lines` gives the same matches as ``pattern.finditer(text)``: each line holding a
literal occurrence gets at least one hit of the literal scan (hits never cross a line), every match
starts at such a line's start and ends on that line, and lines are tried in order.
"""

from __future__ import annotations

import re
from re import _constants as C  # type: ignore[attr-defined]
from re import _parser as P  # type: ignore[attr-defined]
from typing import Iterator

_NL = 10
# categories that contain / do not contain "\n"
_CAT_NL = {C.CATEGORY_SPACE, C.CATEGORY_NOT_DIGIT, C.CATEGORY_NOT_WORD, C.CATEGORY_LINEBREAK,
           C.CATEGORY_UNI_SPACE, C.CATEGORY_UNI_NOT_DIGIT, C.CATEGORY_UNI_NOT_WORD, C.CATEGORY_UNI_LINEBREAK,
           C.CATEGORY_LOC_NOT_WORD}
_CAT_NO_NL = {C.CATEGORY_DIGIT, C.CATEGORY_NOT_SPACE, C.CATEGORY_WORD, C.CATEGORY_NOT_LINEBREAK,
              C.CATEGORY_UNI_DIGIT, C.CATEGORY_UNI_NOT_SPACE, C.CATEGORY_UNI_WORD, C.CATEGORY_UNI_NOT_LINEBREAK,
              C.CATEGORY_LOC_WORD}


class _Unknown(Exception):
    pass


def _class_has_newline(items) -> bool:
    negate = False
    hit = False
    for op, av in items:
        if op is C.NEGATE:
            negate = True
        elif op is C.LITERAL:
            hit |= av == _NL
        elif op is C.RANGE:
            hit |= av[0] <= _NL <= av[1]
        elif op is C.CATEGORY:
            if av in _CAT_NL:
                hit = True
            elif av not in _CAT_NO_NL:
                raise _Unknown
        else:
            raise _Unknown
    return hit != negate


def _can_match_newline(seq) -> bool:
    for op, av in seq:
        if op in (C.AT, C.ASSERT, C.ASSERT_NOT):  # consume nothing
            continue
        if op is C.LITERAL:
            if av == _NL:
                return True
        elif op is C.NOT_LITERAL:
            if av != _NL:
                return True
        elif op is C.IN:
            if _class_has_newline(av):
                return True
        elif op is C.ANY:
            return True  # without DOTALL it would not, but flags are not tracked here: be safe
        elif op is C.BRANCH:
            if any(_can_match_newline(b) for b in av[1]):
                return True
        elif op is C.SUBPATTERN:
            if _can_match_newline(av[3]):
                return True
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
            if _can_match_newline(av[2]):
                return True
        elif op is C.ATOMIC_GROUP:
            if _can_match_newline(av):
                return True
        else:  # back references, conditionals, …
            raise _Unknown
    return False


def _required(seq) -> frozenset[str] | None:
    """Literal strings one of which every match of ``seq`` contains (None: none known)."""
    best: frozenset[str] | None = None

    def better(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
        if b is None or not b:
            return a
        if a is None:
            return b
        return b if (min(map(len, b)), -len(b)) > (min(map(len, a)), -len(a)) else a

    run: list[str] = []
    for op, av in list(seq) + [(None, None)]:
        if op is C.LITERAL:
            run.append(chr(av))
            continue
        if run:
            best = better(best, frozenset(["".join(run)]))
            run = []
        if op is None or op in (C.AT, C.ASSERT, C.ASSERT_NOT):
            continue  # zero-width: it ended the literal run above (shorter literals: still required)
        if op is C.BRANCH:
            parts = [_required(b) for b in av[1]]
            if all(p is not None for p in parts):
                best = better(best, frozenset().union(*parts))  # type: ignore[arg-type]
        elif op is C.SUBPATTERN:
            best = better(best, _required(av[3]))
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
            if av[0] >= 1:
                best = better(best, _required(av[2]))
        elif op is C.ATOMIC_GROUP:
            best = better(best, _required(av))
        elif op is C.IN:
            chars = [chr(a) for o, a in av if o is C.LITERAL]
            if len(chars) == len(av) and 0 < len(chars) <= 4:
                best = better(best, frozenset(chars))
    return best


def line_plan(pattern: str) -> re.Pattern[str] | None:
    """A regex finding the literals every match of ``pattern`` contains, when the pattern is a
    single-line, ``^``-anchored, case-sensitive one (see the module docstring); else None."""
    try:
        parsed = P.parse(pattern, re.MULTILINE)
        if parsed.state.flags & (re.IGNORECASE | re.DOTALL | re.VERBOSE) or "(?" in pattern.replace("(?:", "").replace(
                "(?=", "").replace("(?!", "").replace("(?<=", "").replace("(?<!", ""):
            return None  # inline flags anywhere: not analysed
        if len(parsed) == 0 or parsed[0] != (C.AT, C.AT_BEGINNING):
            return None
        if _can_match_newline(parsed.data):
            return None
        req = _required(parsed.data)
    except (_Unknown, re.error, AttributeError, TypeError, ValueError, IndexError):
        return None
    if not req or any("\n" in w or not w for w in req):
        return None
    return re.compile("|".join(re.escape(w) for w in sorted(req, key=lambda w: (-len(w), w))))


def finditer_lines(rx: re.Pattern[str], literals: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """``rx.finditer(text)`` for a pattern :func:`line_plan` accepted (``literals`` is its answer)."""
    end = 0
    last_line = -1
    match = rx.match
    for hit in literals.finditer(text):
        ls = text.rfind("\n", 0, hit.start()) + 1
        if ls == last_line or ls < end:
            continue
        last_line = ls
        m = match(text, ls)
        if m is not None:
            if m.end() == ls:  # an empty match: finditer's rules for those differ; not expected here
                raise ValueError("empty match")
            yield m
            end = m.end()
