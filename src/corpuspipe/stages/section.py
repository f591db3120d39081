"""Outline detection: turn one essay's cleaned text into a tree of numbered sections.

Chinese essays and reports number their parts with a handful of marker families (GB/T 9704:
``一、`` -> ``（一）`` -> ``1.``/``1、`` -> ``（1）``; plus ``①``, ``A.``, ``第一，``, ``一是``,
``首先/其次``, ``第X章/节/部分``, and ``第X条`` in laws).  Authors do not follow the standard
order, so nesting is inferred per essay from the order in which families appear: a family that
is not open nests under the innermost open section; an open family closes everything opened
after it.  Two fixed exceptions: 章/节/部分 never nest inside an article or list item, and a bare
``一、`` title line never nests inside an article (appendices after the last 第X条).

The marker grammar (family patterns, the compiled matcher, ordinal parsing) is
:mod:`corpuspipe.zh.outline`'s, shared with ingest, normalize and watermark.  Markers are found by
one compiled regex (line starts; ``一是``/``第一，``/``首先`` also after a
sentence or clause end) and kept only when they form runs ("chains") of consecutive ordinals,
which rejects ``1.5亿``, dates, a lone ``三、`` and ``一是`` inside a clause.  A run may only
continue while its previous item is still open: a link that the tree shows to cross a higher
section (``二是`` in （二） continuing ``一是`` in （一）) is dropped and the runs are relinked.

Conventions (the flow relies on them):

* Offsets index the text given; ``text[s.char_start:s.char_end]`` is the section including its
  subsections.  A section starts at its marker (leading indentation belongs to the section
  before) and ends where the next section at the same or a higher level starts, or at the end.
* Text before the first marker is the *preamble*: path ``"0"``, level 1, ordinal 0, marker ``""``,
  family ``"preamble"``, no heading.  An essay without markers is one preamble section.
  Whitespace-only text yields no sections.
* ``path`` numbers sections by position among siblings (``"2.1"``), not by the marker's own
  number, so ``C.`` opening an essay has path ``"1"``.
* ``heading`` is the rest of the marker's line when that line is short and a single sentence,
  else the run-in first sentence when short enough, else ``None``.  Articles (``第X条``) never
  have a heading: their first sentence is content.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Mapping, NamedTuple

from pydantic import Field

from corpuspipe.core.config import ConfigSection, PipelineConfigBase

from corpuspipe.core.records import SectionRow, Shard
from corpuspipe.core.stage import Context, ShardStage, StageReport
from corpuspipe.zh import outline
from corpuspipe.zh.chars import HSPACE, SEMICOLONS, SENTENCE_END
from corpuspipe.zh.numerals import cn_to_int

__all__ = ["OutlineNode", "Section", "SectionConfig", "section_text", "cn_numeral", "FAMILIES"]


class SectionConfig(ConfigSection):
    """Outline detection."""

    max_heading_chars: int = Field(60, ge=1)
    min_sequence: int = Field(2, ge=1)  # run-in markers inside a paragraph need a sequence this long


class OutlineNode(NamedTuple):
    """One node of an essay's outline (a NamedTuple: the stage turns each into a
    :class:`~corpuspipe.core.records.SectionRow` by prefixing the doc_id, one tuple concatenation)."""

    path: str  # ordinal path like "2.1"; the preamble is "0"
    level: int  # 1 = top; the preamble is level 1 too
    ordinal: int  # position among siblings, 1-based (preamble 0)
    marker: str  # e.g. "一、", "（一）", "1、", "一是", "C.", "第一，"
    marker_family: str  # see FAMILIES
    heading: str | None
    char_start: int
    char_end: int
    parent_path: str | None


_SP = HSPACE
_MAX_OPEN_RUNS = 64  # runs of one family a marker may continue (bounds the work on hostile input)
_NO_HEADING = frozenset({"tiao"})  # articles never have a heading: their first sentence is content

# The grammar (families, matchers, ordinals) is corpuspipe.zh.outline's; these names are the
# ones this module always used.
FAMILIES = outline.FAMILIES
_INLINE_FAMILIES = outline.INLINE_FAMILIES
_STRONG_FAMILIES = outline.STRONG_FAMILIES
_STRUCTURAL = outline.STRUCTURAL_FAMILIES
_MARKER_RE, _FIRST_RE = outline.section_matchers()
_ordinal = outline.ordinal
cn_numeral = cn_to_int

_SENT_END_RE = re.compile(f"[{SENTENCE_END}{SEMICOLONS}]")
_CLAUSE_END = SENTENCE_END + SEMICOLONS + "：:，,、"
_HEAD_STRIP = _SP + "，,：:。！？；!?;、.．"


@dataclass
class _Cand:
    pos: int  # marker start (after indentation)
    end: int  # marker end
    family: str
    marker: str
    number: int
    line_start: bool
    heading: str | None = None
    style: int = 0  # 2: bare title line, 1: short one-sentence line, 0: run-in
    chain: int = -1


def _heading(text: str, c: _Cand, max_chars: int) -> tuple[str | None, int]:
    """(heading, style) of a marker; see _Cand.style."""
    body = c.end
    line_end = text.find("\n", body)
    if line_end < 0:
        line_end = len(text)
    if c.line_start and line_end - body <= max_chars + 4:
        line = text[body:line_end].strip(_SP)
        if line and len(line) <= max_chars:
            m = _SENT_END_RE.search(line)
            if m is None or m.end() == len(line):  # the whole line is one short sentence
                style = 2 if line[-1] not in _CLAUSE_END else 1
                return (None if c.family in _NO_HEADING else line.strip(_HEAD_STRIP) or None), style
    if c.family in _NO_HEADING:
        return None, 0
    window = text[body : min(line_end, body + max_chars + 2)]
    m = _SENT_END_RE.search(window)
    if m is None or m.start() > max_chars:
        return None, 0
    return window[: m.start()].strip(_HEAD_STRIP) or None, 0


def _candidates(text: str, max_chars: int) -> list[_Cand]:
    out: list[_Cand] = []
    first = _FIRST_RE.match(text)
    matches = _MARKER_RE.finditer(text)
    for m in itertools.chain((first,) if first else (), matches):
        family = m.lastgroup
        if family is None or family == "sep":
            continue
        inline = m.re is _MARKER_RE and m.group("sep") != "\n"
        if inline and family not in _INLINE_FAMILIES:
            continue
        start, end = m.span(family)
        marker = m.group(family)
        number = _ordinal(family, marker)
        if number is None or number > 999:
            continue
        if family == "first_next" and number == 0 and not marker.endswith(("，", ",", "：", ":")):
            continue
        c = _Cand(start, end, family, marker, number, not inline)
        c.heading, c.style = _heading(text, c, max_chars)
        out.append(c)
    return out


def _link(cands: list[_Cand], allowed: dict[int, frozenset[int]]) -> None:
    """Link candidates of a family into runs ("chains") of consecutive ordinals.

    A candidate continues the most recent run that ends one below it, preferring a run whose
    last item is a bare title line if it is one itself: ``三、保障条件`` continues
    ``二、主要措施``, not a ``二、落实责任；`` list item nested in between.  ``allowed`` maps a
    marker position to the predecessor positions the tree left possible (the open sections of
    its family when it arrived), once a first link was shown to be impossible.
    """
    last_of: list[_Cand] = []  # chain id -> its last candidate so far
    open_by_family: dict[str, list[int]] = {}  # family -> chain ids, most recent last
    for c in cands:
        target = -1
        if c.number != 1:
            only = allowed.get(c.pos)
            fallback = -1
            for cid in reversed(open_by_family.get(c.family, ())[-_MAX_OPEN_RUNS:]):
                last = last_of[cid]
                if only is not None and last.pos not in only:
                    continue
                if last.number + 1 == c.number or (c.number == 0 and last.number >= 1):
                    if (last.style == 2) == (c.style == 2):
                        target = cid
                        break
                    if fallback < 0:
                        fallback = cid
            if target < 0:
                target = fallback
        if target < 0:
            target = len(last_of)
            last_of.append(c)
            open_by_family.setdefault(c.family, []).append(target)
        last_of[target] = c
        c.chain = target


def _accept(cands: list[_Cand], min_sequence: int) -> tuple[list[_Cand], dict[int, int]]:
    """Keep believable runs: long enough, or a lone first item at a line start of a strong family.

    Returns the kept candidates and, per kept chain, the position of its last item.
    """
    members: dict[int, list[_Cand]] = {}
    for c in cands:
        members.setdefault(c.chain, []).append(c)
    last_pos: dict[int, int] = {}
    for cid, run in members.items():
        first = run[0]
        ok = len(run) >= max(min_sequence, 1)
        if not ok and len(run) == 1:
            ok = first.number == 1 and first.line_start and first.family in _STRONG_FAMILIES
        if ok and first.family == "first_next" and first.number != 1:
            ok = False  # 其次/最后 without 首先 is prose
        if ok:
            last_pos[cid] = run[-1].pos
    return [c for c in cands if c.chain in last_pos], last_pos


_Record = tuple[str, int, int, _Cand, str | None]  # path, level, ordinal, marker, parent path


def _tree(
    marks: list[_Cand], chain_end: dict[int, int], n: int
) -> tuple[list[_Record], list[int], dict[int, frozenset[int]]]:
    """Nest the kept markers with a stack of open sections.

    Returns (path, level, ordinal, cand, parent) records, their end offsets, and for each marker
    that continues a run whose previous item was already closed by a higher section (``二是``
    under （二） continuing an ``一是`` under （一）) the positions of the open sections of its
    family: only those can be its predecessor.
    """
    records: list[_Record] = []
    ends: list[int] = []
    stack: list[tuple[str, int, int]] = []  # (family, chain, record index)
    child_count: dict[str | None, int] = {}
    seen_chains: set[int] = set()
    broken: dict[int, frozenset[int]] = {}

    def close(k: int, at: int) -> None:
        for entry in stack[k:]:
            ends[entry[2]] = at
        del stack[k:]

    for c in marks:
        k = len(stack) - 1
        while k >= 0 and stack[k][1] != c.chain:
            k -= 1
        if k < 0 and c.chain in seen_chains and c.family != "tiao":
            # (articles are numbered across chapters by design)
            broken[c.pos] = frozenset(records[e[2]][3].pos for e in stack if e[0] == c.family)
        seen_chains.add(c.chain)
        if k < 0:
            k = len(stack) - 1
            while k >= 0 and stack[k][0] != c.family:
                k -= 1
        if k >= 0:
            open_chain = stack[k][1]
            if open_chain == c.chain or c.number != 1:
                close(k, c.pos)  # next sibling of the open section of this family
            elif chain_end[open_chain] > c.pos or (k < len(stack) - 1 and c.style != 2):
                pass  # a new list inside an open item (一、 list under 二、, （一） list in an article): nest
            else:
                close(k, c.pos)  # the open run is over: a restart at its level
        else:
            # A family seen here for the first time nests under the innermost open section,
            # except that structure (章/节/部分) never nests inside an article or a list item,
            # and a bare 一、 title line never nests inside an article.
            j = len(stack)
            if c.family in _STRUCTURAL:
                while j > 0 and stack[j - 1][0] not in _STRUCTURAL:
                    j -= 1
            elif c.style == 2 and c.family == "cn_dun":
                while j > 0 and stack[j - 1][0] == "tiao":
                    j -= 1
            close(j, c.pos)
        parent = records[stack[-1][2]][0] if stack else None
        ordinal = child_count.get(parent, 0) + 1
        child_count[parent] = ordinal
        path = f"{parent}.{ordinal}" if parent else str(ordinal)
        records.append((path, len(stack) + 1, ordinal, c, parent))
        ends.append(n)
        stack.append((c.family, c.chain, len(records) - 1))
    return records, ends, broken


def section_text(text: str, cfg: SectionConfig) -> list[OutlineNode]:
    """Outline tree of one essay's cleaned text, sorted by (char_start, level)."""
    if not text.strip():
        return []
    n = len(text)
    cands = _candidates(text, cfg.max_heading_chars)
    allowed: dict[int, frozenset[int]] = {}
    for _ in range(4):  # relink impossible links and rebuild; <= 2 rounds on all external texts
        _link(cands, allowed)
        marks, chain_end = _accept(cands, cfg.min_sequence)
        records, ends, broken = _tree(marks, chain_end, n)
        if not broken:
            break
        allowed.update(broken)

    first = marks[0].pos if marks else n
    out: list[OutlineNode] = []
    if text[:first].strip():
        out.append(OutlineNode("0", 1, 0, "", "preamble", None, 0, first, None))
    for (path, level, ordinal, c, parent), end in zip(records, ends):
        out.append(OutlineNode(path, level, ordinal, c.marker, c.family, c.heading, c.pos, end, parent))
    out.sort(key=lambda s: (s.char_start, s.level))
    return out


