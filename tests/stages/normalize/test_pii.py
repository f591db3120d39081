"""Personal-data redaction (issue 5): typed placeholders, recorded as normalize edits."""

from __future__ import annotations

import pytest
from tests.helpers.paths import RAW

from corpuspipe.stages import normalize as N
from corpuspipe.config import NormalizeConfig
from corpuspipe.core.edits import TrackedText, rebuild_raw
from corpuspipe.core.records import Essay
from corpuspipe.zh.pii import find_pii, id18_valid



def redact(text: str) -> str:
    out = text
    for r in sorted(find_pii(text), key=lambda r: -r.start):
        out = out[: r.start] + r.after + out[r.end :]
    return out


def test_id18_checksum():
    assert id18_valid("11010519491231002X")
    assert id18_valid("110105194912310021") is False
    assert id18_valid("440524188001010014")


@pytest.mark.parametrize(
    "text,expected",
    [
        ("身份证号11010519491231002X。", "身份证号[身份证号]。"),
        ("身份证号110105194912310021。", "身份证号110105194912310021。"),  # bad checksum
        ("编号911010519491231002X", "编号911010519491231002X"),  # part of a longer number
        ("电话13812345678。", "电话[手机号]。"),
        ("电话：+86 138-1234-5678", "电话：[手机号]"),
        ("订单号213812345678", "订单号213812345678"),  # 12 digits: not a mobile number
        ("共12345678901元", "共12345678901元"),  # 11 digits but no 1[3-9] prefix
        ("联系 foo.bar@example.org 或", "联系 [邮箱] 或"),
        ("学号：2009110686，", "[学号]，"),
        ("学号 2009110686", "[学号]"),
        ("准考证号为 140101200012，", "[准考证号]，"),
        ("工号:A12345", "[工号]"),
        ("2009110686（学号）", "[学号]"),
        ("姓名：王小明，", "姓名：[姓名]，"),
    ],
)
def test_patterns(text, expected):
    assert redact(text) == expected


def test_byline_name_next_to_student_id():
    line = "河北师范大学 数信学院 09级计算数学方向 2009110686（学号）任美黛 在长期执政的历史条件下，建设什么样的党"
    assert redact(line) == "河北师范大学 数信学院 09级计算数学方向 [学号][姓名] 在长期执政的历史条件下，建设什么样的党"


def test_name_before_id_in_byline():
    assert redact("数信学院 李明 学号：2009110686\n正文。") == "数信学院 [姓名] [学号]\n正文。"


@pytest.mark.parametrize(
    "text",
    [
        "学号是学生的编号，在长期执政的条件下。",  # keyword without an ID
        "我们党已经走过了89年的光辉历程，在全国范围内执政将近61年。",
        "学生们认真学习，2009110686（学号）在长期执政的历史条件下",  # not a byline: "在长期" not a name (no surname, no boundary)
    ],
)
def test_ordinary_text_kept(text):
    out = redact(text)
    assert "[姓名]" not in out
    if "（学号）" not in text:
        assert out == text


def test_prose_after_id_in_sentence_not_a_name():
    # the ID sits in running text (sentence punctuation before it): no byline, no name redaction
    text = "他说，学号2009110686王明 同学获奖。"
    assert "[姓名]" not in redact(text)


def test_normalize_records_edits_and_counts():
    seed = (RAW / "004_9fec3fcb0b052c64.txt").read_text(encoding="utf-8")
    e = Essay("004.txt", "0" * 64, 0, TrackedText(seed))
    counts = N.normalize_essays([e], NormalizeConfig())
    assert "2009110686" not in e.text and "任美黛" not in e.text
    assert "[学号][姓名] 在长期执政" in e.text
    rules = {ed.rule for ed in e.body.edits if "pii" in ed.rule}
    assert rules == {"pii_student_id", "pii_name"}
    assert counts["pii_student_id.edits"] == 1 and counts["pii_name.edits"] == 1
    assert counts["pii_name.chars"] == 3
    assert e.stats["redacted.student_id"] == 1 and e.stats["redacted.name"] == 1
    assert rebuild_raw(e.text, e.body.edits) == seed


def test_switches():
    text = "学号：2009110686 电话13812345678"
    e = Essay("t.txt", "0" * 64, 0, TrackedText(text))
    N.normalize_essays([e], NormalizeConfig(redact_pii=False))
    assert "2009110686" in e.text and "13812345678" in e.text
    e = Essay("t.txt", "0" * 64, 0, TrackedText(text))
    N.normalize_essays([e], NormalizeConfig(pii_kinds=("mobile",)))
    assert "2009110686" in e.text and "[手机号]" in e.text


def test_id15_opt_in():
    text = "旧证号110105491231002。"
    assert redact(text) == text
    reps = find_pii(text, id_card_15=True)
    assert [r.rule for r in reps] == ["pii_id_card"]
