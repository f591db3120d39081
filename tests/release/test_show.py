"""`corpuspipe show`: a seed essay's story, every edit in place with its rule, pairs and cluster."""

from __future__ import annotations

import html
import re

import pyarrow.parquet as pq
import pytest
from tests.helpers.cli import run_cli
from tests.helpers.paths import RAW
from tests.helpers.seed_release import COPY_NAME, SEED_000

from corpuspipe.release.show import NotFound, load_story, render_html, segments


def _doc(release, source_path):
    docs = pq.read_table(release / "documents", columns=["doc_id", "source_path", "edit_count"]).to_pylist()
    return next(d for d in docs if d["source_path"] == source_path)


def test_a_seed_essay_rebuilds_its_raw_file_from_the_shown_edits(seed_release):
    doc = _doc(seed_release, SEED_000)
    story = load_story(seed_release, doc["doc_id"])
    assert len(story.edits) == doc["edit_count"] > 0  # every edit of the document is shown
    raw = "".join(removed if kind == "edit" else text for kind, text, removed, _ in segments(story))
    assert raw == (RAW / SEED_000).read_text(encoding="utf-8")
    clean = "".join(text for _, text, _, _ in segments(story))
    assert clean == story.doc["text"]
    assert all(rule for kind, _, _, rule in segments(story) if kind == "edit")


def test_cluster_representative_and_pairs_of_the_planted_copy(seed_release):
    a, b = _doc(seed_release, SEED_000), _doc(seed_release, COPY_NAME)
    sa, sb = load_story(seed_release, a["doc_id"]), load_story(seed_release, b["doc_id"])
    dup, kept = (sa, sb) if sa.doc["duplicate_of"] else (sb, sa)
    assert dup.representative["doc_id"] == kept.id == dup.doc["cluster_id"]
    pair = next(p for p in dup.pairs if p["level"] == "document")
    assert pair["other"] == kept.id and pair["relation"] == "near_duplicate" and pair["jaccard_exact"] > 0.9


def test_a_section_story_is_its_slice_with_its_pair(seed_release):
    secs = pq.read_table(seed_release / "sections",
                         columns=["section_id", "duplicate_of", "char_start", "char_end"]).to_pylist()
    s = next(x for x in secs if x["duplicate_of"])
    story = load_story(seed_release, s["section_id"])
    assert story.kind == "section" and story.span == (s["char_start"], s["char_end"])
    assert "".join(t for _, t, _, _ in segments(story)) == story.text
    assert any(p["other"] == s["duplicate_of"] or p["this"] == s["section_id"] for p in story.pairs)


def test_html_page_is_static_and_escaped(seed_release):
    doc = _doc(seed_release, SEED_000)
    story = load_story(seed_release, doc["doc_id"])
    page = render_html(story)
    assert "<script" not in page.lower() and "default-src 'none'" in page
    n_del = len(re.findall(r"<del ", page))
    assert n_del == sum(1 for e in story.edits if e.before)
    for e in story.edits:
        assert f'title="{html.escape(e.rule)}"' in page


def test_unknown_id(seed_release):
    with pytest.raises(NotFound, match="no document or section"):
        load_story(seed_release, "ffffffffffffffff")


def test_cli_show_prints_every_rule_and_writes_html(seed_release, tmp_path):
    doc = _doc(seed_release, SEED_000)
    story = load_story(seed_release, doc["doc_id"])
    page = tmp_path / "story.html"
    proc = run_cli("show", str(seed_release), doc["doc_id"], "--html", str(page))
    assert proc.returncode == 0, proc.stderr
    for e in story.edits:
        assert e.rule in proc.stdout
    assert "boilerplate_frac" in proc.stdout and page.is_file()
    bad = run_cli("show", str(seed_release), "nope")
    assert bad.returncode != 0 and "no document or section" in bad.stderr and "Traceback" not in bad.stderr
