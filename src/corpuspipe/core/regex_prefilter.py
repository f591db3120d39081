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

**Unanchored patterns** (the inline rules: ``[来源：…]``, bare URLs) get the same treatment from
:func:`window_plan` when no part of them, lookaheads included, can match a newline: every match then
lies inside one line, so ``pattern.finditer(text, line_start, line_end + 1)`` over the lines holding
a literal gives ``finditer``'s matches (:func:`finditer_windows`).  The ``+ 1`` keeps the newline in
view, so a lookahead at the line's end sees what it sees in the whole text; a lookbehind sees
before ``pos`` anyway.  ``\\A``/``\\Z`` are refused; an empty match falls back to the whole scan.

**Many rules at once** (:class:`LineIndex`): one Aho-Corasick pass (``ahocorasick_rs``, when it is
installed) finds every occurrence of every rule's literals, overlapping ones included, so each rule
learns the lines holding one of *its* literals -- the same lines its own literal scan would give --
without a scan of its own.  Without the package each rule scans for its literals as before.
"""

from __future__ import annotations

import re
from re import _constants as C  # type: ignore[attr-defined]
from re import _parser as P  # type: ignore[attr-defined]
from typing import Iterable, Iterator

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


def _can_match_newline(seq, lookahead: bool = False) -> bool:
    """Can a part of ``seq`` consume a newline?  ``lookahead``: a lookahead's body counts too (it
    reads the text after the match, which :func:`finditer_windows` cuts after the line's newline)."""
    for op, av in seq:
        if op is C.AT:
            if lookahead and av in (C.AT_BEGINNING_STRING, C.AT_END_STRING):
                raise _Unknown  # \\A, \\Z: positions of the whole text, not of a line
            continue
        if op in (C.ASSERT, C.ASSERT_NOT):  # consume nothing
            if lookahead and av[0] == 1 and _can_match_newline(av[1], lookahead):
                return True
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
            if any(_can_match_newline(b, lookahead) for b in av[1]):
                return True
        elif op is C.SUBPATTERN:
            if _can_match_newline(av[3], lookahead):
                return True
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
            if _can_match_newline(av[2], lookahead):
                return True
        elif op is C.ATOMIC_GROUP:
            if _can_match_newline(av, lookahead):
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


def _plan(pattern: str, anchored: bool) -> re.Pattern[str] | None:
    try:
        parsed = P.parse(pattern, re.MULTILINE)
        if parsed.state.flags & (re.IGNORECASE | re.DOTALL | re.VERBOSE) or "(?" in pattern.replace("(?:", "").replace(
                "(?=", "").replace("(?!", "").replace("(?<=", "").replace("(?<!", ""):
            return None  # inline flags anywhere: not analysed
        starts_anchored = len(parsed) > 0 and parsed[0] == (C.AT, C.AT_BEGINNING)
        if starts_anchored != anchored:
            return None
        if _can_match_newline(parsed.data, lookahead=not anchored):
            return None
        req = _required(parsed.data)
    except (_Unknown, re.error, AttributeError, TypeError, ValueError, IndexError):
        return None
    if not req or any("\n" in w or not w for w in req):
        return None
    words = tuple(sorted(req, key=lambda w: (-len(w), w)))
    rx = re.compile("|".join(re.escape(w) for w in words))
    _WORDS[rx.pattern] = words
    return rx


_WORDS: dict[str, tuple[str, ...]] = {}  # a plan's regex source -> its literal strings


def line_plan(pattern: str) -> re.Pattern[str] | None:
    """A regex finding the literals every match of ``pattern`` contains, when the pattern is a
    single-line, ``^``-anchored, case-sensitive one (see the module docstring); else None."""
    return _plan(pattern, anchored=True)


def window_plan(pattern: str) -> re.Pattern[str] | None:
    """The same for an unanchored pattern whose every match, lookaheads included, stays inside one
    line (see the module docstring); else None.  (A ``^``-anchored pattern: :func:`line_plan`.)"""
    return _plan(pattern, anchored=False)


def literals_of(plan: re.Pattern[str]) -> tuple[str, ...]:
    """The literal strings a plan's regex (from :func:`line_plan` / :func:`window_plan`) finds."""
    return _WORDS[plan.pattern]


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


def line_starts(literals: re.Pattern[str], text: str) -> list[int]:
    """Starts of the lines holding a hit of ``literals``, ascending (each once)."""
    out: list[int] = []
    last = -1
    rfind = text.rfind
    for hit in literals.finditer(text):
        ls = rfind("\n", 0, hit.start()) + 1
        if ls != last:
            out.append(ls)
            last = ls
    return out


