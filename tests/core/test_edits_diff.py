"""Differential tests: the fast ``TrackedText.apply`` against the straightforward algorithm it replaced.

``reference_apply`` is the previous implementation, kept verbatim (re-sort every edit, rebuild every
edit object on each call).  Every case must give the same text, the same edit tuples, the same
return value and the same error.
"""

from __future__ import annotations

import bisect
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.helpers import paths

from corpuspipe.core.edits import Edit, Replacement, TrackedText, rebuild_raw

DATA = paths.DATA / "normalize"


# -- the reference: the old algorithm ----------------------------------------------------------


def reference_apply(self: TrackedText, replacements, stage: str) -> int:
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
    fresh: list[tuple[int, int, str, str, str, int]] = []
    for grp_reps, hit in groups:
        if not hit:
            (r,) = grp_reps
            rs = _raw_at(self, r.start, old, ends)
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

    spans: list[tuple[int, int, str]] = []
    for grp_reps, hit in groups:
        if not hit:
            spans.append((grp_reps[0].start, grp_reps[0].end, grp_reps[0].after))
        else:
            first, last = old[hit[0]], old[hit[-1]]
            ms = min(grp_reps[0].start, first.clean_start)
            me = max(grp_reps[-1].end, last.clean_end)
            spans.append((ms, me, ""))
    pieces: list[str] = []
    pos = 0
    for (cs, ce, _after), item in zip(spans, fresh):
        pieces.append(self._text[pos:cs])
        pieces.append(item[2])
        pos = ce
    pieces.append(self._text[pos:])
    new_text = "".join(pieces)

    kept = [e for i, e in enumerate(old) if i not in consumed]
    combined = sorted([*kept, *fresh], key=lambda t: (t[0], t[1], t.clean_start if isinstance(t, Edit) else t[5]))
    for a, b in zip(combined, combined[1:]):
        if b[0] < a[1]:
            raise AssertionError(f"internal: overlapping edits after merge: {a} {b}")
    self._edits = _materialize(self, combined)
    self._text = new_text
    return len(reps)


def _raw_at(self, clean_pos, old, ends):
    i = bisect.bisect_right(ends, clean_pos) - 1
    while i >= 0 and old[i].clean_end > clean_pos:
        i -= 1
    if i < 0:
        return self.base + clean_pos
    return old[i].raw_end + (clean_pos - old[i].clean_end)


def _materialize(self, items):
    out = []
    delta = 0
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


def _overlaps(a0, a1, b0, b1):
    if a0 == a1:
        return b0 <= a0 <= b1 and b0 != b1 and b0 < a0 < b1
    if b0 == b1:
        return a0 <= b0 < a1
    return a0 < b1 and b0 < a1


def _dedup(items):
    seen = []
    for x in items:
        if x not in seen:
            seen.append(x)
    return seen


# -- driving both with the same replacements ------------------------------------------------------


def _outcome(fn, t: TrackedText, reps, stage):
    try:
        return ("ok", fn(t, reps, stage))
    except (ValueError, AssertionError) as exc:
        return (type(exc).__name__, str(exc))


def _same_after(fast: TrackedText, ref: TrackedText, reps: list[Replacement], stage: str) -> None:
    got = _outcome(TrackedText.apply, fast, list(reps), stage)
    want = _outcome(reference_apply, ref, list(reps), stage)
    assert got[0] == want[0], (got, want)
    if got[0] == "ok":
        assert got == want
    assert fast.text == ref.text
    assert fast.edits == ref.edits
    assert all(type(e) is Edit for e in fast.edits)


def _build_reps(t: TrackedText, draws, rule: str, rng_order: random.Random | None = None) -> list[Replacement]:
    """Non-overlapping replacements aimed at random points and at earlier edits' boundaries."""
    n = len(t.text)
    anchors = sorted({p for e in t.edits for p in (e.clean_start, e.clean_end, e.clean_start - 1, e.clean_end + 1) if 0 <= p <= n})
    wanted = []
    for anchor, length, after, at_edit in draws:
        s = anchors[anchor % len(anchors)] if at_edit and anchors else anchor % (n + 1)
        wanted.append((s, length, after))
    reps, pos = [], 0
    for s, length, after in sorted(wanted):
        s = max(s, pos)
        if s > n:
            break
        e = min(s + length, n)
        reps.append(Replacement(s, e, after, rule))
        pos = e
    if rng_order is not None:
        rng_order.shuffle(reps)  # apply sorts; insertions at one point keep their given order
    return reps


