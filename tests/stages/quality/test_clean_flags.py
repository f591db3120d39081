"""Issue 12 part 5: junk and damage flagged on real text, never dressed up."""

from __future__ import annotations

import random

import numpy as np
import pytest
from tests.helpers import paths

from corpuspipe.config import NormalizeConfig
from corpuspipe.core.edits import TrackedText
from corpuspipe.core.records import Essay
from corpuspipe.stages.ingest.files import _finish_essay
from corpuspipe.config import IngestConfig
from corpuspipe.stages.normalize import normalize_essay
from corpuspipe.stages.quality.flags import encoding_damage, junk_flags, quality_flags


def _body(content: str) -> str:
    cut = [content.find(m) for m in ("本作品", "这部作品", "Public domain") if m in content]
    return content[: min(cut)] if cut else content


def _normalized(text: str) -> Essay:
    e = Essay("a.txt", "0" * 64, 0, TrackedText(text))
    normalize_essay(e, NormalizeConfig())
    return e


def test_no_junk_or_damage_flag_on_any_real_report(gov_reports: list[dict]) -> None:
    flagged = [r["title"] for r in gov_reports if quality_flags(_body(r["content"]))]
    assert flagged == []


def test_complete_reports_are_not_truncated_and_cut_ones_are(gov_reports: list[dict]) -> None:
    reports = [r for r in gov_reports if len(_body(r["content"])) > 3000][:12]
    for r in reports:
        body = _body(r["content"]).rstrip()
        assert "truncated" not in _normalized(body).flags, r["title"]
        cut = body[: len(body) // 2].rstrip("。！？!?\n ")
        if cut[-1:] and "\n" not in cut[-12:]:
            assert "truncated" in _normalized(cut).flags, r["title"]
    # a Wikisource `false` tail or a date line is no evidence of truncation
    assert "truncated" not in _normalized("第一段正文。\nfalse").flags
    assert "truncated" not in _normalized("第一段正文。\n二〇二四年三月五日").flags


def test_lossy_reencode_is_flagged_and_question_marks_stay_half_width(gov_reports: list[dict]) -> None:
    trad = next(r for r in gov_reports if "國" in r["content"][:2000])
    lossy = _body(trad["content"]).encode("gb2312", errors="replace").decode("gb2312")[:6000]
    assert encoding_damage(lossy)
    e = _normalized(lossy)
    assert "encoding_damage" in e.flags
    assert e.body.text.count("？") <= lossy.count("？")  # no `?` dressed up as a full-width question mark
    assert e.body.text.count("?") >= 3


def test_sparse_real_question_marks_are_not_damage(gov_reports: list[dict]) -> None:
    # the 10th CPC congress report writes a few half-width `?` as real questions
    r = next(r for r in gov_reports if "是立党为私?" in r["content"])
    assert not encoding_damage(_body(r["content"]))


def test_replacement_characters_are_damage(gov_reports: list[dict]) -> None:
    raw = bytearray(_body(gov_reports[0]["content"]).encode("utf-8")[:3000])
    del raw[1001]
    assert encoding_damage(raw.decode("utf-8", errors="replace"))


def test_box_drawing_from_random_bytes_and_punctuation_only_are_junk() -> None:
    rnd = random.Random(3)
    junk = bytes(rnd.randrange(0xA1, 0xF9) for _ in range(2000)).decode("cp950", errors="replace")
    assert "mostly_non_han" in junk_flags("╰" * 2000)
    assert quality_flags(junk)  # damage or junk, never clean
    assert junk_flags("……——！！？？。。，，、、；；：：“”《》" * 12) == ["punctuation_only"]
    assert junk_flags("现在，我代表国务院，向大会报告政府工作。") == []


def test_bidi_and_zero_width_controls_are_stripped_from_titles_and_counted() -> None:
    e = Essay("a.txt", "0" * 64, 0, TrackedText("正文。" * 30), title="政府\u202e工作\u200b报告\u2066")
    _finish_essay(e, IngestConfig(), [], [])
    assert e.title == "政府工作报告"
    assert e.stats["ingest.title_controls"] == 3


def _letter_counts_masks(text: str) -> tuple[int, int, int, int]:
    """The former version with one mask per class: the reference for the class table."""
    from corpuspipe.stages.quality import flags as QF

    space, ascii_alnum, other_t = QF._tables()
    cp = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    han_m = ((cp >= 0x3400) & (cp <= 0x4DBF)) | ((cp >= 0x4E00) & (cp <= 0x9FFF)) | \
        ((cp >= 0xF900) & (cp <= 0xFAFF)) | ((cp >= 0x20000) & (cp <= 0x3134F))
    bmp = cp < 0x10000
    idx = np.where(bmp, cp, 0).astype(np.intp)
    sp = space[idx] & bmp
    rest = ~han_m & ~sp
    latin = int(np.count_nonzero(rest & bmp & ascii_alnum[idx]))
    other = int(np.count_nonzero(rest & ((bmp & other_t[idx]) | ~bmp)))
    han = int(np.count_nonzero(han_m))
    punct = int(np.count_nonzero(rest)) - latin - other
    return han, latin, other, punct


def test_letter_counts_by_class_table_equal_the_masks():
    from pathlib import Path

    from corpuspipe.stages.quality import flags as QF

    data = paths.DATA / "normalize"
    texts = [(data / n).read_text(encoding="utf-8") for n in ("gov_2025_simplified.txt", "cpc_3_traditional.txt",
                                                              "gov_1956_fullwidth_digits.txt")]
    # every code point but the surrogates, in slices: each class and table edge is met
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    texts += [every[i:i + 50_000] for i in range(0, len(every), 50_000)] + ["", " \u3000\n", "DDDD", "╰╰╰"]
    for t in texts:
        assert QF._letter_counts(t) == _letter_counts_masks(t)
