"""Removal: rule matches and selected boilerplate keys as lossless edits on each essay.

Everything found here becomes a :class:`~corpuspipe.core.edits.Replacement` with stage
``"watermark"`` and the rule's name; an essay the removals would empty is quarantined
(``boilerplate_only``) or, when the detector would have taken a long text, kept untouched by
the detector and flagged (``boilerplate_kept``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

from corpuspipe.stages.watermark.config import WatermarkConfig
from corpuspipe.core.edits import Replacement
from corpuspipe.core.regex_prefilter import LineIndex, WordScan
from corpuspipe.core.records import Essay
from corpuspipe.stages.watermark.rules import (
    BOILERPLATE_BLOCK_RULE,
    BOILERPLATE_LINE_RULE,
    BOILERPLATE_RUN_RULE,
    DETECTOR_RULES,
    LINE_INDEX_MIN_CHARS,
    STAGE,
    RuleGuard,
    WatermarkRule,
    _matcher,
    load_rules,
)
from corpuspipe.stages.watermark.views import (
    LINE_PREFIX,
    PUNCT,
    RUN_PREFIX,
    _line_keys,
    _lines,
    _run_keys,
    essay_site,
    key_view,
    normalized_view,
)

@dataclass(frozen=True, slots=True)
class Span:
    """A proposed removal in current-text coordinates."""

    start: int
    end: int
    rule: str


def _line_bounds(view: str, start: int, end: int) -> tuple[int, int]:
    """The line(s) holding view[start:end], including the final newline."""
    line_start = view.rfind("\n", 0, start) + 1
    nl = view.find("\n", max(end - 1, start))
    return line_start, (len(view) if nl < 0 else nl + 1)


class RulePlan(NamedTuple):
    """Rules ready to run (:func:`rule_plan`): pass one to :func:`find_spans` instead of the rules
    when many short texts are asked (the splitter's title lines): building the lookup key of a
    tuple of rules hashes every pydantic model (~15 us a call)."""

    prefilter: WordScan  # the rules' required words, in one pass
    inside: dict[str, tuple[str, ...]]
    plan: tuple[tuple[str, frozenset[str], bool, Any], ...]
    # the lines holding each literal-planned rule's literals, for all of them in one pass
    lines: LineIndex


def rule_plan(rules: Sequence[WatermarkRule]) -> RulePlan:
    return _prefilter(tuple(rules))


@lru_cache(maxsize=8)
def _prefilter(rules: tuple[WatermarkRule, ...]) -> RulePlan:
    """One scan for every rule's required strings, longest first; and per required string, the
    required strings inside it (itself included): a found ``转载自`` also means ``转载`` and ``载``
    were there, though the scan reported only the longest.  Also per rule (name, required strings,
    line scope, its ``finditer``) read once: a pydantic private attribute costs a Python-level
    ``__getattr__`` per access (~8 % of the stage when read per rule and essay)."""
    words = tuple(sorted({w for r in rules for w in r.require}, key=lambda w: (-len(w), w)))
    inside = {p: tuple(w for w in words if w in p) for p in words}
    plan = tuple((r.name, frozenset(r.require), r.scope == "line", _matcher(r)) for r in rules)
    index = LineIndex({r.name: r.literal_plan() for r in rules if r.literal_plan() is not None})
    return RulePlan(WordScan(words), inside, plan, index)


def find_spans(
    text: str,
    rules: Sequence[WatermarkRule] | RulePlan,
    line_keys: frozenset[str] = frozenset(),
    run_keys: frozenset[str] = frozenset(),
    min_chars: int = 8,
    guard: RuleGuard | None = None,
    doc_id: str = "",
) -> list[Span]:
    """All removals for one text: rule matches and detected boilerplate, non-overlapping, sorted.

    Each rule gets ``guard.timeout`` seconds on this text; one that runs over adds no span, is
    recorded in the guard and skipped for every later text of the run.
    """
    guard = guard if guard is not None else RuleGuard()
    view = normalized_view(text)
    spans: list[Span] = []
    line_scoped: set[tuple[int, int]] = set()
    prefilter, inside, plan, index = rules if isinstance(rules, RulePlan) else _prefilter(tuple(rules))
    present: set[str] = set()
    for p in prefilter.found(view.lower()):  # lower(): prefilter only
        present.update(inside[p])  # shorter words inside found ones
    starts: dict[str, list[int]] | None = None  # per literal-planned rule, the lines worth trying
    for name, require, line_scope, finditer in plan:
        if require and present.isdisjoint(require):
            continue
        if guard.disabled(name):
            continue
        try:
            if name in index.plans and len(view) >= LINE_INDEX_MIN_CHARS:
                if starts is None:
                    starts = index.lines(view)
                matches = list(finditer(view, guard.timeout, starts[name]))
            else:
                matches = list(finditer(view, guard.timeout))
        except TimeoutError:
            guard.record_timeout(name, doc_id)
            continue
        for m in matches:
            if m.end() == m.start():
                continue
            if line_scope:
                s, e = _line_bounds(view, m.start(), m.end())
                line_scoped.add((s, e))
            else:
                s, e = m.start(), m.end()
            spans.append(Span(s, e, name))
    if line_keys or run_keys:
        kview = key_view(text)
        for s, e, key in _line_keys(kview, min_chars) if line_keys else ():
            if key in line_keys:
                spans.append(Span(s, e, BOILERPLATE_LINE_RULE))
                line_scoped.add((s, e))
        for s, e, key in _run_keys(kview, min_chars) if run_keys else ():
            if key in run_keys:
                spans.append(Span(s, e, BOILERPLATE_RUN_RULE))
    spans = _drop_emptied_lines(view, _resolve_overlaps(spans), line_scoped)
    return _resolve_overlaps(spans + _block_leftovers(view, spans, min_chars))


_OPENERS = frozenset("《“「『（([")
_SENTENCE_END = re.compile("[。！？!?]")
_CLAUSE_END = frozenset("，。！？；：,.!?;:…")


def _is_fragment(content: str, min_chars: int) -> bool:
    """A link-broken piece of a block: too short to be a candidate and not ending a clause
    (``法律``, ``false``), or punctuation alone (``。``).  A poem's short lines end in ，/。 and stay."""
    bare = content.strip()
    letters = PUNCT.sub("", bare)
    return len(bare.replace(" ", "")) < min_chars and (not letters or bare[-1] not in _CLAUSE_END)


def _block_leftovers(view: str, spans: list[Span], min_chars: int) -> list[Span]:
    """Short lines (under ``min_chars``: no candidate of their own) left between removed lines, or
    between the last removed line and the end of the text, go with the block.

    Wikisource breaks its licence notice at every link: ``法律`` / ``、`` / ``公有领域`` / ``false``
    stayed at the end of 25 of 26 reports after every long line of the block was removed, and made
    ``truncated`` fire on all of them.  Only in a block of at least two *detected* lines, between
    them or after the last one: a short closing line above a removed footer (``谢谢大家！``) has body
    text above it and stays, and a rule's single header line never takes short lines with it.
    """
    covered = [(s.start, s.end, s.rule) for s in spans]
    seq: list[tuple[str, int, int]] = []  # from the end up: ("anchor"|"removed"|"fragment", start, end)
    j = len(covered) - 1
    for s, e, c in _lines_from_the_end(view):  # the walk mostly stops at the last line: never split all
        if not c.strip():
            continue
        while j >= 0 and covered[j][0] > s:
            j -= 1
        content_end = e - (1 if view[e - 1 : e] == "\n" else 0)
        if j >= 0 and covered[j][0] <= s and covered[j][1] >= content_end:
            seq.append(("anchor" if covered[j][2] in DETECTOR_RULES else "removed", s, e))
        elif _is_fragment(c, min_chars):
            seq.append(("fragment", s, e))
        elif seq and seq[-1][0] != "fragment" and c.rstrip()[-1:] in _OPENERS and not _SENTENCE_END.search(c):
            # a sentence broken at a link *into* the block: 依据《 / 中华人民共和国…法; never a paragraph
            # that holds a finished sentence (a report excerpt cut at …中共中央作出《 above a footer)
            seq.append(("anchor", s, e))
        else:
            break
    if sum(kind == "anchor" for kind, _, _ in seq) < 2:
        return []
    top = max(i for i, (kind, _, _) in enumerate(seq) if kind == "anchor")
    out = [Span(s, e, BOILERPLATE_BLOCK_RULE) for i, (kind, s, e) in enumerate(seq)
           if kind == "fragment" and i < top or kind == "anchor" and (s, e) not in {(c[0], c[1]) for c in covered}]
    return sorted(out, key=lambda sp: sp.start)


def _lines_from_the_end(view: str) -> Iterator[tuple[int, int, str]]:
    """``reversed(list(views._lines(view)))``, one line at a time."""
    n = len(view)
    end = n
    while True:
        nl = view.rfind("\n", 0, end)
        yield nl + 1, min(end + 1, n), view[nl + 1 : end]
        if nl < 0:
            return
        end = nl


def _resolve_overlaps(spans: list[Span]) -> list[Span]:
    """Union overlapping spans; the widest span of a cluster names it (line rules win over inline)."""
    out: list[Span] = []
    widest: list[int] = []
    for sp in sorted(spans, key=lambda s: (s.start, -s.end, s.rule)):
        if out and sp.start < out[-1].end:
            last = out[-1]
            rule = sp.rule if sp.end - sp.start > widest[-1] else last.rule
            widest[-1] = max(widest[-1], sp.end - sp.start)
            out[-1] = Span(last.start, max(last.end, sp.end), rule)
        else:
            out.append(sp)
            widest.append(sp.end - sp.start)
    return out


def _drop_emptied_lines(view: str, spans: list[Span], line_scoped: set[tuple[int, int]]) -> list[Span]:
    """An inline removal that leaves only blanks on its line takes the whole line with it."""
    out: list[Span] = []
    i = 0
    while i < len(spans):
        sp = spans[i]
        if (sp.start, sp.end) in line_scoped:
            out.append(sp)
            i += 1
            continue
        ls, le = _line_bounds(view, sp.start, sp.end)
        j = i
        kept: list[str] = []
        pos = ls
        while j < len(spans) and spans[j].start < le:
            kept.append(view[pos : spans[j].start])
            pos = max(pos, spans[j].end)
            j += 1
        kept.append(view[pos:le])
        if not "".join(kept).strip() and spans[j - 1].end <= le:
            out.append(Span(ls, le, sp.rule))
        else:
            out.extend(spans[i:j])
        i = j
    return out


EMPTIED_FLAG = "boilerplate_only"  # quarantined: nothing but boilerplate was left
KEPT_FLAG = "boilerplate_kept"  # the detector would have emptied a long text: kept untouched by it, flagged


def _keys_for(boilerplate: Sequence[str] | dict[str, Any], site: str) -> list[str]:
    if isinstance(boilerplate, dict):
        return [*boilerplate.get("corpus", ()), *(boilerplate.get("sites") or {}).get(site, ())]
    return list(boilerplate)


def _left_chars(text: str, spans: Sequence[Span]) -> int:
    pos, n = 0, 0
    for sp in spans:
        n += len("".join(text[pos : sp.start].split()))
        pos = max(pos, sp.end)
    return n + len("".join(text[pos:].split()))


@lru_cache(maxsize=1)
def _shipped_plan() -> RulePlan:
    return rule_plan(load_rules())


def removes_whole_line(line: str, rules: Sequence[WatermarkRule] | RulePlan | None = None,
                       line_keys: frozenset[str] = frozenset(), min_chars: int = 8) -> bool:
    """Would the watermark stage take all of this one line: a line rule, inline matches that leave
    only blanks, or a selected boilerplate line key (``line_keys``: keys without their prefix)?
    The splitter asks it before it lets a line title a new essay (shipped rules), the stage after
    the corpus decision (its rules and keys): a line the release removes never opens an essay."""
    text = line.strip("\n") + "\n"
    if not text.strip():
        return False
    spans = find_spans(text, _shipped_plan() if rules is None else rules, line_keys, frozenset(), min_chars)
    return bool(spans) and _left_chars(text, spans) == 0


def remove_watermarks(
    essays: list[Essay], cfg: WatermarkConfig, boilerplate: Sequence[str] | dict[str, Any] = (),
    guard: RuleGuard | None = None,
) -> dict[str, int]:
    """Apply rules + detected boilerplate as edits with stage "watermark"; return counts of chars removed per rule.

    ``boilerplate`` is the reduce's fact (``{"corpus": keys, "sites": {site: keys}}``) or a plain
    list of corpus-level keys.  Also bump essay.stats[f"watermark.{rule}"] with removed char counts,
    and essay.stats["watermark.rule_timeout.<rule>"] on the document where a rule timed out.

    An essay the removals would leave with under ``min_kept_chars`` non-space characters is never
    emptied silently: when the detector's share of what went exceeds ``max_emptied_chars`` (a real
    essay whose body recurs), the detector's spans are dropped and the essay is flagged
    ``boilerplate_kept``; otherwise (a title-only page plus a site line) it is flagged
    ``boilerplate_only`` and the stage quarantines it.
    Timeouts are counted in ``guard`` (``guard.counters()["rule_timeouts"]``): pass one guard per run."""
    rules = rule_plan(load_rules(cfg.rules_file))  # once: a tuple of rules as a cache key costs ~15 us a text
    guard = guard if guard is not None else RuleGuard()
    per_site: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
    removed: dict[str, int] = {}
    for essay in essays:
        site = essay_site(essay) if isinstance(boilerplate, dict) else ""
        if site not in per_site:
            keys = _keys_for(boilerplate, site)
            per_site[site] = (frozenset(k[len(LINE_PREFIX):] for k in keys if k.startswith(LINE_PREFIX)),
                              frozenset(k[len(RUN_PREFIX):] for k in keys if k.startswith(RUN_PREFIX)))
        line_keys, run_keys = per_site[site]
        before = dict(guard.timeouts)
        text = essay.body.text
        spans = find_spans(text, rules, line_keys, run_keys, cfg.min_chars, guard, essay.doc_id)
        for name in guard.timeouts.keys() - before.keys():
            essay.bump(f"{STAGE}.rule_timeout.{name}", 1)
        if not spans:
            continue
        if _left_chars(text, spans) < cfg.min_kept_chars and _left_chars(text, []) >= cfg.min_kept_chars:
            detected = sum(len("".join(text[sp.start:sp.end].split())) for sp in spans if sp.rule in DETECTOR_RULES)
            if detected > cfg.max_emptied_chars:
                spans = [sp for sp in spans if sp.rule not in DETECTOR_RULES]
                essay.add_flag(KEPT_FLAG)
                essay.bump(f"{STAGE}.{KEPT_FLAG}", detected)
            else:
                essay.add_flag(EMPTIED_FLAG)
            if not spans:
                continue
        essay.body.apply([Replacement(s.start, s.end, "", s.rule) for s in spans], STAGE)
        for s in spans:
            n = s.end - s.start
            removed[s.rule] = removed.get(s.rule, 0) + n
            essay.bump(f"{STAGE}.{s.rule}", n)
    return dict(sorted(removed.items()))


def removed_text(essays: Iterable[Essay]) -> list[tuple[str, str]]:
    """(rule, removed raw text) of every watermark edit, for reports and review."""
    return [(e.rule, e.before) for essay in essays for e in essay.body.edits if e.stage == STAGE]


