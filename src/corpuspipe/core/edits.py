"""Lossless text editing: the raw text is never mutated, edits live beside it as spans.

A :class:`TrackedText` owns one immutable slice of a decoded raw file and a sorted list of
non-overlapping :class:`Edit` spans over it.  The current (clean) text is the raw slice with
each span replaced by its ``after``.  Stages propose replacements in *current* coordinates;
``apply`` maps them back to raw coordinates, merging with earlier edits they touch, so the
invariant ``rebuild_raw(text, edits) == raw`` holds after every stage.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from operator import index, itemgetter
from typing import Any, Iterable, Mapping, NamedTuple


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
        self._edits: list[Edit] = sorted(edits, key=_START_END)  # (raw_start, raw_end), C-level key
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

        Why it is built this way: the normalize stage calls ``apply`` ~6 times per essay with a
        few to thousands of replacements, on essays that already carry thousands of edits.  The
        first version re-sorted and re-created every edit on each call (40 % of normalize on
        Simplified essays, 60 % on Traditional ones).  Now: replacements that lie in a gap
        between two earlier edits (nearly all t2s ones) are found with two bisections per gap
        and turned into edits with one fixed raw shift; the others are grouped with the earlier
        edits they touch (bisection, as before); earlier edits between two changes are copied as
        one list slice when nothing before them changed length, or re-created with one shift;
        the new text is one join.  Same results as the old algorithm (kept in
        tests/core/test_edits_diff.py and run against this one).  bench/profile_edits.py, CPU time,
        two A/B pairs on the shared machine: 2.1-2.9x on pipeline-shaped sequences
        (Traditional essays 0.5-0.7 -> 1.2-1.6 MB/s); apply's share of normalize fell from 40 %
        to 26 % (Simplified with stray Traditional characters) and from 75 % to 51 %
        (Traditional).  What is left there is mostly re-creating the edits behind a length
        change (one Edit per edit per such call, ~0.6 us each).  Tried and not kept: leaving
        those clean offsets lagging (per-run shifts, settled by the first reader) cut apply's
        share on Traditional essays to 33-41 %, but the read then re-creates the same edits
        (~1 us each) and normalize's MB/s stayed within noise (2.51 -> 2.58, 1.75 -> 1.94).
        """
        reps = _checked(replacements, self._text)
        if not reps:
            return 0
        walk = _Walk(self, stage)
        for g, j0, j1 in _blocks(reps, walk.starts, walk.ends):
            if g < 0:
                walk.near(reps, j0, j1)
            else:
                walk.gap(g, reps, j0, j1)
        self._text, self._edits = walk.finish()
        return len(reps)

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


_START_END = itemgetter(0, 1)  # Replacement (start, end)
_ORDER = itemgetter(0, 1, 6)  # Edit (raw_start, raw_end, clean_start): the order of an edit list
_CLEAN_START = itemgetter(6)
_CLEAN_END = itemgetter(7)
_CLEAN_ORDER = itemgetter(0, 1, 2)
_FIRST = itemgetter(0)
_SECOND = itemgetter(1)
_new_edit = tuple.__new__  # Edit(...) without the NamedTuple's Python-level __new__


def _checked(replacements: Iterable[Replacement], text: str) -> list[Replacement]:
    """The replacements that change ``text``, sorted; overlapping or out-of-range ones refused."""
    reps = [r for r in replacements if text[r[0] : r[1]] != r[2]]
    if not reps:
        return reps
    reps.sort(key=_START_END)
    prev = reps[0]
    for r in reps[1:]:
        if r[0] < prev[1]:
            raise ValueError(f"overlapping replacements {prev} and {r}")
        prev = r
    n_text = len(text)
    for r in reps:
        if not (0 <= r[0] <= r[1] <= n_text):
            raise ValueError(f"replacement out of range: {r} (text length {n_text})")
    return reps


