"""The lossless edit core: raw text is always rebuilt from clean text + edits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpuspipe.core.edits import Replacement, TrackedText, rebuild_from_raw_offsets, rebuild_raw
from corpuspipe.core import shardio
from corpuspipe.core.records import Essay


def test_inline_removal_then_overlapping_change_merges_into_one_edit():
    raw = "HEAD岗位上。[来源：范文大全 www.ybask.com]通过正确的"
    t = TrackedText(raw[4:], base=4)
    start = t.text.index("[")
    end = t.text.index("]") + 1
    t.apply([Replacement(start, end, "", "source_bracket")], "watermark")
    assert t.text == "岗位上。通过正确的"
    (e,) = t.edits
    assert (e.raw_start, e.raw_end) == (4 + start, 4 + end)
    assert raw[e.raw_start : e.raw_end] == e.before
    # a later stage touching the removal point merges with it: one edit, both rules named
    t.apply([Replacement(3, 5, "。通", "punct")], "normalize")
    assert t.text == "岗位上。通过正确的"  # no-op replacement is ignored
    t.apply([Replacement(3, 5, "!X", "punct")], "normalize")
    (e,) = t.edits
    assert e.rule == "source_bracket+punct" and e.stage == "watermark+normalize"
    assert rebuild_raw(t.text, t.edits) == raw[4:]


def test_successive_insertions_at_one_point_keep_their_order():
    t = TrackedText("ab")
    t.apply([Replacement(1, 1, "X", "first")], "s1")
    t.apply([Replacement(1, 1, "Y", "second")], "s2")
    assert t.text == "aYXb"
    assert rebuild_raw(t.text, t.edits) == "ab"


def test_overlapping_replacements_are_rejected():
    t = TrackedText("abcdef")
    with pytest.raises(ValueError):
        t.apply([Replacement(0, 3, "x", "a"), Replacement(2, 4, "y", "b")], "s")


def test_slice_keeps_edits_and_raw_offsets():
    raw = "title\nbody one\nbody two"
    t = TrackedText(raw)
    t.apply([Replacement(0, 6, "", "title_line")], "ingest")
    sub = t.slice(0, len("body one\n"))
    assert sub.text == "body one\n"
    assert rebuild_raw(sub.text, sub.edits) == raw[sub.base : sub.base + len(sub.raw)]


def test_essay_round_trips_through_a_shard_file(tmp_path):
    t = TrackedText("時間:2022\n正文,内容", base=10)
    t.apply([Replacement(0, 8, "", "time_header"), Replacement(10, 11, "，", "punct")], "x")
    e = Essay("a.txt", "0" * 64, 0, t, title="題", flags=["b", "a"])
    shardio.write_essays(tmp_path / "s.parquet", [e])
    (back,) = shardio.read_essays(tmp_path / "s.parquet")
    assert back.text == e.text and back.body.edits == e.body.edits and back.doc_id == e.doc_id


ALPHABET = "組织,。\n 5臵著abc"


@st.composite
def edit_rounds(draw):
    raw = draw(st.text(alphabet=ALPHABET, max_size=40))
    base = draw(st.integers(0, 20))
    rounds = draw(st.lists(st.lists(st.tuples(st.integers(0, 60), st.integers(0, 4), st.text(alphabet="xy，", max_size=3)), max_size=5), max_size=5))
    return raw, base, rounds


@settings(max_examples=400, deadline=None)
@given(edit_rounds())
def test_any_sequence_of_stages_rebuilds_raw_exactly(case):
    raw, base, rounds = case
    t = TrackedText(raw, base)
    for i, spans in enumerate(rounds):
        reps, pos = [], 0
        for start, length, after in sorted(spans):
            s = max(start % (len(t.text) + 1), pos)
            e = min(s + length, len(t.text))
            if s > len(t.text):
                break
            reps.append(Replacement(s, e, after, f"r{i}"))
            pos = e if e > s else s + 1
        t.apply(reps, f"stage{i}")
        assert rebuild_raw(t.text, t.edits) == raw
        assert rebuild_from_raw_offsets(t.text, t.edits, base) == raw
        assert TrackedText(raw, base, t.edits).text == t.text
        for e in t.edits:
            assert raw[e.raw_start - base : e.raw_end - base] == e.before
            assert t.text[e.clean_start : e.clean_end] == e.after
