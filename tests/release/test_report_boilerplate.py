"""Issue 14: the report and `inspect` list the boilerplate lines the detector removed, with the
documents and sites they came from and one escaped example each (real reports, two re-hosting sites)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.helpers.seed_release import build_seed_release
from typer.testing import CliRunner

from corpuspipe.cli import app
from corpuspipe.release.report import boilerplate_lines, write_report

# <…> around Chinese text is no HTML tag (ingest removes those: issue 24 #10), but the report must escape it
FOOTERS = {"siteA": "喜欢本篇<请告诉朋友们>，点个赞再走吧～A站小编", "siteB": "[整理不易感谢支持]，期待再次光临～B站小编"}
OPENER = "现在，我代表国务院，向大会报告政府工作"


@pytest.fixture(scope="module")
def release(tmp_path_factory, external: Path) -> Path:
    with open(external / "gov_reports" / "government_work_reports.jsonl", encoding="utf-8") as fh:
        reports = [json.loads(line) for line in fh]
    reports = [r for r in reports if "政府工作报告" in r["title"] and "决议" not in r["title"]][:8]
    root = tmp_path_factory.mktemp("bp")
    raw = root / "raw"
    for i, r in enumerate(reports):
        (raw / "wikisource").mkdir(parents=True, exist_ok=True)
        (raw / "wikisource" / f"r{i}.txt").write_text(f"{r['title']}\n{r['content']}\n", encoding="utf-8")
    for s, (site, foot) in enumerate(sorted(FOOTERS.items())):
        (raw / site).mkdir()
        for k in range(5):  # re-hosted copies: each adds the site's footer
            r = reports[(3 * s + k) % len(reports)]
            (raw / site / f"p{k}.txt").write_text(f"{r['title']}\n{r['content']}\n{foot}\n", encoding="utf-8")
    return build_seed_release(raw, root / "releases")


def test_selected_lines_are_listed_with_documents_sites_and_an_example(release: Path) -> None:
    rows = boilerplate_lines(release, limit=None)
    by_example = {r["example"]: r for r in rows}
    for foot in FOOTERS.values():
        assert (by_example[foot]["documents"], by_example[foot]["sites"]) == (5, 1), by_example.get(foot)
    # Wikisource's licence lines go from the reports and from their re-hosted copies: three sites
    assert any(r["sites"] == 3 and "Public domain" in r["example"] for r in rows)
    assert not [r for r in rows if OPENER in r["example"]]  # genre prose is no boilerplate


def test_report_html_lists_them_escaped(release: Path) -> None:
    page = write_report(release).read_text(encoding="utf-8")
    assert "Boilerplate lines the detector removed" in page
    assert "<请告诉朋友们>" not in page
    assert "喜欢本篇&lt;请告诉朋友们&gt;，点个赞再走吧～A站小编" in page



def test_inspect_prints_them_verbatim(release: Path) -> None:
    res = CliRunner().invoke(app, ["inspect", str(release)], env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    assert "boilerplate lines the detector removed" in res.output
    assert "[整理不易感谢支持]，期待再次光临～B站小编" in res.output  # brackets are text, not Rich markup