_new_row = tuple.__new__  # SectionRow(doc_id, *node) without the NamedTuple's Python-level __new__

#: counter prefix of the sections per outline level (folded into ``per_level`` by :meth:`Section.report`)
_PER_LEVEL = "per_level."


class Section(ShardStage):
    """The outline of every essay (offsets into its clean text)."""

    name = "section"
    config_sections = ("section",)

    def process(self, batch: Shard, ctx: Context) -> Shard:
        n = 0
        levels: dict[int, int] = {}
        for e in batch.essays:
            doc_id = e.doc_id
            head = (doc_id,)
            e.sections = [_new_row(SectionRow, head + s) for s in section_text(e.body.text, ctx.cfg.section)]
            n += len(e.sections)
            for s in e.sections:
                levels[s.level] = levels.get(s.level, 0) + 1
        ctx.count(self.name, "sections", n)
        ctx.count_all(self.name, {f"{_PER_LEVEL}{lv}": k for lv, k in levels.items()})
        return batch

    def report(self, counts: Mapping[str, int], fact: None, cfg: PipelineConfigBase) -> StageReport:
        """``per_level``: released sections per outline level ({"1": n, "2": n, ...}); every section
        the stage makes is released (no later stage drops an essay)."""
        plain = {k: v for k, v in counts.items() if not k.startswith(_PER_LEVEL)}
        per_level = {k.removeprefix(_PER_LEVEL): v for k, v in counts.items() if k.startswith(_PER_LEVEL)}
        return StageReport(counts={**dict(sorted(plain.items())), "per_level": dict(sorted(per_level.items()))})
