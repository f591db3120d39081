"""Lossless text editing: the raw text is never mutated, edits live beside it as spans.

A :class:`TrackedText` owns one immutable slice of a decoded raw file and a sorted list of
non-overlapping :class:`Edit` spans over it.  The current (clean) text is the raw slice with
each span replaced by its ``after``.  Stages propose replacements in *current* coordinates;
``apply`` maps them back to raw coordinates, merging with earlier edits they touch, so the
invariant ``rebuild_raw(text, edits) == raw`` holds after every stage.
"""

from __future__ import annotations

import bisect
from typing import Iterable, NamedTuple


class Replacement(NamedTuple):
    """A proposed change in current-text coordinates: text[start:end] -> after."""

    start: int
    end: int
    after: str
    rule: str


class Edit(NamedTuple):
    """One change to the raw text.

    ``raw_start``/``raw_end`` index the whole decoded raw file; ``clean_start``/``clean_end``
    index the current text of the owning :class:`TrackedText`.  A NamedTuple: stages create
    hundreds of thousands of these, and tuples are several times cheaper than dataclasses.
    """

    raw_start: int
    raw_end: int
    before: str
    after: str
    stage: str
    rule: str
    clean_start: int
    clean_end: int


class TrackedText:
    """An immutable raw slice plus the edits that turn it into the current text."""

    __slots__ = ("raw", "base", "_edits", "_text")

    def __init__(self, raw: str, base: int = 0, edits: Iterable[Edit] = (), text: str | None = None):
        self.raw = raw
        self.base = base
        self._edits: list[Edit] = sorted(edits, key=lambda e: (e.raw_start, e.raw_end))
        self._text = text if text is not None else self._render()

    # -- views -------------------------------------------------------------------------
    @property
    def text(self) -> str:
        return self._text

    @property
    def edits(self) -> list[Edit]:
        return list(self._edits)

    def _render(self) -> str:
        out: list[str] = []
        pos = 0
        for e in self._edits:
            s, t = e.raw_start - self.base, e.raw_end - self.base
            out.append(self.raw[pos:s])
            out.append(e.after)
            pos = t
        out.append(self.raw[pos:])
        return "".join(out)

    def raw_offset(self, clean_pos: int) -> int:
        """Map a current-text offset to the raw file offset it came from (edit starts win)."""
        delta = self.base
        for e in self._edits:
            if e.clean_end <= clean_pos and not (e.clean_start == e.clean_end == clean_pos):
                delta = e.raw_end - e.clean_end
                continue
            if e.clean_start <= clean_pos < e.clean_end or e.clean_start == clean_pos:
                return e.raw_start
            break
        return clean_pos + delta

    # -- editing -----------------------------------------------------------------------
    def apply(self, replacements: Iterable[Replacement], stage: str) -> int:
        """Apply replacements given in current-text coordinates; return how many changed text.

        Replacements must not overlap each other (touching is fine).  A replacement that
        overlaps an earlier edit is merged with it into one edit whose ``before`` is the raw
        text and whose rule names both steps (``old+new``), so nothing is ever lost.
        """
        reps = sorted(
            (r for r in replacements if self._text[r.start : r.end] != r.after),
            key=lambda r: (r.start, r.end),
        )
        if not reps:
            return 0
        for a, b in zip(reps, reps[1:]):
            if b.start < a.end:
                raise ValueError(f"overlapping replacements {a} and {b}")
        for r in reps:
            if not (0 <= r.start <= r.end <= len(self._text)):
                raise ValueError(f"replacement out of range: {r} (text length {len(self._text)})")

        old = self._edits
        starts = [e.clean_start for e in old]
        ends = [e.clean_end for e in old]
        # Group each replacement with the earlier edits it overlaps; two replacements that hit
        # the same earlier edit land in one group and become one merged edit.
        groups: list[tuple[list[Replacement], list[int]]] = []
        for r in reps:
            lo = bisect.bisect_left(ends, r.start)
            hi = bisect.bisect_right(starts, r.end)
            hit = [
                i
                for i in range(max(lo - 1, 0), min(hi + 1, len(old)))
                if _overlaps(old[i].clean_start, old[i].clean_end, r.start, r.end)
            ]
            if groups and hit and groups[-1][1] and hit[0] <= groups[-1][1][-1]:
                groups[-1][0].append(r)
                groups[-1][1].extend(i for i in hit if i not in groups[-1][1])
            else:
                groups.append(([r], hit))

        consumed: set[int] = set()
        fresh: list[tuple[int, int, str, str, str, int]] = []  # raw_start, raw_end, after, stage, rule, clean_start
        for grp_reps, hit in groups:
            if not hit:
                (r,) = grp_reps
                rs = self._raw_at(r.start, old, ends)
                fresh.append((rs, rs + (r.end - r.start), r.after, stage, r.rule, r.start))
                continue
            first, last = old[hit[0]], old[hit[-1]]
            ms = min(grp_reps[0].start, first.clean_start)
            me = max(grp_reps[-1].end, last.clean_end)
            parts: list[str] = []
            pos = ms
            for r in grp_reps:
                parts.append(self._text[pos : r.start])
                parts.append(r.after)
                pos = r.end
            parts.append(self._text[pos:me])
            rs = first.raw_start - (first.clean_start - ms)
            re_ = last.raw_end + (me - last.clean_end)
            stages = [s for i in hit for s in old[i].stage.split("+")] + [stage]
            rules = [x for i in hit for x in old[i].rule.split("+")] + [r.rule for r in grp_reps]
            fresh.append((rs, re_, "".join(parts), "+".join(_dedup(stages)), "+".join(_dedup(rules)), ms))
            consumed.update(hit)

        # New text from the current text: replace each group's clean span by its new content.
        spans: list[tuple[int, int, str]] = []
        for grp_reps, hit in groups:
            if not hit:
                spans.append((grp_reps[0].start, grp_reps[0].end, grp_reps[0].after))
            else:
                first, last = old[hit[0]], old[hit[-1]]
                ms = min(grp_reps[0].start, first.clean_start)
                me = max(grp_reps[-1].end, last.clean_end)
                spans.append((ms, me, ""))  # content comes from the merged edit below
        fresh_iter = iter(fresh)
        pieces: list[str] = []
        pos = 0
        for (cs, ce, after), item in zip(spans, fresh_iter):
            pieces.append(self._text[pos:cs])
            pieces.append(item[2])
            pos = ce
        pieces.append(self._text[pos:])
        new_text = "".join(pieces)

        kept = [e for i, e in enumerate(old) if i not in consumed]
        # Ties at one raw point (insertions) keep their order in the current text.
        combined: list[Edit | tuple] = sorted(
            [*kept, *fresh], key=lambda t: (t[0], t[1], t.clean_start if isinstance(t, Edit) else t[5])
        )
        for a, b in zip(combined, combined[1:]):
            if b[0] < a[1]:
                raise AssertionError(f"internal: overlapping edits after merge: {a} {b}")
        self._edits = self._materialize(combined)
        self._text = new_text
        return len(reps)

    def _raw_at(self, clean_pos: int, old: list[Edit], ends: list[int]) -> int:
        """Raw offset of a clean position that lies outside every edit."""
        i = bisect.bisect_right(ends, clean_pos) - 1
        while i >= 0 and old[i].clean_end > clean_pos:
            i -= 1
        if i < 0:
            return self.base + clean_pos
        return old[i].raw_end + (clean_pos - old[i].clean_end)

    def _materialize(self, items: list) -> list[Edit]:
        """Edits with clean offsets recomputed; unchanged edits are reused when nothing shifted them."""
        out: list[Edit] = []
        delta = 0  # clean - raw(relative)
        base = self.base
        for item in items:
            if isinstance(item, Edit):
                cs = item.raw_start - base + delta
                out.append(item if cs == item.clean_start else item._replace(clean_start=cs, clean_end=cs + len(item.after)))
                delta += len(item.after) - (item.raw_end - item.raw_start)
                continue
            rs, re_, after, stage, rule = item[:5]
            before = self.raw[rs - base : re_ - base]
            if before == after:
                continue
            cs = rs - base + delta
            out.append(Edit(rs, re_, before, after, stage, rule, cs, cs + len(after)))
            delta += len(after) - (re_ - rs)
        return out

    def slice(self, start: int, end: int) -> "TrackedText":
        """A TrackedText for current-text range [start, end); edits must not straddle the cuts."""
        for e in self._edits:
            if e.clean_start < start < e.clean_end or e.clean_start < end < e.clean_end:
                raise ValueError(f"cut at {start}/{end} straddles edit {e}")
        rs, re_ = self.raw_offset_exact(start), self.raw_offset_exact(end)
        sub = [
            Edit(e.raw_start, e.raw_end, e.before, e.after, e.stage, e.rule, e.clean_start - start, e.clean_end - start)
            for e in self._edits
            if rs <= e.raw_start and e.raw_end <= re_ and start <= e.clean_start and e.clean_end <= end
        ]
        return TrackedText(self.raw[rs - self.base : re_ - self.base], rs, sub, self._text[start:end])

    def raw_offset_exact(self, clean_pos: int) -> int:
        """Raw offset for a clean position at an edit boundary or outside edits."""
        delta = 0
        for e in self._edits:
            if e.clean_start >= clean_pos:
                break
            delta = (e.raw_end - self.base) - e.clean_end
        return self.base + clean_pos + delta