class _Walk:
    """One :meth:`TrackedText.apply`: a left-to-right walk over the current text and the earlier
    edits that builds the new edit list and the new text (see ``apply`` for why it is built so).

    State: ``pos`` current text copied so far; ``cur`` next earlier edit not yet copied or folded;
    ``delta`` new clean offset - raw offset relative to base, after the last item; ``prev_end`` raw
    end of the previous item (overlap check); ``last_key`` order check; ``skip`` earlier edits
    folded into merged edits, ascending (``skip_i`` the next one not yet passed); ``pending`` the
    open merge group (its replacements and the earlier edits they touch).
    """

    __slots__ = ("text", "raw", "base", "stage", "old", "n_old", "starts", "ends", "pieces", "out",
                 "pos", "cur", "delta", "prev_end", "last_key", "skip", "skip_i", "pending")

    def __init__(self, tracked: TrackedText, stage: str) -> None:
        self.text = tracked._text
        self.raw = tracked.raw
        self.base = tracked.base
        self.stage = stage
        self.old = old = tracked._edits
        self.n_old = len(old)
        self.starts = list(map(_CLEAN_START, old))
        self.ends = list(map(_CLEAN_END, old))
        self.pieces: list[str] = []
        self.out: list[Edit] = []
        self.pos = 0
        self.cur = 0
        self.delta = 0
        self.prev_end = -1  # raw offsets are >= base >= 0
        self.last_key: tuple[int, int, int] = (-1, -1, -1)
        self.skip: list[int] = []
        self.skip_i = 0
        self.pending: tuple[list[Replacement], list[int]] | None = None

    def near(self, reps: list[Replacement], j0: int, j1: int) -> None:
        """reps[j0:j1] may touch earlier edits: group each with the edits it overlaps (one merged
        edit per group, :meth:`flush`), or place it by bisection when it touches none."""
        starts, ends, old, base = self.starts, self.ends, self.old, self.base
        for r in reps[j0:j1]:
            s, e = r[0], r[1]
            hit: list[int] = []
            for i in range(bisect_left(ends, s), bisect_right(starts, e)):
                a0 = starts[i]
                a1 = ends[i]
                if a0 == a1:  # zero-length earlier edit (a deletion point): strictly inside
                    if s < a0 < e:
                        hit.append(i)
                elif s == e:  # an insertion at an earlier edit's start goes before its text
                    if a0 <= s < a1:
                        hit.append(i)
                elif a0 < e and s < a1:
                    hit.append(i)
            pending = self.pending
            if hit and pending is not None and hit[0] <= pending[1][-1]:
                pending[0].append(r)
                pending[1].extend(i for i in hit if i not in pending[1])
                continue
            if pending is not None:
                self.flush(*pending)
                self.pending = None
            if hit:
                self.pending = ([r], hit)
                continue
            i = bisect_right(ends, s) - 1
            while i >= 0 and ends[i] > s:
                i -= 1
            rs = base + s if i < 0 else old[i][1] + (s - ends[i])
            self.emit(rs, rs + (e - s), r[2], self.stage, r[3], s, e, [])

    def gap(self, g: int, reps: list[Replacement], j0: int, j1: int) -> None:
        """reps[j0:j1] lie strictly inside the gap before earlier edit ``g``: one raw shift for all."""
        if self.pending is not None:
            self.flush(*self.pending)
            self.pending = None
        old, base = self.old, self.base
        d_raw = old[g - 1][1] - self.ends[g - 1] if g else base
        first_r, last_r = reps[j0], reps[j1 - 1]
        key = (first_r[0] + d_raw, first_r[1] + d_raw, first_r[0])
        if key < self.last_key or (g < self.n_old and (last_r[0] + d_raw, last_r[1] + d_raw, last_r[0]) >= _ORDER(old[g])):
            raise AssertionError(f"internal: replacements {j0}:{j1} do not fit the gap before edit {g}")
        self.copy_to(g)
        if key[0] < self.prev_end:
            raise AssertionError(f"internal: overlapping edits after merge at raw {key[0]}")
        text, raw, stage, pieces, out = self.text, self.raw, self.stage, self.pieces, self.out
        pos = self.pos
        sh = d_raw - base + self.delta  # new clean offset = old clean offset + sh
        for r in reps[j0:j1]:
            s, e, after = r[0], r[1], r[2]
            pieces.append(text[pos:s])
            pieces.append(after)
            pos = e
            rs = s + d_raw
            before = raw[rs - base : e + d_raw - base]
            if before != after:
                cs = s + sh
                out.append(_new_edit(Edit, (rs, e + d_raw, before, after, stage, r[3], cs, cs + len(after))))
                sh += len(after) - (e - s)
        self.pos = pos
        self.delta = sh - d_raw + base
        self.prev_end = last_r[1] + d_raw
        self.last_key = (last_r[0] + d_raw, last_r[1] + d_raw, last_r[0])

    def finish(self) -> tuple[str, list[Edit]]:
        """The new text and edit list, once every block is walked."""
        if self.pending is not None:
            self.flush(*self.pending)
        self.copy_to(self.n_old)
        self.pieces.append(self.text[self.pos :])
        return "".join(self.pieces), self.out

    def flush(self, g_reps: list[Replacement], hit: list[int]) -> None:
        """A merged edit: the replacements of one group and the earlier edits they touch."""
        old, text = self.old, self.text
        first, last = old[hit[0]], old[hit[-1]]
        ms = min(g_reps[0][0], first[6])
        me = max(g_reps[-1][1], last[7])
        parts: list[str] = []
        p = ms
        for r in g_reps:
            parts.append(text[p : r[0]])
            parts.append(r[2])
            p = r[1]
        parts.append(text[p:me])
        stages = [s for i in hit for s in old[i][4].split("+")]
        stages.append(self.stage)
        rules = [x for i in hit for x in old[i][5].split("+")]
        rules.extend(r[3] for r in g_reps)
        rs = first[0] - (first[6] - ms)
        rend = last[1] + (me - last[7])
        self.emit(rs, rend, "".join(parts), "+".join(_dedup(stages)), "+".join(_dedup(rules)), ms, me, hit)

    def emit(self, rs: int, rend: int, after: str, stg: str, rule: str, ms: int, me: int, hit: list[int]) -> None:
        """One new edit for current-text span [ms, me) (generic path: bisect its place)."""
        self.pieces.append(self.text[self.pos : ms])
        self.pieces.append(after)
        self.pos = me
        key = (rs, rend, ms)
        if key < self.last_key:
            raise AssertionError(f"internal: new edits out of order: {self.last_key} {key}")
        self.last_key = key
        at = bisect_right(self.old, key, lo=self.cur, key=_ORDER) if self.n_old else 0
        self.skip.extend(sorted(hit))
        self.copy_to(at)
        if rs < self.prev_end:
            raise AssertionError(f"internal: overlapping edits after merge at raw {rs}")
        self.prev_end = rend
        before = self.raw[rs - self.base : rend - self.base]
        if before != after:
            cs = rs - self.base + self.delta
            self.out.append(_new_edit(Edit, (rs, rend, before, after, stg, rule, cs, cs + len(after))))
            self.delta += len(after) - (rend - rs)

    def copy_to(self, at: int) -> None:
        """Copy earlier edits old[cur:at] that were not folded into a merge."""
        skip, skip_i, cur = self.skip, self.skip_i, self.cur
        while cur < at:
            stop = at
            if skip_i < len(skip) and skip[skip_i] < at:
                stop = skip[skip_i]
                if stop < cur:
                    raise AssertionError(f"internal: folded edit {stop} was already copied")
            if cur < stop:
                self.copy_run(cur, stop)
            if stop < at:
                skip_i += 1
                cur = stop + 1
            else:
                cur = stop
        self.cur, self.skip_i = cur, skip_i

    def copy_run(self, a: int, b: int) -> None:
        """Append earlier edits old[a:b] (none folded into a merge) with their new clean offsets.

        Their clean offsets all move by one amount, so a run is one slice when nothing before it
        changed length.
        """
        old = self.old
        first = old[a]
        if first[0] < self.prev_end:
            raise AssertionError(f"internal: overlapping edits after merge at raw {first[0]}")
        last = old[b - 1]
        shift = first[0] - self.base + self.delta - first[6]
        if shift == 0:
            self.out.extend(old[a:b])
        else:
            self.out.extend(
                [
                    _new_edit(Edit, (r0, r1, bf, af, sg, ru, c0 + shift, c1 + shift))
                    for r0, r1, bf, af, sg, ru, c0, c1 in old[a:b]
                ]
            )
        self.delta = last[7] + shift - (last[1] - self.base)
        self.prev_end = last[1]


