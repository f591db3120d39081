"""Issue 24 #8-#10: crawl text as it comes -- CR and CRLF, invisible characters, HTML left in the text.

Damaged copies of real text (the seed essays, real government reports) must give the text, title and
sections of the clean original, with every repair an edit of stage ``ingest``, and must never be
chosen as their cluster's representative."""

from __future__ import annotations

import json
import random
import re
import unicodedata
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from tests.helpers import paths
from tests.helpers.seed_release import build_seed_release

from corpuspipe.config import IngestConfig, NormalizeConfig
from corpuspipe.core.edits import rebuild_raw
from corpuspipe.core.records import Essay
from corpuspipe.release.export import Selection, export_release
from corpuspipe.stages.ingest import crawltext
from corpuspipe.stages.ingest.files import ingest_file
from corpuspipe.stages.normalize import normalize_essay

CFG = IngestConfig()
DATA = paths.DATA / "ingest"
# a spread of invisible characters: zero-width (non-)joiners, word joiner, BOM, soft hyphen, Mongolian
# vowel separator, bidi embeddings and isolates, a tag character, a variation selector, the combining
# grapheme joiner, Hangul fillers
HIDDEN = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e", "\u202a", "\u202c", "\u2066",
          "\u2069", "\U000e0041", "\ufe0f", "\u034f", "\u3164", "\uffa0", "\u115f", "\u2063"]


def _seed_texts(raw_dir: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(raw_dir.glob("*.txt"))}


def _reports() -> list[str]:
    rows = [json.loads(line) for line in (DATA / "gov_reports_sample.jsonl").read_text(encoding="utf-8").splitlines()]
    return [r["title"] + "\n\n" + r["content"] + "\n" for r in rows]


def _essays(root: Path, name: str, data: bytes) -> list[Essay]:
    (root / name).write_bytes(data)
    shard = ingest_file(root, name, CFG)
    assert shard.quarantine == [], shard.quarantine
    return shard.essays


def _view(essays: list[Essay]) -> list[tuple]:
    return [(e.title, e.body.text) for e in essays]


def _lossless(essays: list[Essay], decoded: str) -> None:
    assert "".join(rebuild_raw(e.body.text, e.body.edits) for e in essays) == decoded


# ----------------------------------------------------------------------------- #8 line endings
def _mixed_endings(text: str, rnd: random.Random) -> str:
    """Each line end one of LF, CRLF, CR, U+2028, U+2029 (a CR never right before an LF: that pair
    is one CRLF line end, not two)."""
    parts = text.split("\n")
    out = parts[0]
    for p in parts[1:]:
        ends = ["\n", "\r\n", "\r", "\u2028", "\u2029"]
        out += rnd.choice([e for e in ends if not (out.endswith("\r") and e.startswith("\n"))]) + p
    return out


def test_crlf_lone_cr_and_mixed_line_ends_give_the_lf_essays(tmp_path, raw_dir):
    rnd = random.Random(8)
    texts = {**_seed_texts(raw_dir), **{f"report{i}.txt": t for i, t in enumerate(_reports())}}
    for name, text in texts.items():
        want = _view(_essays(tmp_path, "lf_" + name, text.encode("utf-8")))
        for kind, damaged in (("crlf", text.replace("\n", "\r\n")), ("cr", text.replace("\n", "\r")),
                              ("mixed", _mixed_endings(text, rnd))):
            essays = _essays(tmp_path, f"{kind}_{name}", damaged.encode("utf-8"))
            assert _view(essays) == want, (kind, name)
            assert all("line_endings" in e.flags for e in essays)
            assert {ed.rule for e in essays for ed in e.body.edits} >= {"cr" if kind == "cr" else "crlf"}
            _lossless(essays, damaged)


def test_a_lone_cr_file_is_not_one_overlong_line(tmp_path, raw_dir):
    text = next(iter(_seed_texts(raw_dir).values()))
    cfg = IngestConfig(max_line_chars=500)
    (tmp_path / "cr.txt").write_bytes(text.replace("\n", "\r").encode("utf-8"))
    shard = ingest_file(tmp_path, "cr.txt", cfg)
    assert shard.quarantine == [] and shard.essays


def test_a_jsonl_record_with_crlf_and_markup_in_its_fields(tmp_path):
    text = _reports()[0].split("\n", 2)[2]
    lf = {"title": "政府工作报告", "text": text}
    damaged = {"title": "政府工作报告&nbsp;\u200c", "text": text.replace("\n", "\r\n")}
    (tmp_path / "a.jsonl").write_text(json.dumps(lf, ensure_ascii=False) + "\n", encoding="utf-8")
    (tmp_path / "b.jsonl").write_text(json.dumps(damaged, ensure_ascii=False) + "\n", encoding="utf-8")
    (a,) = ingest_file(tmp_path, "a.jsonl", CFG).essays
    (b,) = ingest_file(tmp_path, "b.jsonl", CFG).essays
    assert b.body.text == a.body.text and b.title == a.title == "政府工作报告"
    assert "line_endings" in b.flags and rebuild_raw(b.body.text, b.body.edits) == damaged["text"]


