"""`corpuspipe show` readable anywhere, and saying why each flag fired (issue 25 #4).

Before: in a pipe or an 80-column terminal the pairs table cut ids to ``0…`` and relations to
``n…``, an edit's before and after ran together with nothing but colour between them, and a flag
was a bare word.  Now a pipe or a narrow terminal gets the plain layout (ids whole, ``- before`` /
``+ after`` lines, ``[-removed-]{+inserted+}`` in context), and every flag names its rule, its
figures against the threshold and the characters that fired it.
"""

from __future__ import annotations

import json
import os
import re

import pyarrow.parquet as pq
import pytest
from rich.console import Console
from tests.helpers.cli import run_cli

from corpuspipe.release.flag_reasons import flag_reasons
from corpuspipe.release.show import edits_of, load_story, render_html, render_plain, render_terminal

SEED_001 = "001_3a72c9e3e2b6471e.txt"  # GBK text decoded as GB2312: '?!稕Q定》', '?A不牢'


def _docs(release):
    return pq.read_table(release / "documents").to_pylist()


def _show(release, item, columns="80", *extra):
    env = {**os.environ, "COLUMNS": columns}
    proc = run_cli("show", str(release), item, *extra, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_in_a_pipe_every_id_is_whole_and_every_edit_marked(seed_release):
    doc = next(d for d in _docs(seed_release) if d["source_path"] == SEED_001)
    out = _show(seed_release, doc["doc_id"])
    story = load_story(seed_release, doc["doc_id"])
    assert story.pairs, "seed 001 shares a copied paragraph with another seed essay"
    for p in story.pairs:  # the whole ids and relation, not `0…` / `n…`
        assert f"{p['this']} ~ {p['other']}" in out and p["relation"] in out
    # every edit: its rule, and before/after on their own marked lines
    blocks = re.findall(r"^\s+\d+\. (\S+) \[[^\]]+\] at clean (\d+), raw (\d+)\n\s+- (.*)\n\s+\+ (.*)\n\s+…(.*)…$",
                        out, flags=re.M)
    assert len(blocks) == len(story.edits) == doc["edit_count"]
    for (rule, cs, rs, minus, plus, ctx), e in zip(blocks, story.edits):
        assert rule == e.rule and int(cs) == e.clean_start and int(rs) == e.raw_start
        assert (minus == "(nothing)") == (not e.before) and (plus == "(nothing)") == (not e.after)
        assert ("[-" in ctx) == bool(e.before) and ("{+" in ctx) == bool(e.after)
    assert "\x1b[" not in out  # no colour codes in a pipe


def test_a_narrow_terminal_gets_the_plain_layout_and_a_wide_one_keeps_whole_ids(seed_release):
    doc = next(d for d in _docs(seed_release) if d["source_path"] == SEED_001)
    story = load_story(seed_release, doc["doc_id"])
    narrow = Console(force_terminal=True, width=80, record=True, file=open(os.devnull, "w"))
    render_terminal(story, narrow)
    assert narrow.export_text() == render_plain(story)
    wide = Console(force_terminal=True, width=120, record=True, file=open(os.devnull, "w"))
    render_terminal(story, wide)
    text = wide.export_text()
    for p in story.pairs:
        assert p["this"] in text and p["other"] in text and p["relation"] in text


def test_mojibake_names_the_lost_bytes_of_seed_001(seed_release):
    doc = next(d for d in _docs(seed_release) if d["source_path"] == SEED_001)
    assert doc["flags"] == ["mojibake"]
    manifest = json.loads((seed_release / "MANIFEST.json").read_text(encoding="utf-8"))
    (reason,) = flag_reasons(doc, edits_of(seed_release, doc["doc_id"]), manifest["config"])
    assert reason.flag == "mojibake" and "lost" in reason.why and "private-use" in reason.why
    assert any("«?!»稕Q定" in s for s in reason.samples)  # the characters, in their raw context
    assert any("⟨U+E2A6⟩" in s for s in reason.samples)  # an invisible private-use character, named
    out = _show(seed_release, doc["doc_id"])
    assert "why mojibake:" in out and "«?!»稕Q定" in out


def _reason(text, flag, config=None):
    doc = {"doc_id": "x", "text": text, "flags": [flag]}
    (r,) = flag_reasons(doc, [], config or {})
    return r


@pytest.fixture(scope="module")
def report_text(gov_reports):
    """A real government work report's first 1,500 characters, cut at a sentence end."""
    text = gov_reports[0]["content"][:1500]
    return text[: text.rfind("。") + 1]


def test_each_flag_on_real_text_names_characters_rule_and_threshold(report_text):
    from corpuspipe.stages.quality.flags import encoding_damage, junk_flags, truncated

    # U+FFFD where a decoder dropped bytes, at two places
    damaged = report_text[:200] + "\ufffd" + report_text[200:600] + "\ufffd\ufffd" + report_text[600:]
    assert encoding_damage(damaged)
    r = _reason(damaged, "encoding_damage")
    assert "3 U+FFFD" in r.why and len(r.samples) == 2 and "@200:" in r.samples[0]
    # a lossy re-encode: '??' runs touching Han
    lossy = report_text.replace(report_text[300:302], "??", 1)
    if encoding_damage(lossy):
        assert "'??'" in _reason(lossy, "encoding_damage").why
    # cut mid-sentence: the last line and its last character
    cut = report_text[: len(report_text) - 9]
    assert truncated(cut)
    r = _reason(cut, "truncated")
    assert repr(cut[-1]) in r.why and "at least 12" in r.why and r.samples[0].endswith(cut.rstrip()[-40:])
    # box-drawing soup from bytes read as cp950
    soup = "╰╯╭╮" * 30 + report_text[:20]
    assert junk_flags(soup) == ["mostly_non_han"]
    assert "outnumber Han" in _reason(soup, "mostly_non_han").why
    latin = "The report in English translation. " * 3 + report_text[:5]
    assert junk_flags(latin) == ["mostly_non_han"]
    assert re.search(r"Han \d+ of \d+ letters = \d+%, under 20 %", _reason(latin, "mostly_non_han").why)
    assert "no letters at all" in _reason("……！！——", "punctuation_only").why
    r = _reason("《通知》全文见附件。", "short", {"ingest": {"min_essay_chars": 50}})
    assert "10 non-space characters" in r.why and "min_essay_chars = 50" in r.why
    r = _reason(report_text[:300] + "深入贯彻《2024-2024年工作要点》。", "rewritten_year")
    assert any("«2024-2024年»" in s for s in r.samples)


def test_a_flag_todays_check_does_not_confirm_says_so(report_text):
    r = _reason(report_text, "truncated")  # ends with 。: today's check does not fire
    assert r.why.startswith("today's check does not fire") and "stops mid-sentence" in r.why
    r = _reason(report_text, "non_utf8_path")  # no check to re-run: its meaning, without the code path
    assert "not valid UTF-8" in r.why and ".py)" not in r.why


def test_the_html_page_explains_the_flags_too(seed_release):
    doc = next(d for d in _docs(seed_release) if d["source_path"] == SEED_001)
    story = load_story(seed_release, doc["doc_id"])
    page = render_html(story, flag_reasons(doc, edits_of(seed_release, doc["doc_id"])))
    assert "<h2>Why each flag</h2>" in page and "稕Q定" in page


def test_counts_agree_with_their_nouns(seed_release, tmp_path):
    """'(1 members)', 'into 1 files': every count built for a user takes the right form."""
    one = next(d for d in _docs(seed_release) if d["cluster_size"] == 1)
    assert f"{one['cluster_id']} (1 member)" in _show(seed_release, one["doc_id"])
    proc = run_cli("export", str(seed_release), str(tmp_path / "x"), "--format", "parquet",
                   "--max-chars", str(one["char_count"]), "--min-chars", str(one["char_count"]))
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"exported 1 document of release \S+ into 1 file in", proc.stdout), proc.stdout
    from corpuspipe.release.report import plural

    assert [plural(n, "file") for n in (0, 1, 2, 1204)] == ["0 files", "1 file", "2 files", "1,204 files"]