def _blocks(reps: list[Replacement], starts: list[int], ends: list[int]) -> list[tuple[int, int, int]]:
    """Split sorted replacements into runs: ``(g, j0, j1)`` = reps[j0:j1] all lie strictly inside
    the gap before earlier edit ``g`` (no earlier edit can touch them), ``(-1, j0, j1)`` = they
    may touch earlier edits.

    With fewer earlier edits than replacements (t2s on a fresh essay) the gaps are bisected in
    the replacement list, else each replacement is bisected in the edits: either way a handful
    of C calls per gap or replacement.
    """
    n_old, k = len(starts), len(reps)
    if not n_old:
        return [(0, 0, k)]
    blocks: list[tuple[int, int, int]] = []
    if n_old <= k:
        rs_ = list(map(_FIRST, reps))
        re_ = list(map(_SECOND, reps))
        j = 0
        for g in range(n_old + 1):
            j_lo = bisect_right(rs_, ends[g - 1], j) if g else 0
            j_hi = bisect_left(re_, starts[g], j_lo) if g < n_old else k
            if j_hi > j_lo:
                if j_lo > j:
                    blocks.append((-1, j, j_lo))
                blocks.append((g, j_lo, j_hi))
                j = j_hi
        if j < k:
            blocks.append((-1, j, k))
        return blocks
    cur = [-2, 0, 0]
    for j, r in enumerate(reps):
        lo = bisect_left(ends, r[0])
        g = lo if lo == bisect_right(starts, r[1]) else -1
        if g == cur[0] and cur[2] == j:
            cur[2] = j + 1
        else:
            if cur[0] != -2:
                blocks.append((cur[0], cur[1], cur[2]))
            cur = [g, j, j + 1]
    blocks.append((cur[0], cur[1], cur[2]))
    return blocks