def match_lines(rx: re.Pattern[str], text: str, starts: Iterable[int]) -> list[re.Match[str]]:
    """:func:`finditer_lines` given the lines to try (ascending): ``rx.match`` at each; raises
    ValueError on an empty match (the caller then scans the whole text)."""
    out = []
    match = rx.match
    for ls in starts:
        m = match(text, ls)
        if m is not None:
            if m.end() == ls:
                raise ValueError("empty match")
            out.append(m)
    return out


def match_windows(rx: re.Pattern[str], text: str, starts: Iterable[int]) -> list[re.Match[str]]:
    """``rx.finditer(text)`` for a :func:`window_plan` pattern, given the starts of the lines that
    can hold a match (ascending): ``finditer`` over each line, its newline included (see the module
    docstring).  Raises ValueError on an empty match (the caller then scans the whole text)."""
    out = []
    find = text.find
    n = len(text)
    for ls in starts:
        nl = find("\n", ls)
        for m in rx.finditer(text, ls, n if nl < 0 else nl + 1):
            if m.end() == m.start():
                raise ValueError("empty match")
            out.append(m)
    return out


def finditer_windows(rx: re.Pattern[str], literals: re.Pattern[str], text: str) -> list[re.Match[str]]:
    """``rx.finditer(text)`` for a pattern :func:`window_plan` accepted (``literals`` is its answer)."""
    try:
        return match_windows(rx, text, line_starts(literals, text))
    except ValueError:
        return list(rx.finditer(text))


try:  # a compiled Aho-Corasick automaton (Rust); without it each rule scans for its own literals
    import ahocorasick_rs as _ac
except ImportError:  # pragma: no cover - exercised by forcing it off in the tests
    _ac = None


class LineIndex:
    """For several plans (their literal regexes, by key): the lines of a text holding one of each
    plan's literals, found by one Aho-Corasick pass over all their literals (overlapping occurrences
    included), or, without ``ahocorasick_rs``, by each plan's own literal scan.  Either way a plan
    gets exactly the lines :func:`line_starts` gives it.

    Measured on the 2,124 texts of a 14.5 MB crawl100 slice (CPU s, best of 3): the 12 shipped
    line rules' own scans and matches 0.379; one ``ahocorasick_rs`` pass 0.048 and all matches 0.135
    (``pyahocorasick`` 2.3.1: 0.107 for the pass alone)."""

    def __init__(self, plans: dict[str, re.Pattern[str]], use_automaton: bool = True) -> None:
        self.plans = dict(plans)
        self.words: list[str] = []
        self.owners: list[tuple[str, ...]] = []
        self.automaton = None
        if not plans or not use_automaton or _ac is None:
            return
        owners: dict[str, list[str]] = {}
        for key, rx in self.plans.items():
            for w in literals_of(rx):
                owners.setdefault(w, []).append(key)
        self.words = sorted(owners)
        self.owners = [tuple(owners[w]) for w in self.words]
        self.automaton = _ac.AhoCorasick(self.words)

    def lines(self, text: str) -> dict[str, list[int]]:
        """Per plan key, the starts of the lines holding one of its literals (ascending)."""
        if self.automaton is None:
            return {key: line_starts(rx, text) for key, rx in self.plans.items()}
        found: dict[str, set[int]] = {}
        owners = self.owners
        rfind = text.rfind
        for w, start, _end in self.automaton.find_matches_as_indexes(text, overlapping=True):
            ls = rfind("\n", 0, start) + 1
            for key in owners[w]:
                at = found.get(key)
                if at is None:
                    found[key] = {ls}
                else:
                    at.add(ls)
        return {key: sorted(found.get(key, ())) for key in self.plans}


class WordScan:
    """The words ``re.findall`` of their alternation (longest first) finds in a text: leftmost,
    longest at a position, not overlapping -- the Aho-Corasick automaton's ``LeftmostLongest``
    matches, which it finds in one compiled pass (``ahocorasick_rs``; without it, the regex).

    Measured on the 2,124 lower-cased views of a 14.5 MB crawl100 slice and the watermark rules'
    85 required words (CPU s, best of 5): ``re.findall`` 0.069, the automaton 0.044."""

    def __init__(self, words: Iterable[str], use_automaton: bool = True) -> None:
        self.words = tuple(sorted(set(words), key=lambda w: (-len(w), w)))
        self.regex = re.compile("|".join(map(re.escape, self.words)) if self.words else r"(?!)")
        self.automaton = None
        if self.words and use_automaton and _ac is not None:
            self.automaton = _ac.AhoCorasick(list(self.words), matchkind=_ac.MatchKind.LeftmostLongest)

    def found(self, text: str) -> set[str]:
        """``set(regex.findall(text))``."""
        if self.automaton is None:
            return set(self.regex.findall(text))
        words = self.words
        return {words[i] for i, _s, _e in self.automaton.find_matches_as_indexes(text)}
