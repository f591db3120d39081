"""Section dedup semantics on a real release (issue 12): whole-section scores, no chaining through a
paragraph, paragraph reuse reported as such, ``is_leaf``.

Built once per module with ``pipeline.build`` + ``write_release`` from five government work reports
(2013-2017) and their five NPC resolutions (a template family: real section near-duplicates), plus
two planted essays made of the same real text (tests/data/dedup/README.md):

* ``flat_chapter`` -- chapter 三 of the 2014 report, subsections （一）-（八） with their heading
  lines removed: one long leaf that *contains* the 2014 report's subsection leaves.  Scored by its
  best paragraph (the old rule) it was a near-duplicate of each of them with Jaccard 1.0.
* ``paragraph_copy`` -- three paragraphs of the 1999 report around one paragraph copied from the
  2014 report's subsection （九）: neither section is near or contained; one paragraph is reused.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pytest
from tests.helpers import paths

from corpuspipe.config import PipelineConfig
from corpuspipe.stages.dedup.minhash import compare_sets
from corpuspipe.stages.dedup.shingles import shingle_hashes

DATA = paths.DATA / "dedup" / "gov_reports_2013_2017.jsonl"
CFG = PipelineConfig()
SUB_HEAD = re.compile(r"^（[一二三四五六七八九十]+）")


def _reports() -> dict[str, dict]:
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]
    return {r["title"]: r for r in rows}


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.split("\n") if p.strip()]


def _planted(reports: dict[str, dict]) -> dict[str, str]:
    r2014 = reports["2014年中华人民共和国国务院政府工作报告"]["content"]
    chapter = r2014[r2014.index("三、2014年重点工作") : r2014.index("（九）努力建设生态文明的美好家园")]
    flat = [p for p in _paragraphs(chapter)[1:] if not SUB_HEAD.match(p)]  # no 三、, no （一）… headings
    # from subsection （九）, which flat_chapter leaves out: a paragraph in three of the twelve files
    # would be removed by the watermark stage's boilerplate-line statistics
    sub9 = r2014[r2014.index("（九）努力建设生态文明的美好家园") :]
    # (a blank-line-separated block on one line: a block broken at "PM\n2.5\n" is rejoined by normalize)
    copied = next(p for p in sub9.split("\n\n")[1:] if 200 <= len(p) <= 400 and "\n" not in p.strip())
    r1999 = reports["1999年中华人民共和国国务院政府工作报告"]["content"]
    filler = [p for p in _paragraphs(r1999) if len(p) > 150 and not re.match(r"^[（(一二三四五六七八九十0-9]", p)][:3]
    return {
        "flat_chapter": "2014年重点工作（摘编）\n" + "\n".join(flat),
        "paragraph_copy": "农业与农村工作汇编\n" + "\n".join([filler[0], filler[1], copied, filler[2]]),
        "_copied": copied,
    }


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    from corpuspipe import pipeline
    from corpuspipe.release.assemble import write_release

    root = tmp_path_factory.mktemp("secdedup")
    raw = root / "raw"
    raw.mkdir()
    reports = _reports()
    for k, (title, r) in enumerate(sorted(reports.items())):
        if not title.startswith("1999"):  # the 1999 report only lends filler paragraphs
            (raw / f"gov_{k:02d}.txt").write_text(title + "\n" + r["content"], encoding="utf-8")
    for name, text in _planted(reports).items():
        if not name.startswith("_"):
            (raw / f"{name}.txt").write_text(text, encoding="utf-8")
    build = pipeline.build(raw, CFG, root / "out" / ".work")
    return write_release(build, CFG, root / "out", "1.0.0", "2000-01-01T00:00:00Z", build.wall).release_dir


def _q(release: Path, sql: str) -> list[tuple]:
    for t in ("documents", "sections", "duplicates"):
        sql = sql.replace(t.upper(), f"'{release / t / '*.parquet'}'")  # a table's parts
    return duckdb.sql(sql).fetchall()


def _sections_of(release: Path, source: str) -> list[tuple]:
    return _q(release, f"""SELECT s.section_id, s.text, s.is_leaf FROM SECTIONS s JOIN DOCUMENTS d USING (doc_id)
                           WHERE d.source_path LIKE '%{source}' ORDER BY s.char_start""")


def _own_scores(a: str, b: str) -> tuple[float, float, float]:
    return compare_sets(shingle_hashes(a, CFG.dedup), shingle_hashes(b, CFG.dedup))


def test_members_are_near_duplicates_of_their_representative_by_their_own_texts(release):
    """No chaining, and no cluster through a paragraph: every section with ``duplicate_of`` has a
    near_duplicate row with it whose jaccard_exact is the two sections' own Jaccard (>= threshold)."""
    members = _q(release, """SELECT s.section_id, s.text, r.section_id, r.text, p.relation, p.jaccard_exact
        FROM SECTIONS s JOIN SECTIONS r ON r.section_id = s.duplicate_of
        LEFT JOIN DUPLICATES p ON p.level = 'section' AND p.a_id = least(s.section_id, r.section_id)
                                AND p.b_id = greatest(s.section_id, r.section_id)""")
    assert len(members) >= 1  # the resolution family: a real cluster (J 0.37, the two texts)
    for sid, text, rid, rtext, relation, j_row in members:
        j, _, _ = _own_scores(text, rtext)
        assert relation == "near_duplicate", (sid, rid)
        assert j >= CFG.dedup.threshold and j_row == pytest.approx(j, abs=1e-6), (sid, rid, j, j_row)
    # representatives are never members themselves
    assert not _q(release, """SELECT 1 FROM SECTIONS s JOIN SECTIONS r ON r.section_id = s.duplicate_of
                              WHERE r.duplicate_of IS NOT NULL""")