# ----------------------------------------------------------------------------- #9 invisible characters
def test_the_invisible_class_is_every_format_character_and_the_fillers():
    cls = re.compile(f"[{crawltext.INVISIBLE}]")
    for ch in HIDDEN:
        assert cls.match(ch), hex(ord(ch))
    cf = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf"]
    missed = [hex(ord(c)) for c in cf if not cls.match(c)]
    assert missed == ["0x600", "0x601", "0x602", "0x603", "0x604", "0x605", "0x6dd", "0x70f", "0x890", "0x891",
                      "0x8e2", "0x110bd", "0x110cd"]  # the visible (prepended concatenation) marks
    for ch in "国，。 \u3000\u00a0\n\tAé\u0301":  # text, spaces, a combining accent: never removed
        assert not cls.match(ch), hex(ord(ch))


def test_invisible_characters_anywhere_are_removed_as_edits(tmp_path, raw_dir):
    rnd = random.Random(9)
    for name, text in {**_seed_texts(raw_dir), "report.txt": _reports()[1]}.items():
        want = _view(_essays(tmp_path, "clean_" + name, text.encode("utf-8")))
        out = []
        for ch in text:
            out.append(ch)
            if rnd.random() < 0.03:
                out.append("".join(rnd.choice(HIDDEN) for _ in range(rnd.randint(1, 3))))
        damaged = "".join(out)
        essays = _essays(tmp_path, "inv_" + name, damaged.encode("utf-8"))
        assert _view(essays) == want, name
        assert all("invisible_chars" in e.flags for e in essays)
        assert not any(re.search(f"[{crawltext.INVISIBLE}]", e.body.text) for e in essays)
        _lossless(essays, damaged)


def test_a_watermark_hidden_with_invisible_characters_goes_on_every_page(tmp_path, gov_reports):
    """10 pages of one site end with its watermark (full-width letters, 1-3 invisible characters at
    varied places, a different one on each page); 10 pages of another site do not.  Before: the
    watermark stayed on 3-10 of the 10 pages and U+200C was left in the text."""
    rnd = random.Random(5)
    hidden = ["\u200c", "\u200d", "\u2060", "\ufeff", "\u180e", "\u3164", "\uffa0", "\U000e0020", "\u202c", "\u00ad"]
    mark = "本文由ｆａｎｗｅｎ范文网整理，转载请注明出处：ｗｗｗ．ｆａｎｗｅｎ．ｃｏｍ"
    raw = tmp_path / "raw"
    reports = [r for r in gov_reports if len(r["content"]) > 3000][:20]
    for i, r in enumerate(reports):
        site = "fanwen" if i < 10 else "other"
        body = r["content"].replace("\u200b", "")[:2500].rsplit("\n", 1)[0]
        text = r["title"] + "\n\n" + body + "\n"
        if site == "fanwen":
            wm = list(mark)
            for _ in range(1 + i % 3):
                wm.insert(rnd.randrange(1, len(wm)), hidden[(i + _) % len(hidden)])
            text += "".join(wm) + "\n"
        p = raw / site / "2024" / f"p{i:02d}.txt"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    rel = build_seed_release(raw, tmp_path / "releases")
    docs = pq.read_table(rel / "documents", columns=["source_path", "text"]).to_pylist()
    pages = [d for d in docs if d["source_path"].startswith("fanwen/")]
    assert len(pages) == 10
    kept = [d["source_path"] for d in pages if "转载请注明出处" in d["text"] or "范文网" in d["text"]]
    assert kept == []
    assert not any(re.search(f"[{crawltext.INVISIBLE}]", d["text"]) for d in docs)


# ----------------------------------------------------------------------------- #10 HTML left in the text
_NAMED = {"“": "&ldquo;", "”": "&rdquo;", "—": "&mdash;", "…": "&hellip;", "·": "&middot;", "《": "&#12298;",
          "》": "&#x300B;"}


def _with_markup(text: str, rnd: random.Random) -> str:
    chars = []
    for ch in text:
        r = rnd.random()
        if ch in _NAMED and r < 0.6:
            chars.append(_NAMED[ch])
        elif ch == "，" and r < 0.2:
            chars.append("&#65292;")  # decimal
        elif ch == "、" and r < 0.2:
            chars.append("&#x3001;")  # hexadecimal
        elif ch == "国" and r < 0.3:
            chars.append("&#22269;")
        elif ch == "家" and r < 0.2:
            chars.append("&#23478")  # no semicolon (browsers decode it)
        elif ch == "。" and r < 0.1:
            chars.append("&amp;#12290;")  # escaped twice by a CMS
        else:
            chars.append(ch)
    lines = []
    for line in "".join(chars).split("\n"):
        r = rnd.random()
        if line and r < 0.15:
            line = "<p>" + line + "</p>"
        elif line and r < 0.25:
            line = line + "<br/>"
        elif line and r < 0.3:
            line = '<div class="content">' + line + "</DIV>"
        elif line and r < 0.35:
            line = '<span style="font-size:14px">' + line + "</span>"
        elif line and r < 0.38:
            line = line + "&lt;br&gt;"
        elif line and r < 0.40:
            line = line + "<!-- ad -->"
        elif line and r < 0.42:
            line = line + '<script type="text/javascript">var a = 1; if (a < 2) {}</script>'
        lines.append(line)
    return "\n".join(lines)