ALPHABET = "組织,。\n 5臵著abc"
AFTERS = ["", "x", "y", "，", "xy", "組", "a", "\n"]


@st.composite
def scenarios(draw):
    raw = draw(st.text(alphabet=ALPHABET, max_size=30))
    base = draw(st.integers(0, 7))
    draw_one = st.tuples(st.integers(0, 10**6), st.integers(0, 3), st.sampled_from(AFTERS), st.booleans())
    rounds = draw(st.lists(st.lists(draw_one, max_size=7), min_size=1, max_size=7))
    return raw, base, rounds


@settings(max_examples=2000, deadline=None)
@given(scenarios())
def test_fast_apply_equals_reference_on_random_sequences(case):
    raw, base, rounds = case
    fast, ref = TrackedText(raw, base), TrackedText(raw, base)
    for k, draws in enumerate(rounds):
        reps = _build_reps(fast, draws, f"r{k % 3}")
        _same_after(fast, ref, reps, f"s{k % 2}")
    assert rebuild_raw(fast.text, fast.edits) == raw


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="ab\n", max_size=12), st.lists(st.tuples(st.integers(-2, 14), st.integers(-2, 14), st.sampled_from(AFTERS)), max_size=5))
def test_fast_apply_raises_like_reference_on_bad_replacements(raw, spans):
    fast, ref = TrackedText(raw, 3), TrackedText(raw, 3)
    fast.apply([Replacement(0, min(1, len(raw)), "Z", "first")], "s")
    reference_apply(ref, [Replacement(0, min(1, len(raw)), "Z", "first")], "s")
    _same_after(fast, ref, [Replacement(s, e, a, "bad") for s, e, a in spans], "s2")


def test_fast_apply_equals_reference_on_real_traditional_text():
    """The OpenCC golden document (real Traditional text, 7.7k chars) through pipeline-like rounds."""
    trad = (DATA / "us_constitution_zhs.s2t.txt").read_text(encoding="utf-8")
    simp = (DATA / "us_constitution_zhs.txt").read_text(encoding="utf-8")
    assert len(trad) == len(simp)
    rng = random.Random(11)
    fast, ref = TrackedText(trad, 40), TrackedText(trad, 40)
    # line removals: the first and the last line (the t2s alignment below stays simple)
    lines = [i for i, c in enumerate(trad) if c == "\n"]
    _same_after(fast, ref, [Replacement(0, lines[0] + 1, "", "title"), Replacement(lines[-2] + 1, lines[-1] + 1, "", "tail")], "ingest")
    # t2s: every differing character run, in current coordinates
    off = lines[0] + 1
    reps, i = [], 0
    cur = fast.text
    target = simp[off:]
    while i < len(cur):
        if cur[i] != target[i]:
            j = i
            while j < len(cur) and cur[j] != target[j]:
                j += 1
            reps.append(Replacement(i, j, target[i:j], "t2s"))
            i = j
        else:
            i += 1
    assert len(reps) > 300
    _same_after(fast, ref, reps, "normalize")
    # whitespace, straddling and re-touching rounds aimed at the edits made so far
    for k in range(6):
        draws = [(rng.randrange(10**6), rng.randrange(4), rng.choice(AFTERS), rng.random() < 0.6) for _ in range(rng.randrange(20, 200))]
        _same_after(fast, ref, _build_reps(fast, draws, f"r{k}", rng), f"stage{k % 3}")
    assert rebuild_raw(fast.text, fast.edits) == trad[: len(fast.raw)]


@pytest.mark.parametrize("seed", range(4))
def test_fast_apply_equals_reference_on_seeded_random_rounds(seed):
    """Longer texts and many rounds (hypothesis keeps its examples small)."""
    rng = random.Random(seed)
    raw = "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(200, 600)))
    fast, ref = TrackedText(raw, seed), TrackedText(raw, seed)
    for k in range(40):
        draws = [(rng.randrange(10**6), rng.randrange(4), rng.choice(AFTERS), rng.random() < 0.5) for _ in range(rng.randrange(0, 40))]
        _same_after(fast, ref, _build_reps(fast, draws, f"r{k % 4}", rng), f"s{k % 3}")
    assert rebuild_raw(fast.text, fast.edits) == raw
