"""Issue 12 part 1: boilerplate detection that cannot eat body text, end to end through pipeline.build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpuspipe import pipeline
from corpuspipe.core import shardio
from corpuspipe.config import PipelineConfig, WatermarkConfig
from corpuspipe.core.edits import TrackedText
from corpuspipe.core.records import Essay
from corpuspipe.stages.watermark import KEPT_FLAG, collect_boilerplate_stats, essay_site, remove_watermarks

OPENER = "现在，我代表国务院，向大会报告政府工作"
FOOTERS = {"siteA": "喜欢本篇请告诉朋友们，点个赞再走吧～A站小编", "siteB": "整理不易感谢支持，期待再次光临～B站小编"}
# a site sentence shaped like genre prose (finished, three clauses, no word about the site): only the
# copies show that siteB added it -- the same reports on wikisource lack it
PROSE_FOOTER = "愿每一位读者都能有所收获，学有所成，我们明天同一时间再见。"


def _reports(external: Path) -> list[dict]:
    with open(external / "gov_reports" / "government_work_reports.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def write_site_corpus(raw: Path, reports: list[dict], copies: int = 5) -> None:
    """The reports on one site (wikisource/) and ``copies`` of them re-hosted on each of two sites
    with their own footer (siteB also with a prose-shaped one), plus a title-only page per site."""
    for i, r in enumerate(reports):
        (raw / "wikisource").mkdir(exist_ok=True)
        (raw / "wikisource" / f"r{i:02d}.txt").write_text(f"{r['title']}\n{r['content']}\n", encoding="utf-8")
    for s, (site, foot) in enumerate(sorted(FOOTERS.items())):
        (raw / site).mkdir()
        for k in range(copies):  # copies of reports the wikisource folder already has: they must not vote again
            r = reports[(s * copies + k) % len(reports)]
            extra = f"{PROSE_FOOTER}\n" if site == "siteB" else ""
            (raw / site / f"p{k}.txt").write_text(f"{r['title']}\n{r['content']}\n{extra}{foot}\n", encoding="utf-8")
        (raw / site / "title_only.txt").write_text(f"{reports[0]['title']}目录\n{foot}\n", encoding="utf-8")


@pytest.fixture(scope="module")
def built(tmp_path_factory, external: Path):
    reports = [r for r in _reports(external) if "政府工作报告" in r["title"] and "决议" not in r["title"]][:14]
    raw = tmp_path_factory.mktemp("raw")
    write_site_corpus(raw, reports)
    res = pipeline.build(raw, PipelineConfig(), tmp_path_factory.mktemp("work"))
    essays = [e for r in res.passes[-1] for e in shardio.read_essays(Path(r["essays"]))]
    quarantine = [q for results in res.passes for r in results for q in pipeline.shard_files(r)[1]]
    return reports, essays, quarantine, res.reduces["watermark"]["fact"]


def test_site_footer_on_every_page_of_its_site_goes(built) -> None:
    _, essays, _, fact = built
    for e in essays:
        for foot in FOOTERS.values():
            assert foot not in e.body.text, e.source_path
    # in a corpus this small the footers pass the corpus share too; either way each is listed with an example
    listed = {x["example"]: x for x in fact["selected"]}
    assert set(FOOTERS.values()) <= set(listed)
    assert all(listed[f]["texts"] == 6 for f in FOOTERS.values())


def test_report_opener_and_body_survive_copies(built) -> None:
    reports, essays, _, fact = built
    with_opener = [e for e in essays if e.source_path.startswith("wikisource/") and OPENER in e.body.raw]
    missing = [(e.source_path, [(ed.stage, ed.rule, ed.after[:40]) for ed in e.body.edits if "代表国务院" in ed.before]) for e in with_opener if OPENER not in e.body.text]
    assert with_opener and not missing, missing
    assert not [x for x in fact["selected"] if "代表国务院" in x["key"]]
    for e in essays:  # every removal lies in the licence block or is a site line
        for ed in e.body.edits:
            if ed.stage == "watermark":
                assert not ("。" in ed.before and OPENER in ed.before)


def test_prose_shaped_site_sentence_goes_when_copies_show_the_site_added_it(built) -> None:
    _, essays, _, fact = built
    from corpuspipe.stages.watermark import is_protected

    assert not [e.source_path for e in essays if PROSE_FOOTER in e.body.text]
    assert any(PROSE_FOOTER in e.body.raw for e in essays)
    assert [x for x in fact["selected"] if x["example"] == PROSE_FOOTER]
    assert is_protected("L|" + PROSE_FOOTER.replace("，", ","))  # by its shape alone it would be kept


def test_licence_tail_fragments_go_with_their_block(built) -> None:
    _, essays, _, _ = built
    ends = [e.body.text.rstrip()[-5:] for e in essays if e.source_path.startswith("wikisource/")]
    assert not [x for x in ends if x.endswith("false")]
    assert all("truncated" not in e.flags for e in essays if e.source_path.startswith("wikisource/"))


def test_title_only_pages_are_quarantined_not_released(built) -> None:
    _, essays, quarantine, _ = built
    assert {q["path"] for q in quarantine if q["reason"] == "boilerplate_only"} == {"siteA/title_only.txt",
                                                                                   "siteB/title_only.txt"}
    assert not [e for e in essays if e.source_path.endswith("title_only.txt")]


def test_exact_copies_vote_once_and_sites_are_hosts_or_folders(external: Path) -> None:
    r = _reports(external)[0]["content"]
    copies = [Essay(f"s{i}/a.txt", "0" * 64, 0, TrackedText(r)) for i in range(4)]
    freq = collect_boilerplate_stats(copies, WatermarkConfig())
    assert set(freq.values()) == {1}
    assert essay_site(Essay("x.jsonl", "0", 0, TrackedText(""), url="https://www.Example.com/a")) == "example.com"
    assert essay_site(copies[0]) == "s0" and essay_site(Essay("top.txt", "0", 0, TrackedText(""))) == "."


def test_an_essay_is_never_emptied_silently(external: Path) -> None:
    body = max(_reports(external)[0]["content"].split("\n"), key=len)  # the longest real paragraph
    assert len(body) > 200
    e = Essay("a.txt", "0" * 64, 0, TrackedText(body + "\n"))
    key = "L|" + "".join(__import__("corpuspipe.stages.watermark", fromlist=["key_view"]).key_view(body).split())
    remove_watermarks([e], WatermarkConfig(), {"corpus": [key], "sites": {}})
    assert e.body.text == body + "\n" and KEPT_FLAG in e.flags