def test_entities_and_tags_are_decoded_as_edits(tmp_path, raw_dir):
    rnd = random.Random(10)
    for name, text in {**_seed_texts(raw_dir), "report.txt": _reports()[2]}.items():
        want = [(t, b.replace("&", "&")) for t, b in _view(_essays(tmp_path, "clean_" + name, text.encode("utf-8")))]
        damaged = _with_markup(text, rnd)
        essays = _essays(tmp_path, "html_" + name, damaged.encode("utf-8"))
        if name != "report.txt":  # the report has paragraphs in <p> only where it had lines: same text
            assert [(t, re.sub("[\u00a0 ]+", "", b)) for t, b in _view(essays)] == \
                   [(t, re.sub("[\u00a0 ]+", "", b)) for t, b in want], name
        assert all("html_markup" in e.flags for e in essays) and not any("html_residue" in e.flags for e in essays)
        for e in essays:
            assert not re.search(r"&#?\w+;?|</?(?:p|br|div|span|script)\b|&lt;", e.body.text), e.body.text[:200]
        _lossless(essays, damaged)


def test_br_inside_a_line_breaks_it(tmp_path):
    """A CMS export joins paragraphs with <br> in one line: ``A<br /><br />B`` is ``A\n\nB``."""
    text = _reports()[0]
    paras = [line for line in text.split("\n") if len(line) > 40]
    damaged = text
    for a, b in zip(paras[1:12:2], paras[2:13:2]):
        damaged = damaged.replace(a + "\n\n" + b, a + "<br /><BR>" + b, 1)
    assert damaged.count("<br />") >= 4
    want = _view(_essays(tmp_path, "a.txt", text.encode()))
    assert _view(_essays(tmp_path, "br.txt", damaged.encode("utf-8"))) == want


@pytest.mark.parametrize("residue", ["&foo;", "&#0;", "&#xD800;", "&nbsp", "&amp", '<div class="x'])
def test_ambiguous_markup_stays_flagged_and_its_semicolon_is_never_converted(tmp_path, residue):
    text = "各位代表：\n现在，我代表国务院" + residue + "前进，向大会报告政府工作，请予审议。" * 3 + "\n"
    (essay,) = _essays(tmp_path, "r.txt", text.encode("utf-8"))
    assert "html_residue" in essay.flags
    normalize_essay(essay, NormalizeConfig())
    assert residue in essay.body.text  # never half-converted (its ';' turned into '；')


def test_damaged_copies_never_represent_their_cluster(tmp_path, raw_dir):
    """Every seed beside its CRLF, lone-CR, invisible-character and HTML copies: same text, title and
    sections; the clean original represents each cluster and is what export ships."""
    rnd = random.Random(24)
    raw = tmp_path / "raw"
    raw.mkdir()
    for name, text in _seed_texts(raw_dir).items():
        (raw / name).write_text(text, encoding="utf-8")
        (raw / f"crlf_{name}").write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
        (raw / f"cr_{name}").write_bytes(text.replace("\n", "\r").encode("utf-8"))
        inv = "".join(ch + (rnd.choice(HIDDEN) if rnd.random() < 0.02 else "") for ch in text)
        (raw / f"inv_{name}").write_text(inv, encoding="utf-8")
        lines = text.split("\n")
        html = "\n".join(("<p>" + ln + "</p>" if ln and i % 3 == 0 else ln).replace("，", "&#65292;", 1)
                         for i, ln in enumerate(lines))
        (raw / f"html_{name}").write_text(html, encoding="utf-8")
    rel = build_seed_release(raw, tmp_path / "releases")
    docs = pq.read_table(rel / "documents", columns=[
        "doc_id", "source_path", "essay_index", "title", "text", "duplicate_of", "section_count"]).to_pylist()
    by = {(d["source_path"], d["essay_index"]): d for d in docs}
    ids = {d["doc_id"]: d for d in docs}
    copies = [d for d in docs if d["source_path"].split("_", 1)[0] in ("crlf", "cr", "inv", "html")]
    assert len(copies) == 4 * (len(docs) // 5)
    for d in copies:
        orig = by[(d["source_path"].split("_", 1)[1], d["essay_index"])]
        assert (d["text"], d["title"], d["section_count"]) == (orig["text"], orig["title"], orig["section_count"])
        assert orig["duplicate_of"] is None, orig["source_path"]
        assert ids[d["duplicate_of"]]["source_path"] == orig["source_path"]
    res = export_release(rel, tmp_path / "export", Selection(exclude_flags=[]), formats=["parquet"])
    shipped = pq.read_table(tmp_path / "export" / "parquet", columns=["source_path"])["source_path"].to_pylist()
    assert res.rows == len(shipped) and set(shipped) == set(_seed_texts(raw_dir))