def test_every_section_pair_scores_are_the_sections_own(release):
    """jaccard_exact / containments of every section row are those of the two whole sections (before,
    a chapter and one of its subsections were reported with Jaccard 1.0 from their best paragraph)."""
    rows = _q(release, """SELECT a.text, b.text, p.jaccard_exact, p.containment_ab, p.containment_ba, p.relation
        FROM DUPLICATES p JOIN SECTIONS a ON a.section_id = p.a_id JOIN SECTIONS b ON b.section_id = p.b_id
        WHERE p.level = 'section'""")
    assert len(rows) > 10
    for ta, tb, j, cab, cba, relation in rows:
        assert (j, cab, cba) == pytest.approx(_own_scores(ta, tb), abs=1e-6)
        if relation == "near_duplicate":
            assert j >= CFG.dedup.threshold
        elif relation == "reuse":
            assert j < CFG.dedup.threshold and max(cab, cba) >= CFG.dedup.containment_threshold
        else:
            assert relation == "paragraph_reuse"
            assert j < CFG.dedup.threshold and max(cab, cba) < CFG.dedup.containment_threshold


def test_whole_chapter_vs_a_copied_subsection_is_reuse_not_jaccard_one(release):
    (flat_id, flat_text, flat_leaf), = _sections_of(release, "flat_chapter.txt")  # one leaf: no markers left
    assert flat_leaf
    r2014 = [s for s in _sections_of(release, "gov_02.txt") if s[2]]  # sorted titles: 2014 report is third
    assert any(t.startswith("（四）促进农业现代化") for _, t, _ in r2014)
    subs = [s for s in r2014 if SUB_HEAD.match(s[1]) and s[1][:3] in {f"（{c}）" for c in "一二三四五六七八"}]
    assert len(subs) == 8
    rows = {(a, b): (j, cab, cba, rel) for a, b, j, cab, cba, rel in _q(release, f"""
        SELECT a_id, b_id, jaccard_exact, containment_ab, containment_ba, relation FROM DUPLICATES
        WHERE level = 'section' AND '{flat_id}' IN (a_id, b_id)""")}
    found = 0
    for sid, text, _ in subs:
        key = (min(sid, flat_id), max(sid, flat_id))
        if key not in rows:
            continue  # extra pairs beyond the per-item budget are not written (README)
        found += 1
        j, cab, cba, rel = rows[key]
        sub_in_flat = cab if key[0] == sid else cba
        assert rel == "reuse" and j < 0.3 and sub_in_flat >= CFG.dedup.containment_threshold, (text[:12], rows[key])
    assert found >= min(8, CFG.dedup.extra_pairs_per_item)
    flat_dup = _q(release, f"SELECT duplicate_of, cluster_id FROM SECTIONS WHERE section_id = '{flat_id}'")
    assert flat_dup == [(None, flat_id)]  # containing eight sections makes it a near-duplicate of none


def test_a_copied_paragraph_is_paragraph_reuse_with_its_own_score(release):
    copied = _planted(_reports())["_copied"]
    (pid, ptext, leaf), = _sections_of(release, "paragraph_copy.txt")
    assert leaf and copied in ptext
    (src_id, src_text, _), = [s for s in _sections_of(release, "gov_02.txt") if s[1].startswith("（九）努力建设生态文明")]
    row = _q(release, f"""SELECT relation, jaccard_exact, containment_ab, containment_ba, paragraph_jaccard,
        paragraph_containment FROM DUPLICATES WHERE level = 'section'
        AND a_id = '{min(pid, src_id)}' AND b_id = '{max(pid, src_id)}'""")
    assert len(row) == 1
    relation, j, cab, cba, pj, pc = row[0]
    assert relation == "paragraph_reuse"
    assert j < 0.2 and max(cab, cba) < 0.5  # the sections' own scores: mostly different text
    assert pj > 0.95 and pc > 0.95  # the copied paragraph pair
    assert _q(release, f"SELECT duplicate_of FROM SECTIONS WHERE section_id = '{pid}'") == [(None,)]


def test_is_leaf_marks_sections_that_are_nobodys_parent_and_leaves_never_overlap(release):
    rows = _q(release, "SELECT doc_id, section_id, parent_id, is_leaf, char_start, char_end, level FROM SECTIONS")
    parents = {p for _, _, p, _, _, _, _ in rows if p}
    assert {s for _, s, _, leaf, _, _, _ in rows if not leaf} == parents
    assert any(not leaf for *_, leaf, _, _, _ in rows) and any(leaf for *_, leaf, _, _, _ in rows)
    by_doc: dict[str, list[tuple[int, int]]] = {}
    for d, _, _, leaf, a, b, _ in rows:
        if leaf:
            by_doc.setdefault(d, []).append((a, b))
    for spans in by_doc.values():
        spans.sort()
        assert all(b1 <= a2 for (_, b1), (a2, _) in zip(spans, spans[1:]))  # leaf text is never counted twice
    # and the document-level rows carry no paragraph scores
    assert _q(release, """SELECT count(*) FROM DUPLICATES WHERE level = 'document'
                          AND (paragraph_jaccard IS NOT NULL OR paragraph_containment IS NOT NULL)""") == [(0,)]