def _dedup(items: list[str]) -> list[str]:
    seen: list[str] = []
    for x in items:
        if x not in seen:
            seen.append(x)
    return seen


EditLike = Any  # an Edit, a row dict from edits.parquet, or an object with the same attributes


def _fields(e: EditLike, names: tuple[str, ...]) -> tuple:
    """The named fields of one edit, whether it is an Edit, a Parquet row dict or a row object.

    Release readers get edits back as ``pyarrow.Table.to_pylist()`` / pandas
    ``to_dict("records")`` dicts (with extra columns such as ``doc_id``), or as
    ``itertuples()`` rows; offsets may be numpy integers.  Offsets must be integers: a float
    (pandas turns a column with nulls into float) is refused rather than truncated.
    """
    if type(e) is Edit:
        return tuple(getattr(e, n) for n in names)
    try:
        if isinstance(e, Mapping):
            vals = tuple(e[n] for n in names)
        else:
            vals = tuple(getattr(e, n) for n in names)
    except (KeyError, AttributeError) as exc:
        raise ValueError(f"edit has no field {exc.args[0] if exc.args else '?'!s} (needs {', '.join(names)})") from None
    out = []
    for n, v in zip(names, vals):
        if n in ("before", "after"):
            if not isinstance(v, str):
                raise ValueError(f"edit field {n} is {type(v).__name__}, not str")
            out.append(v)
        else:
            try:
                out.append(index(v))
            except TypeError:
                raise ValueError(f"edit field {n} is {type(v).__name__}, not an integer") from None
    return tuple(out)


_CLEAN_FIELDS = ("clean_start", "clean_end", "raw_start", "before", "after")
_RAW_FIELDS = ("raw_start", "raw_end", "before", "after")


def rebuild_raw(text: str, edits: Iterable[EditLike]) -> str:
    """Rebuild the raw slice from the clean text and its edits (inverse of ``apply``).

    ``edits`` may be :class:`Edit` tuples or the rows of a release's ``edits.parquet`` as dicts
    or row objects (extra columns are ignored; see :func:`_fields`), in any order: they are
    sorted by (clean_start, clean_end, raw_start), which puts a deletion point before an edit
    starting at the same clean offset and two adjacent deletions in raw order.
    """
    rows = sorted((_fields(e, _CLEAN_FIELDS) for e in edits), key=_CLEAN_ORDER)
    out: list[str] = []
    pos = 0
    for k, (cs, ce, _rs, before, after) in enumerate(rows):
        if text[cs:ce] != after or cs < pos:
            raise ValueError(f"edit {k} (clean {cs}:{ce}) does not match the clean text or overlaps the previous edit")
        out.append(text[pos:cs])
        out.append(before)
        pos = ce
    out.append(text[pos:])
    return "".join(out)


def rebuild_from_raw_offsets(text: str, edits: Iterable[EditLike], base: int = 0) -> str:
    """Same as :func:`rebuild_raw` using only raw offsets and before/after (no clean offsets)."""
    rows = sorted((_fields(e, _RAW_FIELDS) for e in edits), key=_START_END)
    out: list[str] = []
    pos = 0
    shift = 0  # clean - raw so far
    for rs, re_, before, after in rows:
        cs = rs - base + shift
        out.append(text[pos:cs])
        out.append(before)
        pos = cs + len(after)
        shift += len(after) - (re_ - rs)
    out.append(text[pos:])
    return "".join(out)