def _overlaps(a0: int, a1: int, b0: int, b1: int) -> bool:
    if a0 == a1:  # zero-length old edit (pure deletion point) touching the new span
        return b0 <= a0 <= b1 and b0 != b1 and b0 < a0 < b1
    if b0 == b1:  # an insertion at an earlier edit's start goes before that edit's text: merge
        return a0 <= b0 < a1
    return a0 < b1 and b0 < a1


def _dedup(items: list[str]) -> list[str]:
    seen: list[str] = []
    for x in items:
        if x not in seen:
            seen.append(x)
    return seen


def rebuild_raw(text: str, edits: Iterable[Edit]) -> str:
    """Rebuild the raw slice from the clean text and its edits (inverse of ``apply``)."""
    out: list[str] = []
    pos = 0
    for e in sorted(edits, key=lambda e: e.clean_start):
        if text[e.clean_start : e.clean_end] != e.after:
            raise ValueError(f"edit does not match clean text at {e.clean_start}: {e}")
        out.append(text[pos : e.clean_start])
        out.append(e.before)
        pos = e.clean_end
    out.append(text[pos:])
    return "".join(out)


def rebuild_from_raw_offsets(text: str, edits: Iterable[Edit], base: int = 0) -> str:
    """Same as :func:`rebuild_raw` using only raw offsets and before/after (no clean offsets)."""
    out: list[str] = []
    pos = 0
    shift = 0  # clean - raw so far
    for e in sorted(edits, key=lambda e: (e.raw_start, e.raw_end)):
        cs = e.raw_start - base + shift
        out.append(text[pos:cs])
        out.append(e.before)
        pos = cs + len(e.after)
        shift += len(e.after) - (e.raw_end - e.raw_start)
    out.append(text[pos:])
    return "".join(out)
