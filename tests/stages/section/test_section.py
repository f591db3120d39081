"""Sectioning (issue 6): outline trees of the seed essays, real law/report text, false markers,
and offset invariants over generated outlines."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.helpers import paths

from corpuspipe.config import SectionConfig
from corpuspipe.stages.section import OutlineNode, cn_numeral, section_text

REPO = paths.REPO
RAW = REPO / "raw"
DATA = paths.DATA / "section"
CFG = SectionConfig()
_MD_HEAD = re.compile(r"^#+\s*", re.M)


# ---------------------------------------------------------------- helpers


def check_invariants(text: str, secs: list[OutlineNode]) -> None:
    """Offsets, paths and nesting are consistent; top-level sections tile the document."""
    assert secs == sorted(secs, key=lambda s: (s.char_start, s.level))
    by_path = {s.path: s for s in secs}
    assert len(by_path) == len(secs)
    for s in secs:
        assert 0 <= s.char_start < s.char_end <= len(text)
        assert text[s.char_start : s.char_start + len(s.marker)] == s.marker
        if s.parent_path is None:
            assert s.level == 1 and "." not in s.path
        else:
            p = by_path[s.parent_path]
            assert s.level == p.level + 1
            assert s.path == f"{p.path}.{s.ordinal}"
            assert p.char_start < s.char_start and s.char_end <= p.char_end
    tops = [s for s in secs if s.level == 1]
    assert tops[0].char_start == 0 or not text[: tops[0].char_start].strip()
    assert tops[-1].char_end == len(text)
    for a, b in zip(tops, tops[1:]):
        assert a.char_end == b.char_start
    for s in secs:  # children are contiguous and end with their parent
        kids = [k for k in secs if k.parent_path == s.path]
        for a, b in zip(kids, kids[1:]):
            assert a.char_end == b.char_start
        if kids:
            assert kids[-1].char_end == s.char_end
            assert [k.ordinal for k in kids] == list(range(1, len(kids) + 1))


def outline(secs: list[OutlineNode]) -> list[tuple[str, str]]:
    return [(s.path, s.marker) for s in secs]


def kids(secs: list[OutlineNode], parent: str | None) -> list[OutlineNode]:
    return [s for s in secs if s.parent_path == parent and s.marker_family != "preamble"]


@pytest.fixture(scope="module")
def seeds() -> dict[str, str]:
    """Cleaned essay bodies of the raw seeds through the real chain: ingest -> watermark -> normalize.

    Keyed by "<file prefix>:<essay index>"; also "004:union" for the trade-union essay of 004.
    """
    from corpuspipe.config import PipelineConfig
    from corpuspipe.stages.ingest.files import ingest_file
    from corpuspipe.stages.normalize import normalize_essays
    from corpuspipe.stages.watermark import remove_watermarks

    cfg = PipelineConfig()
    essays = []
    for path in sorted(RAW.glob("*.txt")):
        essays += ingest_file(RAW, path.name, cfg.ingest).essays
    remove_watermarks(essays, cfg.watermark)
    normalize_essays(essays, cfg.normalize)
    out = {f"{e.source_path[:3]}:{e.essay_index}": e.body.text for e in essays}
    union = [e.body.text for e in essays if e.source_path.startswith("004") and "工会" in (e.title or "")]
    assert len(union) == 1
    out["004:union"] = union[0]
    return out


def strip_markdown(md: str) -> str:
    """Real input has no Markdown: drop '#' markup, the '# title' line and the INFO marker."""
    lines = md.split("\n")
    lines = ["" if ln.startswith("# ") or ln.strip() == "<!-- INFO END -->" else _MD_HEAD.sub("", ln) for ln in lines]
    return "\n".join(lines)


# ---------------------------------------------------------------- seeds (acceptance)


def test_seed_000_four_runin_tops_with_three_shi_children(seeds: dict[str, str]) -> None:
    text = seeds["000:0"]
    secs = section_text(text, CFG)
    check_invariants(text, secs)
    assert secs[0].marker_family == "preamble" and secs[0].path == "0"
    tops = kids(secs, None)
    assert [s.marker for s in tops] == ["一、", "二、", "三、", "四、"]
    for top in tops:
        assert [s.marker for s in kids(secs, top.path)] == ["一是", "二是", "三是"]
    # run-in heading: to the first sentence end
    assert tops[0].heading == "构建和谐社会，关键在党，关键在人，关键在各级干部特别是领导干部"
    assert tops[3].heading == "人才兴则事业兴"


def test_seed_001_arabic_nests_under_second_top(seeds: dict[str, str]) -> None:
    text = seeds["001:0"]
    secs = section_text(text, CFG)
    check_invariants(text, secs)
    tops = kids(secs, None)
    assert [s.marker for s in tops] == ["一、", "二、", "三、"]
    assert [s.marker for s in kids(secs, tops[1].path)] == ["1、", "2、", "3、", "4、"]
    # 一是… inside the paragraphs of 1、 and 3、 are run-in grandchildren
    assert [s.marker for s in kids(secs, tops[1].path + ".1")] == ["一是", "二是", "三是"]
    assert [s.marker for s in kids(secs, tops[2].path)] == ["一是", "二是", "三是", "四是"]
    assert kids(secs, tops[2].path)[0].heading == "强化学习意识"  # converted to Simplified upstream


def test_seed_002_three_tops_with_shi_and_paren_children(seeds: dict[str, str]) -> None:
    text = seeds["002:0"]
    secs = section_text(text, CFG)
    check_invariants(text, secs)
    tops = kids(secs, None)
    assert [s.marker for s in tops] == ["一、", "二、", "三、"]
    assert [s.marker for s in kids(secs, "1")] == ["一是", "二是", "三是", "四是", "五是"]
    assert [s.marker for s in kids(secs, "2")] == ["（一）", "（二）", "（三）", "（四）", "（五）"]
    assert [s.marker for s in kids(secs, "3")] == ["（一）", "（二）", "（三）", "（四）", "（五）", "（六）"]
    assert [s.marker for s in kids(secs, "2.1")] == ["一是", "二是", "三是", "四是"]
    assert tops[0].heading == "坚持以理念创新为先导，使组织工作始终体现时代性"


def test_seed_003_letters_on_top_and_di_comma_under_d(seeds: dict[str, str]) -> None:
    text = seeds["003:0"]
    secs = section_text(text, CFG)
    check_invariants(text, secs)
    tops = kids(secs, None)
    assert [s.marker for s in tops] == ["C.", "D.", "E."]
    assert [s.path for s in tops] == ["1", "2", "3"]
    assert [s.marker for s in kids(secs, "2")] == ["第一，", "第二，", "第三，"]
    assert [s.marker for s in kids(secs, "1")] == ["一是", "二是", "三是"]
    assert tops[0].heading == "继续大力深化干部制度改革，为和谐社会建设提供制度保障"
    assert kids(secs, "2")[0].marker_family == "di_comma"


def test_seed_004_union_essay_has_five_tops(seeds: dict[str, str]) -> None:
    text = seeds["004:union"]
    secs = section_text(text, CFG)
    check_invariants(text, secs)
    tops = kids(secs, None)
    assert [s.marker for s in tops] == ["一、", "二、", "三、", "四、", "五、"]
    assert tops[0].heading == "强化工会的思想建设"
    assert [s.marker for s in kids(secs, "1")] == ["一是", "二是", "三是", "四是"]
    assert [s.marker for s in kids(secs, "3")] == ["（一）", "（二）", "（三）", "（四）"]
    assert kids(secs, "4") == []


def test_all_seed_essays_are_consistent(seeds: dict[str, str]) -> None:
    """Every seed essay (9, incl. the multi-essay file) gives a valid tree; no run-in orphan."""
    assert len(seeds) == 10  # 9 essays + the "004:union" alias
    for key, text in seeds.items():
        secs = section_text(text, CFG)
        check_invariants(text, secs)
        for s in secs:
            if s.marker_family in ("cn_shi", "di_comma", "first_next", "latin_dot"):
                sib = [k for k in secs if k.parent_path == s.parent_path and k.marker_family == s.marker_family]
                assert len(sib) >= CFG.min_sequence, (key, s)
    assert [s.marker_family for s in section_text(seeds["004:4"], CFG)] == ["preamble"]  # no markers at all


def test_lone_shi_in_second_item_does_not_join_a_later_run(seeds: dict[str, str]) -> None:
    """004 essay 2: （二）…。二是… has no 一是; it must not chain with 三是/四是 under another （二）."""
    secs = section_text(seeds["004:1"], CFG)
    problems = next(s for s in secs if s.heading == "存在问题及原因")
    assert all(s.marker_family != "cn_shi" for s in secs if s.path.startswith(problems.path + "."))
    text = "一、甲\n（一）乙。\n（二）丙。有些干部不深入。二是个别干部不能深入基层。\n（三）丁。三是完善方式。四是强化监督。"
    assert [s.marker for s in section_text(text, CFG)] == ["一、", "（一）", "（二）", "（三）", "三是", "四是"]


# ---------------------------------------------------------------- markers and false markers


def test_run_in_heading_and_own_line_heading() -> None:
    text = "一、主要做法和经验\n（一）加强学习、内化于心，提升组工干部的自身素质。结合主题教育组织学习。\n（二）强化管理。推行精细化管理。"
    secs = section_text(text, CFG)
    assert outline(secs) == [("1", "一、"), ("1.1", "（一）"), ("1.2", "（二）")]
    assert secs[0].heading == "主要做法和经验"
    assert secs[1].heading == "加强学习、内化于心，提升组工干部的自身素质"
    assert secs[2].heading == "强化管理"


def test_inline_sequence_becomes_sections() -> None:
    text = "工作要点如下。一是抓学习，提高素质。二是抓作风。三是抓制度，形成长效机制。"
    secs = section_text(text, CFG)
    assert [s.marker for s in secs] == ["", "一是", "二是", "三是"]
    assert [s.heading for s in secs[1:]] == ["抓学习，提高素质", "抓作风", "抓制度，形成长效机制"]
    assert text[secs[2].char_start : secs[2].char_end] == "二是抓作风。"


def test_inline_shi_needs_a_sequence() -> None:
    text = "会议指出。一是要抓好落实，确保见效。\n其余工作照常进行。"
    assert [s.marker_family for s in section_text(text, CFG)] == ["preamble"]
    assert len(section_text(text, SectionConfig(min_sequence=1))) == 2


def test_shi_inside_a_clause_is_not_a_marker() -> None:
    text = "我们的经验一是靠学习，二是靠实践。\n另一段落。"
    assert [s.marker_family for s in section_text(text, CFG)] == ["preamble"]


def test_decimal_and_date_are_not_markers() -> None:
    text = "引言。\n1.5亿元资金已经到位。\n2006.11月召开会议。\n2.5%的增幅。"
    secs = section_text(text, CFG)
    assert [s.marker_family for s in secs] == ["preamble"]
    assert (secs[0].char_start, secs[0].char_end) == (0, len(text))


def test_lone_third_marker_is_rejected_but_a_run_is_kept() -> None:
    lone = "前言。\n三、这一条没有前文。\n正文继续。"
    assert [s.marker_family for s in section_text(lone, CFG)] == ["preamble"]
    run = "前言。\n三、第三点\n内容。\n四、第四点\n内容。"
    assert [s.marker for s in section_text(run, CFG)] == ["", "三、", "四、"]


def test_lone_first_marker_at_line_start_is_kept() -> None:
    text = "特作如下决定：\n一、北京市各区耕地占用税的适用税额\n内容。"
    secs = section_text(text, CFG)
    assert [s.marker for s in secs] == ["", "一、"]
    assert secs[1].heading == "北京市各区耕地占用税的适用税额"


def test_first_next_family() -> None:
    text = "首先，要统一思想。\n其次，要明确责任。\n最后，要狠抓落实。"
    secs = section_text(text, CFG)
    assert [(s.marker, s.marker_family) for s in secs] == [
        ("首先，", "first_next"),
        ("其次，", "first_next"),
        ("最后，", "first_next"),
    ]
    assert section_text("其次，这是普通的一句话。\n最后，结束。", CFG)[0].marker_family == "preamble"


def test_other_families_nest_by_first_appearance() -> None:
    text = "第一章 总则\n第一条 为了规范。\n第二条 适用范围：\n（一）甲；\n（二）乙。\n第二章 附则\n第三条 施行。\n①注一\n②注二"
    secs = section_text(text, CFG)
    assert outline(secs) == [
        ("1", "第一章"), ("1.1", "第一条"), ("1.2", "第二条"), ("1.2.1", "（一）"), ("1.2.2", "（二）"),
        ("2", "第二章"), ("2.1", "第三条"), ("2.1.1", "①"), ("2.1.2", "②"),
    ]  # fmt: skip
    assert secs[0].heading == "总则" and secs[1].heading is None  # articles have no heading
    check_invariants(text, secs)


def test_restarted_run_nests_under_open_item() -> None:
    text = "一、总体要求\n内容。\n二、主要措施\n一、加强领导；\n二、落实责任。\n三、保障条件\n内容。"
    secs = section_text(text, CFG)
    assert outline(secs) == [("1", "一、"), ("2", "二、"), ("2.1", "一、"), ("2.2", "二、"), ("3", "三、")]


def test_empty_and_markerless_text() -> None:
    assert section_text("", CFG) == []
    assert section_text(" \n\u3000\n", CFG) == []
    secs = section_text("只有一段正文，没有任何编号。", CFG)
    assert [(s.path, s.level, s.ordinal, s.marker, s.marker_family, s.heading) for s in secs] == [
        ("0", 1, 0, "", "preamble", None)
    ]


def test_long_runin_first_sentence_has_no_heading() -> None:
    long_sentence = "在" + "加强工会自身建设方面进行创新要根据市场经济的发展" * 4 + "。"
    text = f"（一）{long_sentence}\n（二）短标题。正文。"
    secs = section_text(text, CFG)
    assert secs[0].heading is None and secs[1].heading == "短标题"


@pytest.mark.parametrize(
    ("numeral", "value"),
    [("一", 1), ("十", 10), ("十一", 11), ("二十", 20), ("二十三", 23), ("一百", 100), ("一百零六", 106), ("两", 2), ("一二", None)],
)
def test_cn_numeral(numeral: str, value: int | None) -> None:
    assert cn_numeral(numeral) == value


# ---------------------------------------------------------------- real external text


def test_law_chapters_sections_articles() -> None:
    """电信条例 (2016) excerpt: 章 > 节 > 条 > （一）, with the markup stripped."""
    text = strip_markdown((DATA / "telecom_regulations_2016_excerpt.md").read_text(encoding="utf-8"))
    secs = section_text(text, CFG)
    check_invariants(text, secs)
    fam = {s.marker: s for s in secs if s.marker_family in ("zhang", "jie")}
    assert [s.marker for s in kids(secs, None)] == ["第一章", "第二章"]
    assert fam["第一章"].heading == "总则"
    assert [s.marker for s in kids(secs, fam["第二章"].path)] == ["第一节", "第二节", "第三节", "第四节"]
    assert [s.marker for s in kids(secs, fam["第一章"].path)] == [f"第{n}条" for n in "一二三四五六"]
    art10 = next(s for s in secs if s.marker == "第十条")
    assert art10.parent_path == fam["第一节"].path
    items = kids(secs, art10.path)
    assert [s.marker for s in items][:2] == ["(一)", "(二)"]  # ASCII parens in this source
    assert {s.marker_family for s in items} == {"cn_paren"}


def test_beijing_decision_finds_unmarked_ten() -> None:
    """The 十、 heading has no '##' in the source markup; the run 一、…十四、 must be complete."""
    text = strip_markdown((DATA / "beijing_budget_oversight_decision_2021.md").read_text(encoding="utf-8"))
    secs = section_text(text, CFG)
    check_invariants(text, secs)
    tops = kids(secs, None)
    assert [cn_numeral(s.marker[:-1]) for s in tops] == list(range(1, 15))
    assert tops[9].heading == "依法执行备案工作、强化预算法律责任"
    assert [s.marker for s in kids(secs, "1")] == [f"（{n}）" for n in "一二三四五六七"]


@pytest.mark.parametrize("name", ["cpc1_guangzhou_report.json", "gwr_1980.json"])
def test_report_isolated_headings_are_found(name: str) -> None:
    """Every silver-truth isolated heading (marker != other) is a section starting at its offset."""
    doc = json.loads((DATA / name).read_text(encoding="utf-8"))
    text = doc["content"]
    secs = section_text(text, CFG)
    check_invariants(text, secs)
    starts = {s.char_start: s for s in secs}
    truth = [h for h in doc["isolated_headings"] if h["marker"] != "other"]
    assert truth
    for h in truth:
        s = starts.get(h["offset"])
        assert s is not None, h["text"]
        assert s.marker + (s.heading or "") == h["text"].rstrip("。")


def test_cpc1_report_tree() -> None:
    doc = json.loads((DATA / "cpc1_guangzhou_report.json").read_text(encoding="utf-8"))
    secs = section_text(doc["content"], CFG)
    by = {s.marker + (s.heading or ""): s for s in secs}
    assert by["1．吸收新党员"].parent_path == by["三、今后意见"].path
    assert by["①工会学校"].parent_path == by["3．成立工人学校"].path
    assert by["5．与士兵的联系"].path == by["三、今后意见"].path + ".5"


def test_gwr_1980_di_ordinal_nests_under_top() -> None:
    doc = json.loads((DATA / "gwr_1980.json").read_text(encoding="utf-8"))
    secs = section_text(doc["content"], CFG)
    tops = kids(secs, None)
    assert [s.marker_family for s in tops][:1] == ["cn_dun"]
    di = [s for s in secs if s.marker_family == "di_comma" and s.level == 2]
    assert len(di) >= 6 and all(s.parent_path in {t.path for t in tops} for s in di)


# ---------------------------------------------------------------- generated outlines (property)

_FILLER = "组织工作要坚持围绕中心服务大局推进创新干部队伍建设加强基层党建完善制度机制"
_LEVEL_FAMILIES = [
    [("cn_dun", lambda i: f"{'一二三四五六'[i]}、"), ("latin", lambda i: f"{'ABCDEF'[i]}.")],
    [("cn_paren", lambda i: f"（{'一二三四五六'[i]}）"), ("di", lambda i: f"第{'一二三四五六'[i]}，")],
    [("arabic", lambda i: f"{i + 1}、"), ("circled", lambda i: "①②③④⑤⑥"[i]), ("shi", lambda i: f"{'一二三四五六'[i]}是")],
]


@st.composite
def generated(draw: st.DrawFn) -> tuple[str, list[tuple[str, str, int]]]:
    """A random outline rendered as text, and the expected (path, marker, char_start) list."""
    families = [draw(st.sampled_from(level)) for level in _LEVEL_FAMILIES]
    words = st.text(alphabet=_FILLER, min_size=2, max_size=12)
    parts: list[str] = []
    expected: list[tuple[str, str, int]] = []
    pos = 0

    def emit(s: str) -> None:
        nonlocal pos
        parts.append(s)
        pos += len(s)

    if draw(st.booleans()):
        emit(draw(words) + "。\n")

    def node(level: int, prefix: str) -> None:
        n = draw(st.integers(min_value=2, max_value=4))
        for i in range(n):
            marker = families[level][1](i)
            path = f"{prefix}{i + 1}"
            expected.append((path, marker, pos))
            own_line = draw(st.booleans())
            emit(marker + draw(words) + ("\n" if own_line else "。") + draw(words) + "。\n")
            if level + 1 < len(families) and draw(st.integers(0, 2)) == 0:
                node(level + 1, path + ".")

    node(0, "")
    return "".join(parts), expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated())
def test_generated_outlines_roundtrip(case: tuple[str, list[tuple[str, str, int]]]) -> None:
    text, expected = case
    secs = section_text(text, CFG)
    check_invariants(text, secs)
    got = [(s.path, s.marker, s.char_start) for s in secs if s.marker_family != "preamble"]
    assert got == expected
    # section text equals the slice, and concatenating the top level gives the document back
    tops = [s for s in secs if s.level == 1]
    assert "".join(text[s.char_start : s.char_end] for s in tops) == text[tops[0].char_start :]


_SOUP = st.lists(
    st.sampled_from(
        ["一、", "二、", "三、", "（一）", "（二）", "1、", "2、", "3.", "1.5", "一是", "二是", "第一，", "第二，",
         "第一章", "第一条 ", "第二条 ", "①", "②", "C.", "D.", "首先，", "其次，", "最后，", "。", "；", "：", "\n", "\n", "正文", "内容很多"]
    ),  # fmt: skip
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(_SOUP)
def test_marker_soup_always_gives_a_valid_tree(pieces: list[str]) -> None:
    """Any mix of markers, punctuation and prose yields a consistent tree (no crash, no overlap)."""
    text = "".join(pieces)
    secs = section_text(text, CFG)
    if not text.strip():
        assert secs == []
    else:
        check_invariants(text, secs)
