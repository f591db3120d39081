"""Issue 23 item 2: lines of one shape with other dates are content; a site's lines with changing
digits are boilerplate.  The detector sees both side by side: the 55 real laws of
``../shared/external`` released as one folder (their adoption, promulgation and effective-date
lines, 107 in all, at the top of every law) and a law site whose pages carry publish times, view
and page counters around the same laws' own date lines.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from corpuspipe import pipeline
from corpuspipe.core import shardio
from corpuspipe.config import PipelineConfig
from corpuspipe.core.edits import rebuild_raw
from corpuspipe.stages.watermark import boilerplate_key, is_protected
from corpuspipe.zh.dates import is_dated_statement

# Real boilerplate whose digits change on every page (the site's lines in the corpus below).
SITE_LINES = ("[法规网] {date} 法规频道", "{date} {hh}:{mm}  来源：法规网", "本文已被浏览{n}次",
              "阅读：{n}  评论：{m}", "更新时间：{cdate}  浏览：{n}次")


def _laws(external: Path) -> list[tuple[str, list[str], str]]:
    """(file name, date lines, the whole Markdown text) of the 55 laws."""
    out = []
    for p in sorted((external / "outline_laws" / "lawrefbook").glob("*.md")):
        text = p.read_text(encoding="utf-8")
        lines = text.split("\n")
        info = lines.index("<!-- INFO END -->")
        out.append((p.name, [ln.strip() for ln in lines[1:info] if ln.strip()], text))
    return out


def test_every_law_date_line_is_a_dated_statement_and_no_site_line_is(external: Path) -> None:
    laws = _laws(external)
    lines = [ln for _, dates, _ in laws for ln in dates]
    assert len(lines) == 107
    assert all(is_dated_statement(ln) and is_protected("L|" + boilerplate_key(ln)) for ln in lines)
    rnd = random.Random(3)
    for _ in range(200):
        y, mo, d = rnd.randint(2005, 2025), rnd.randint(1, 12), rnd.randint(1, 28)
        fill = dict(date=f"{y}-{mo:02d}-{d:02d}", cdate=f"{y}年{mo:02d}月{d:02d}日", hh=f"{rnd.randint(0, 23):02d}",
                    mm=f"{rnd.randint(0, 59):02d}", n=rnd.randint(1, 99999), m=rnd.randint(0, 999))
        for t in SITE_LINES + ("发布时间：{date}  浏览：{n}次", "{cdate} 发布", "第1页 共{m}页", "{cdate} {hh}:{mm}"):
            line = t.format(**fill)
            assert not is_dated_statement(line) and not is_protected("L|" + boilerplate_key(line)), line


@pytest.mark.parametrize("line,ok", [
    ("二〇二四年三月五日", True),  # an official document's own date
    ("（2001年2月6日最高人民法院审判委员会第1158次会议通过，根据2020年12月23日最高人民法院审判委员会第1823次会议通过的"
     "《最高人民法院关于修改〈最高人民法院关于破产企业国有划拨土地使用权应否列入破产财产等问题的批复〉等二十九件商事类司法解释的决定》修正）",
     True),
    ("1986年2月18日 国务院发布", True),
    ("法释〔2022〕10号", True),
    ("2019年05月06日 发布", False),  # a page stamp: no organ before 发布
    ("2019年5月6日 好范文网发布", False),
    ("2019年5月6日 来源：某某网", False),
    ("2019年5月6日，我们召开了全体会议。", False),  # a sentence
])
def test_dated_statement_shapes(line: str, ok: bool) -> None:
    assert is_dated_statement(line) is ok


@pytest.fixture(scope="module")
def released(tmp_path_factory, external: Path):
    laws = _laws(external)
    raw = tmp_path_factory.mktemp("raw")
    (raw / "laws").mkdir()
    (raw / "falvfagui").mkdir()
    rnd = random.Random(23)
    pages = {}
    for name, dates, text in laws:
        (raw / "laws" / name).write_text(text, encoding="utf-8")
    for k, (name, dates, text) in enumerate(laws[:24]):  # the same laws re-hosted with dated site lines
        y, mo, d = rnd.randint(2005, 2025), rnd.randint(1, 12), rnd.randint(1, 28)
        fill = dict(date=f"{y}-{mo:02d}-{d:02d}", cdate=f"{y}年{mo:02d}月{d:02d}日", hh=f"{rnd.randint(0, 23):02d}",
                    mm=f"{rnd.randint(0, 59):02d}", n=rnd.randint(1, 99999), m=rnd.randint(0, 999))
        head = [SITE_LINES[k % 2].format(**fill)]
        foot = [t.format(**fill) for t in SITE_LINES[2:]]
        body = [ln for ln in text.split("\n")[1:] if "INFO END" not in ln]
        page = "\n".join(head + [text.split("\n")[0].lstrip("# ")] + body[:60] + foot) + "\n"
        pages[f"falvfagui/{k:02d}.txt"] = (page, dates, head + foot)
        (raw / "falvfagui" / f"{k:02d}.txt").write_text(page, encoding="utf-8")
    res = pipeline.build(raw, PipelineConfig(), tmp_path_factory.mktemp("work"))
    essays = [e for r in res.passes[-1] for e in shardio.read_essays(Path(r["essays"]))]
    return laws, pages, essays


def _by_path(essays) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in essays:
        out[e.source_path] = out.get(e.source_path, "") + "".join(e.body.text.split())
    return out


def test_law_date_lines_all_stay(released) -> None:
    laws, pages, essays = released
    text = _by_path(essays)
    kept = [("laws/" + name, ln) for name, dates, _ in laws for ln in dates if "".join(ln.split()) in text["laws/" + name]]
    assert len(kept) == 107
    for path, (page, dates, _) in pages.items():
        assert all("".join(ln.split()) in text[path] for ln in dates), path
    for e in essays:
        assert not any(ed.rule.startswith("boilerplate") and any(d in ed.before for _, ds, _ in laws for d in ds[:1])
                       for ed in e.body.edits)


def test_site_lines_with_changing_digits_go(released) -> None:
    laws, pages, essays = released
    text = _by_path(essays)
    for path, (page, _, planted) in pages.items():
        left = [ln for ln in planted if "".join(ln.split()) in text[path]]
        assert not left, (path, left)
    for e in essays:
        assert rebuild_raw(e.body.text, e.body.edits) == e.body.raw
