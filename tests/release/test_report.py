from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from tests.helpers.tiny_release import make_tables, write_release

from corpuspipe.release.report import key_figures, length_histogram, svg_bars, write_report

EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def release(tmp_path: Path) -> Path:
    # doc 0 heads the duplicate cluster and doc 4 is mojibake-flagged: both titles reach the page.
    return write_release(tmp_path / "releases", make_tables(n_docs=5, titles={0: EVIL, 4: "乱码 & <b>粗</b>"}),
                         "1.0.0")


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_key_figures(release):
    figs = key_figures(release)
    assert all(re.fullmatch(r"[a-z0-9-]+", k) for k in figs)
    assert figs["version"] == "1.0.0"
    assert (figs["documents"], figs["documents-deduplicated"], figs["duplicate-documents"]) == (5, 4, 1)
    assert (figs["clusters"], figs["multi-member-clusters"], figs["largest-cluster"]) == (4, 1, 2)
    assert (figs["sections"], figs["duplicate-pairs"], figs["edits"], figs["quarantined"]) == (10, 1, 5, 1)
    assert (figs["script-simplified"], figs["script-traditional"], figs["flagged-mojibake"]) == (4, 1, 1)
    texts = make_tables(n_docs=5)["documents"]["char_count"].to_pylist()
    assert figs["characters"] == sum(texts) and figs["median-chars"] == int(np.median(texts))
    assert (figs["removals"], figs["redactions-pii-student-id"]) == (5, 1)


def test_report_is_static_escaped_html_with_charts(release):
    html_text = write_report(release).read_text(encoding="utf-8")
    p = _Tags()
    p.feed(html_text)
    tags = [t for t, _ in p.tags]
    assert "script" not in tags and "img" not in tags and "iframe" not in tags
    assert not [a for _, a in p.tags if any(k.startswith("on") or k in ("src", "href") for k in a)]
    assert "<script" not in html_text.lower()
    assert re.search(r"https?://", html_text) is None  # nothing to fetch
    assert "default-src 'none'" in html_text
    body_text = "".join(p.text)
    assert EVIL in body_text  # shown, as text
    assert "乱码 & <b>粗</b>" in body_text and "<b>粗</b>" not in html_text
    svgs = re.findall(r"<svg.*?</svg>", html_text, flags=re.S)
    titles = [ET.fromstring(s).find("title").text for s in svgs]  # each chart is well-formed XML
    assert titles == ["Essay length (characters) — documents per bin", "Script mix (documents)",
                      "Sections per level", "Duplicate clusters by size (number of clusters)", "Removals per rule"]
    rules_svg = svgs[4]
    assert "watermark.source_bracket" in rules_svg and "normalize.punct" in rules_svg
    assert "level 1" in svgs[2] and "level 2" in svgs[2]


def test_svg_bar_lengths_are_proportional_and_labels_escaped():
    svg = svg_bars(["a<b", "c"], [10, 5], title="t&t")
    root = ET.fromstring(svg)
    widths = [float(r.get("width")) for r in root.iter("rect")]
    assert widths[0] == pytest.approx(2 * widths[1])
    assert [t.text for t in root.iter("text")][:2] == ["t&t", "a<b"]
    assert "nothing to show" in svg_bars([], [], title="empty")


def test_length_histogram_keeps_outliers_in_an_overflow_bin():
    lengths = np.array([100] * 50 + [200] * 49 + [100_000])
    labels, counts = length_histogram(lengths, bins=4)
    assert sum(counts) == len(lengths)
    assert counts[-1] == 1 and labels[-1].startswith(">")
    assert length_histogram(np.array([5, 5]))[1] == [2]
    assert length_histogram(np.array([], dtype=int)) == ([], [])


# --- on a real release of the seed essays (+ a planted copy of seed 000) -------------------------
def test_report_shows_examples_for_every_rule_and_flag_and_both_cluster_levels(seed_release):
    import pyarrow.parquet as pq

    from corpuspipe.release.report import FLAG_MEANINGS, collect_stats, render_report

    page = render_report(collect_stats(seed_release))
    p = _Tags()
    p.feed(page)
    text = "".join(p.text)
    edits = pq.read_table(seed_release / "edits", columns=["rule"])["rule"].to_pylist()
    rules_html = page.split("<h2>Edits per rule, with examples</h2>")[1].split("<h2>")[0]
    for rule in set(edits):
        row = rules_html.split(f"<code>{rule}</code>")[1].split("</tr>")[0]
        assert "<del>" in row and "<ins>" in row, rule  # at least one before/after example per rule
    flags = {f for fl in pq.read_table(seed_release / "documents", columns=["flags"])["flags"].to_pylist()
             for f in fl}
    assert flags >= {"mojibake", "truncated"}
    for flag in flags:
        assert FLAG_MEANINGS[flag] in text
    assert "Document clusters" in text and "Section clusters" in text
    sbs = re.findall(r'<table class="sbs">.*?</table>', page, flags=re.S)
    assert len(sbs) >= 2 and "<del>历来</del>" in sbs[0]  # the planted copy's reworded sentence, marked
    dups = pq.read_table(seed_release / "duplicates", columns=["level"])["level"].to_pylist()
    from corpuspipe.release.report import plural

    assert f"{plural(dups.count('section'), 'verified section pair')} in" in text
    assert f"{plural(dups.count('document'), 'verified document pair')} in" in text
    assert "first release" in text and "bump" not in text and "—)" not in text
    stages = page.split("<h2>Stages</h2>")[1].split("<h2>")[0]
    assert "{" not in stages and '"' not in re.sub(r'<[^>]+>', "", stages)  # plain tables, not JSON


def test_side_by_side_marks_only_what_differs():
    from corpuspipe.release.report import side_by_side

    a = "组织工作历来是为党的政治任务服务的。"
    b = "组织工作一直是为党的政治任务服务的。"
    left, right = side_by_side(a, b)
    assert "<del>历来</del>" in left and "<ins>一直</ins>" in right
    assert side_by_side("<b>", "<i>")[0] == "&lt;<del>b</del>&gt;"
