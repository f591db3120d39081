"""Compilation splitting on real documents (issue 12): bare titles found by what opens a document
under them, long titles, teaser variants, and the headings inside documents that must not split.

Data: ``tests/data/split/documents.jsonl`` (real reports, resolutions and laws; see its README).
Files are joined the way crawled compilations are (``bench/eval_split.py`` measures the same on
all 142 documents).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from tests.helpers import paths

from corpuspipe.config import IngestConfig
from corpuspipe.core.edits import rebuild_raw
from corpuspipe.core.records import Essay
from corpuspipe.stages.ingest.files import ingest_file

DATA = paths.DATA / "split"
CFG = IngestConfig()
DOCS = {
    r["key"]: r for r in map(json.loads, (DATA / "documents.jsonl").read_text(encoding="utf-8").splitlines())
}


def page(key: str, *, title: str | None = None, head: list[str] | None = None, gap: str = "\n\n") -> str:
    """One document as a crawler saves it: title line, header lines (a law's own date lines by
    default), the body."""
    d = DOCS[key]
    lines = [title or d["title"], *(d["date_lines"] if head is None else head)]
    return "\n".join(lines) + gap + d["content"].strip() + "\n"


def ingest(tmp_path: Path, text: str, cfg: IngestConfig = CFG) -> list[Essay]:
    (tmp_path / "c.txt").write_text(text, encoding="utf-8")
    essays = ingest_file(tmp_path, "c.txt", cfg).essays
    assert "".join(rebuild_raw(e.body.text, e.body.edits) for e in essays) == text  # lossless
    return essays


def teaser(key: str, *, with_title: bool, skip_salutation: bool = False, end: str = "...") -> str:
    lines = [ln.strip() for ln in DOCS[key]["content"].split("\n") if ln.strip()]
    if skip_salutation:
        lines = lines[1:]
    return (DOCS[key]["title"] if with_title else "") + "".join(lines)[:60] + end


# -- bare titles: the opening under the title ---------------------------------------------------


@pytest.mark.parametrize("gap", ["\n\n", "\n"], ids=["blank", "tight"])
def test_law_then_report_splits_at_a_title_over_a_salutation(tmp_path, gap):
    # Dissimilar titles, no outline restart near: the old splitter kept this as one essay.
    text = page("law_beijing", gap=gap) + gap[1:] + page("report_1988", gap=gap)
    essays = ingest(tmp_path, text)
    assert [e.title for e in essays] == [DOCS["law_beijing"]["title"], DOCS["report_1988"]["title"]]
    assert essays[1].body.text.startswith("各位代表！")


def test_report_then_law_splits_at_a_title_over_its_promulgation_line(tmp_path):
    text = page("cpc14") + "\n" + page("law_compensation")
    essays = ingest(tmp_path, text)
    assert [e.title for e in essays] == [DOCS["cpc14"]["title"], DOCS["law_compensation"]["title"]]
    assert essays[1].body.text.startswith("2021年12月6日 最高人民法院审判委员会")


def test_resolution_after_a_law_splits_at_the_official_title_formula(tmp_path):
    # 2017 resolution: no salutation, no date line; its paragraph is cut at a link
    # (所作的 / 政府工作报告 / 。会议…).  Title: issuer + 关于 + matter + 决议, over prose.
    text = page("law_beijing") + "\n" + page("resolution_2017", head=[])
    essays = ingest(tmp_path, text)
    assert [e.title for e in essays] == [DOCS["law_beijing"]["title"], DOCS["resolution_2017"]["title"]]


# -- long titles -----------------------------------------------------------------------------


def test_a_53_character_law_title_is_a_title_over_its_date_line(tmp_path):
    title = DOCS["law_henan"]["title"]
    assert len(title) > CFG.max_title_chars
    essays = ingest(tmp_path, page("report_1988") + "\n" + page("law_henan"))
    assert [e.title for e in essays] == [DOCS["report_1988"]["title"], title]
    assert essays[1].body.text.startswith("2018年9月29日")


def test_a_long_report_title_with_its_occasion_splits_and_is_the_title(tmp_path):
    long = "2024年中华人民共和国国务院政府工作报告——2024年3月5日在第十四届全国人民代表大会第二次会议上"
    essays = ingest(tmp_path, page("law_beijing") + "\n" + page("report_1988", title=long))
    assert [e.title for e in essays] == [DOCS["law_beijing"]["title"], long]


def test_a_long_line_without_evidence_is_no_title(tmp_path):
    # The 41-character CPC title over 同志们： is a title; the same line over a bare paragraph
    # (no opening) stays a body line, as max_title_chars always meant.
    title = DOCS["cpc15"]["title"]
    (essay,) = ingest(tmp_path, page("cpc15"))
    assert essay.title == title
    body_only = [ln for ln in DOCS["cpc15"]["content"].split("\n") if ln.strip() and "同志们" not in ln]
    (essay,) = ingest(tmp_path, title + "\n" + "\n".join(body_only) + "\n")
    assert essay.title is None or len(essay.title) <= CFG.max_title_chars


def test_max_long_title_chars_bounds_long_titles(tmp_path):
    old = IngestConfig(max_long_title_chars=40)  # the old behaviour: nothing over 40 is a title
    text = page("report_1988") + "\n" + page("law_henan")
    assert [e.title for e in ingest(tmp_path, text, old)] == [DOCS["report_1988"]["title"]]
    with pytest.raises(ValidationError):
        IngestConfig(max_long_title_chars=0)


# -- teasers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant", ["title_and_body", "body_only", "without_salutation", "under_the_title"]
)
def test_teaser_variants_go_with_the_essay_they_summarise(tmp_path, variant):
    key = "report_1988"
    if variant == "title_and_body":
        head = teaser(key, with_title=True) + "\n" + page(key)
    elif variant == "body_only":
        head = teaser(key, with_title=False, end="……") + "\n" + page(key)
    elif variant == "without_salutation":  # the summary skips 各位代表！
        head = teaser(key, with_title=True, skip_salutation=True) + "\n" + page(key)
    else:
        head = page(key, head=[teaser(key, with_title=False)])
    first = page("law_compensation")
    essays = ingest(tmp_path, first + "\n" + head)
    assert [e.title for e in essays] == [DOCS["law_compensation"]["title"], DOCS[key]["title"]]
    second = essays[1]
    assert "teaser" in [ed.rule for ed in second.body.edits]
    assert second.body.text.startswith("各位代表！")  # the teaser is out of the body, the body kept
    assert essays[0].body.text.rstrip().endswith(DOCS["law_compensation"]["content"].strip()[-20:])


# -- headings and header lines inside one document never split it ----------------------------


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("report_closing", "结束语 over 各位代表！: a section heading, not a title"),
        ("cpc9_heading", "形势和任务 over 同志们！: a section heading"),
        ("report_2024", "政府工作报告 / ——… / 国务院总理 / 李强 over 各位代表：: one header zone"),
        ("law_compensation", "最高人民法院 / 关于…的规定 / 法释〔2022〕10号: the law restating its title"),
        ("resolution_2021", "zero-width space, then the resolution's own title and date line"),
        ("report_link_fragment", "关于…的特别规定 between 《 and 》: a link cut out of a sentence"),
    ],
)
@pytest.mark.parametrize("with_title", [True, False], ids=["titled", "bare"])
def test_one_document_stays_one_essay(tmp_path, key, why, with_title):
    text = page(key) if with_title else DOCS[key]["content"].strip() + "\n"
    essays = ingest(tmp_path, text)
    assert len(essays) == 1, (why, [e.title for e in essays])


def test_the_same_traps_inside_a_compilation_still_split_only_at_titles(tmp_path):
    keys = ["report_closing", "law_compensation", "cpc9_heading", "resolution_2021"]
    text = "\n".join(page(k) for k in keys)
    essays = ingest(tmp_path, text)
    assert [e.title for e in essays] == [DOCS[k]["title"] for k in keys]


# Site promotions a crawled page carries inside its body (the 100 MB crawl bench's 15 false splits
# in 14,584 one-essay files were all of these shapes): a promotion under a heading-shaped line, a
# promotion as the "title", a dashed sentence under a site banner.
PROMOS = {
    "promo_under_heading": ("过去五年国内工作的基本总结", "【免费下载】公文大全网全套讲话稿模板，点击领取>>"),
    "more_link": ("过去五年国内工作的基本总结", ">>>点击查看更多工作报告<<<"),
    "promo_as_title": ("（第一范文网会员可下载Word版）", "——坚持发扬斗争精神，民主法制建设迈出新的步伐"),
    "dash_sentence": ("★瑞文网★ 每日更新心得体会", "——坚持发扬斗争精神。"),
}


@pytest.mark.parametrize("kind", sorted(PROMOS))
def test_a_site_promotion_inside_a_page_does_not_split_it(tmp_path, kind):
    anchor, promo = PROMOS[kind]
    text = page("report_1988")
    if anchor in text:
        text = text.replace(anchor + "\n", anchor + "\n" + promo + "\n", 1)
    else:  # the promotion lines go under a finished paragraph
        cut = text.index("城乡人民生活进一步改善。")
        text = text[:cut] + anchor + "\n" + promo + "\n" + text[cut:]
    assert promo in text
    essays = ingest(tmp_path, text)
    assert len(essays) == 1 and essays[0].title == DOCS["report_1988"]["title"]


def test_a_real_subtitle_still_opens_a_document(tmp_path):
    """The dashed-sentence rule keeps the occasion subtitle (no sentence end) as an opening."""
    first = page("law_compensation")
    second = page("report_2024", head=["——2024年3月5日在第十四届全国人民代表大会第二次会议上"])
    essays = ingest(tmp_path, first + "\n" + second)
    assert [e.title for e in essays] == [DOCS["law_compensation"]["title"], DOCS["report_2024"]["title"]]
