"""Tests for the ingestion stage: discovery, decoding, essay splitting, bad inputs."""

from __future__ import annotations

import builtins
import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.helpers import paths

from corpuspipe.config import IngestConfig
from corpuspipe.core.edits import rebuild_raw
from corpuspipe.stages.ingest.decode import decode_bytes
from corpuspipe.stages.ingest.discover import discover_sources
from corpuspipe.stages.ingest.files import ingest_file
from corpuspipe.core import shardio
from corpuspipe.core.records import Essay, Shard

ROOT = paths.REPO
RAW = ROOT / "raw"
DATA = paths.DATA / "ingest"
CFG = IngestConfig()

SEED = {p.name[:3]: p.name for p in sorted(RAW.glob("*.txt"))}
EXPECTED_TITLES = {
    "000": ["创新组织工作思路推动和谐社会建设"],
    "001": ["組織工作和諧社會交流"],
    "002": ["坚持围绕中心服务大局推进组织工作创新"],
    "003": ["构建和谐社会与加强党的自身建设"],
    "004": [
        "在社会主义新形势下人民政协如何加强自身建设",
        "新形势下如何加强组织部门自身建设",
        "新形势下如何加强组织部门自身建设",
        "新形势下如何加强工会自身建设",
        "新形势下如何不断加强党的自身建设",
    ],
}


def seed_text(key: str) -> str:
    return (RAW / SEED[key]).read_text(encoding="utf-8")


def rebuilt(essays: list[Essay]) -> str:
    return "".join(rebuild_raw(e.body.text, e.body.edits) for e in essays)


def assert_partition(essays: list[Essay], text: str) -> None:
    """Raw ranges tile the decoded file and rebuild it exactly."""
    pos = 0
    for i, e in enumerate(essays):
        assert e.essay_index == i
        assert e.body.base == pos
        pos += len(e.body.raw)
    assert pos == len(text)
    assert rebuilt(essays) == text


def rules_of(essay: Essay) -> list[str]:
    return [e.rule for e in essay.body.edits]


@pytest.fixture(scope="module")
def seed_shards() -> dict[str, Shard]:
    return {k: ingest_file(RAW, name, CFG) for k, name in SEED.items()}


# -- seeds ------------------------------------------------------------------------------


def test_discover_lists_the_five_seeds_sorted():
    paths, quarantine = discover_sources(RAW, CFG)
    assert paths == sorted(SEED.values())
    assert quarantine == []


def test_seeds_give_nine_essays_with_expected_titles(seed_shards):
    titles = {k: [e.title for e in sh.essays] for k, sh in seed_shards.items()}
    assert titles == EXPECTED_TITLES
    assert sum(len(sh.essays) for sh in seed_shards.values()) == 9


@pytest.mark.parametrize("key", sorted(EXPECTED_TITLES))
def test_seed_rebuilds_losslessly_and_records_source(seed_shards, key):
    shard = seed_shards[key]
    text = seed_text(key)
    assert_partition(shard.essays, text)
    (src,) = shard.sources
    assert src.encoding == "utf-8" and src.kind == "text" and src.essays == len(shard.essays)
    assert src.bytes == (RAW / SEED[key]).stat().st_size
    assert all(e.source_sha256 == src.sha256 for e in shard.essays)
    assert shard.quarantine == []
    for e in shard.essays:
        assert all(ed.stage == "ingest" for ed in e.body.edits)
        assert e.title is not None and e.title not in e.body.text.split("\n")[0]


def test_seed_003_byline_goes_to_author_and_date_breadcrumb_stays(seed_shards):
    (essay,) = seed_shards["003"].essays
    assert (essay.author, essay.date) == ("金祖岩", "2006-11-20")
    assert "金祖岩" not in essay.body.text
    assert essay.body.text.startswith("首页 >> 信息公开")  # the watermark stage removes it
    assert {"title_line", "byline"} <= set(rules_of(essay))


def test_seed_001_repeated_title_removed_site_lines_kept_mojibake_flagged(seed_shards):
    (essay,) = seed_shards["001"].essays
    assert "組織工作和諧社會交流\n" not in essay.body.text
    assert essay.body.text.startswith("時間:2022-11-27 03:08:00")
    assert "導語:" in essay.body.text
    assert essay.stats["ingest.repeated_title"] == 1
    assert essay.flags == ["mojibake"]
    assert "?!稕Q定》" in essay.body.text  # flagged, never guessed


def test_seed_004_teaser_near_repeat_and_site_tag(seed_shards):
    first, second, third, fourth, fifth = seed_shards["004"].essays
    assert first.body.edits[0].rule == "teaser"
    assert first.body.edits[0].before.rstrip().endswith("...")
    assert first.body.text.startswith("60年前，人民政协同新中国一起延生。")
    # The near-repeat differs (extra 全面 and a space): it is body text.
    assert second.body.text.startswith("新形势下如何全面 加强组织部门自身建设\n")
    assert "repeated_title" not in rules_of(second)
    assert third.body.text.startswith("一、全县组织工干部队伍现状") and rules_of(third)[0] == "title_line"
    assert fourth.body.text.startswith("摘 要：")
    assert "[范文模版]" not in fifth.title
    assert fifth.stats["ingest.repeated_title"] == 1
    assert fifth.body.text.startswith("河北师范大学")
    assert not fifth.body.text.endswith((" ", "\n"))
    assert all(not e.flags for e in (first, second, third, fourth, fifth))


# -- encodings ------------------------------------------------------------------------------


def _essay_view(shard: Shard) -> list[tuple]:
    return [(e.title, e.author, e.date, e.body.text, e.flags) for e in shard.essays]


def _write_and_ingest(tmp_path: Path, name: str, data: bytes) -> Shard:
    (tmp_path / name).write_bytes(data)
    return ingest_file(tmp_path, name, CFG)


@pytest.mark.parametrize(
    ("key", "codec", "expected"),
    [
        ("000", "gbk", "gb18030"),
        ("002", "gbk", "gb18030"),
        ("004", "gbk", "gb18030"),
        ("003", "gb18030", "gb18030"),  # has U+00A0, which GBK cannot encode
        ("000", "utf-16", "utf-16-le"),
        ("004", "utf-16-be-bom", "utf-16-be"),
        ("001", "utf-16", "utf-16-le"),
        ("003", "utf-8-sig", "utf-8-sig"),
    ],
)
def test_encoded_copies_give_the_same_essays(tmp_path, seed_shards, key, codec, expected):
    text = seed_text(key)
    data = b"\xfe\xff" + text.encode("utf-16-be") if codec == "utf-16-be-bom" else text.encode(codec)
    shard = _write_and_ingest(tmp_path, f"{key}.txt", data)
    assert shard.sources[0].encoding == expected
    assert _essay_view(shard) == _essay_view(seed_shards[key])
    assert_partition(shard.essays, text)


def test_big5_copy_of_traditional_seed_gives_the_same_essays(tmp_path):
    # Big5 has no private-use mapping for seed 001's mojibake PUA character: drop it in both copies.
    text = seed_text("001").replace("\ue2a6", "")
    via_utf8 = _write_and_ingest(tmp_path, "u.txt", text.encode("utf-8"))
    via_big5 = _write_and_ingest(tmp_path, "b.txt", text.encode("big5"))
    assert via_big5.sources[0].encoding in {"big5", "cp950", "big5hkscs"}
    assert _essay_view(via_big5) == _essay_view(via_utf8)
    assert [e.title for e in via_big5.essays] == ["組織工作和諧社會交流"]


def test_nearly_utf8_file_is_kept_as_utf8_and_flagged(tmp_path):
    data = seed_text("000").encode("utf-8")[:-1]  # truncated inside the last character
    shard = _write_and_ingest(tmp_path, "cut.txt", data)
    assert shard.sources[0].encoding == "utf-8"
    assert shard.essays[0].title == EXPECTED_TITLES["000"][0]
    assert "decode_replaced" in shard.essays[0].flags


# -- mojibake -----------------------------------------------------------------------------


def test_reversible_mojibake_is_repaired_as_an_edit(tmp_path):
    text = seed_text("002")
    phrase = "推进组织工作创新"
    garbled = phrase.encode("utf-8").decode("gbk")
    assert garbled != phrase
    bad_text = text.replace(phrase, garbled, 2)
    shard = _write_and_ingest(tmp_path, "m.txt", bad_text.encode("utf-8"))
    (essay,) = shard.essays
    (clean,) = _write_and_ingest(tmp_path, "c.txt", text.encode("utf-8")).essays
    assert essay.body.text == clean.body.text
    assert essay.title == clean.title == EXPECTED_TITLES["002"][0]
    assert essay.stats["ingest.mojibake_repair"] == 1  # the 2nd occurrence is in the title line
    assert "mojibake_repair" in rules_of(essay)
    assert "mojibake" not in essay.flags
    assert_partition(shard.essays, bad_text)


def test_a_big5_paragraph_read_as_gbk_inside_simplified_text_is_flagged(tmp_path):
    paragraph = seed_text("001").split("\n")[12]  # Traditional prose
    garbled = paragraph.encode("big5").decode("gbk", errors="ignore")
    text = seed_text("002").replace("\n", "\n" + garbled + "\n", 1)
    (essay,) = _write_and_ingest(tmp_path, "g.txt", text.encode("utf-8")).essays
    assert essay.flags == ["mojibake"] and essay.stats["ingest.mojibake.garbled_lines"] == 1


@pytest.mark.parametrize("index", range(4))
def test_real_reports_are_not_flagged_as_mojibake(tmp_path, index):
    # 1954 is Traditional; 1979 mixes in link fragments: neither is mojibake.
    doc = _reports()[index]
    (essay,) = _write_and_ingest(tmp_path, "r.txt", doc["content"].encode("utf-8")).essays
    assert "mojibake" not in essay.flags and "mojibake_repair" not in rules_of(essay)


def test_mojibake_runs_grown_from_strong_characters_are_the_regex_runs():
    """find_mojibake_repairs grows each candidate run from a character outside GB2312; the runs
    must be those ``finditer`` of ``[cls]*[strong][cls]*`` gives (the old scan), on real reports
    with UTF-8-read-as-GBK phrases planted anywhere (next to each other, at the ends)."""
    import random
    import re

    from corpuspipe.core.edits import Replacement
    from corpuspipe.stages.ingest import mojibake

    gate, _run, chars = mojibake._mojibake_run()
    cls = "".join(re.escape(c) for c in sorted(chars))
    strong = "".join(re.escape(c) for c in sorted(c for c in chars if gate.fullmatch(c)))
    runs = re.compile(f"[{cls}]*[{strong}][{cls}]*")

    def reference(text: str) -> list:
        out = []
        for m in runs.finditer(text):
            if m.end() - m.start() >= 3:
                found = mojibake._repair_run(m.group())
                if found is not None:
                    out.append(Replacement(m.start() + found[0], m.start() + found[1], found[2], "mojibake_repair"))
        return out

    rng = random.Random(11)
    texts = [d["content"] for d in _reports()]
    n_repairs = 0
    for k in range(60):
        text = texts[k % len(texts)][: rng.randrange(200, 6000)]
        for _ in range(rng.randrange(0, 8)):
            at = rng.randrange(0, len(text) + 1)
            phrase = text[at : at + rng.randrange(2, 12)] or "全面加强"
            text = text[:at] + phrase.encode("utf-8").decode("gbk", errors="ignore") + text[at:]
        want = reference(text)
        assert mojibake.find_mojibake_repairs(text) == want
        n_repairs += len(want)
    assert n_repairs > 20


def test_clean_seeds_get_no_mojibake_repairs(seed_shards):
    for shard in seed_shards.values():
        for e in shard.essays:
            assert "mojibake_repair" not in rules_of(e)


# -- splitting on real report text ----------------------------------------------------------


def _reports() -> list[dict]:
    return [json.loads(line) for line in (DATA / "gov_reports_sample.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("index", range(4))
def test_gov_report_as_txt_stays_one_essay(tmp_path, index):
    doc = _reports()[index]
    for name, text in (("with_title.txt", f"{doc['title']}\n\n{doc['content']}"), ("bare.txt", doc["content"])):
        shard = _write_and_ingest(tmp_path, name, text.encode("utf-8"))
        assert len(shard.essays) == 1, (doc["title"], [e.title for e in shard.essays])
        assert_partition(shard.essays, text)
    assert shard.essays[0].title is None or shard.essays[0].title != doc["title"]
    titled = ingest_file(tmp_path, "with_title.txt", CFG).essays[0]
    assert titled.title == doc["title"]


def test_two_reports_in_one_file_split_at_the_bare_title(tmp_path):
    a, b = _reports()[:2]  # 2025 then 2024: the second starts with a bare title line, no header
    text = f"{a['title']}\n\n{a['content'].strip()}\n\n{b['title']}\n\n{b['content'].strip()}\n"
    shard = _write_and_ingest(tmp_path, "two.txt", text.encode("utf-8"))
    assert [e.title for e in shard.essays] == [a["title"], b["title"]]
    assert_partition(shard.essays, text)


# -- JSON Lines ---------------------------------------------------------------------------


def test_jsonl_records_become_essays_and_bad_lines_are_quarantined(tmp_path):
    docs = _reports()[:2]
    lines = [
        json.dumps({"text": f"{docs[0]['title']}\n\n{docs[0]['content']}", "title": docs[0]["title"],
                    "url": docs[0]["url"], "crawl_time": "2024-05-01T10:00:00"}, ensure_ascii=False),
        "{not json",
        "",
        json.dumps({"title": "no text here"}, ensure_ascii=False),
        json.dumps(["a", "list"]),
        json.dumps({"text": "   "}),
        json.dumps({"text": docs[1]["content"], "url": docs[1]["url"]}, ensure_ascii=False),
    ]  # fmt: skip
    (tmp_path / "crawl.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    shard = ingest_file(tmp_path, "crawl.jsonl", CFG)
    first, second = shard.essays
    assert [e.essay_index for e in shard.essays] == [0, 1]  # index among good records
    assert first.title == docs[0]["title"] and first.url == docs[0]["url"]
    assert first.crawled_at == "2024-05-01T10:00:00"
    assert first.body.text.startswith("各位代表：") and first.stats["ingest.repeated_title"] == 1
    # No title field: the record's own first line (a title line in the 2024 report) is used.
    assert second.title == "政府工作报告" and second.url == docs[1]["url"] and second.crawled_at is None
    # Raw offsets refer to the record's text value.
    assert rebuild_raw(first.body.text, first.body.edits) == json.loads(lines[0])["text"]
    assert rebuild_raw(second.body.text, second.body.edits) == docs[1]["content"]
    reasons = [(q.reason, q.line) for q in shard.quarantine]
    assert reasons == [("bad_json", 2), ("missing_text", 4), ("bad_json", 5), ("empty", 6)]
    assert shard.sources[0].kind == "jsonl" and shard.sources[0].essays == 2
    assert shard.stats["ingest.jsonl_blank_lines"] == 2


def test_jsonl_field_names_are_configurable(tmp_path):
    cfg = IngestConfig(jsonl_text_field="content", jsonl_title_field="headline", jsonl_crawled_at_field="ts")
    doc = _reports()[2]
    rec = {"content": doc["content"], "headline": doc["title"], "ts": 1700000000}
    (tmp_path / "c.jsonl").write_text(json.dumps(rec, ensure_ascii=False), encoding="utf-8")
    (essay,) = ingest_file(tmp_path, "c.jsonl", cfg).essays
    assert essay.title == doc["title"] and essay.crawled_at == "1700000000"


# -- bad input ----------------------------------------------------------------------------


def _reasons(shard: Shard) -> list[str]:
    return [q.reason for q in shard.quarantine]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"  \n\r\n\t\n", "empty"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "binary"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\x00" * 64, "binary"),
        ("正文".encode("utf-8") + b"\x00\x00abc", "binary"),
        (bytes(range(0x80, 0x100)) * 40, "undecodable"),
        (b"\xef\xbb\xbf" + b"\xff\xfe\xfd" * 10, "undecodable"),
    ],
)
def test_bad_files_are_quarantined_with_a_reason(tmp_path, data, reason):
    shard = _write_and_ingest(tmp_path, "bad.txt", data)
    assert shard.essays == [] and shard.sources == []
    (entry,) = shard.quarantine
    assert entry.reason == reason and entry.path == "bad.txt"
    assert entry.detail


def test_a_single_50mb_line_is_quarantined(tmp_path):
    path = tmp_path / "huge.txt"
    with open(path, "wb") as fh:
        chunk = ("字" * 1_000_000).encode("utf-8")  # 3 MB
        for _ in range(17):
            fh.write(chunk)
    assert path.stat().st_size > 50_000_000
    shard = ingest_file(tmp_path, "huge.txt", CFG)
    assert _reasons(shard) == ["line_too_long"] and shard.essays == []
    assert shard.quarantine[0].sha256 is not None


def test_a_line_just_over_the_limit_is_quarantined_after_decoding(tmp_path):
    cfg = IngestConfig(max_line_chars=1000)
    text = seed_text("000") + "\n" + "长" * 1001 + "\n"
    (tmp_path / "long.txt").write_text(text, encoding="utf-8")
    assert _reasons(ingest_file(tmp_path, "long.txt", cfg)) == ["line_too_long"]
    (tmp_path / "ok.txt").write_text(seed_text("000"), encoding="utf-8")
    assert ingest_file(tmp_path, "ok.txt", cfg).essays


def test_too_large_file_is_quarantined_without_reading(tmp_path):
    cfg = IngestConfig(max_file_bytes=1000)
    shutil.copy(RAW / SEED["000"], tmp_path / "a.txt")
    assert _reasons(ingest_file(tmp_path, "a.txt", cfg)) == ["too_large"]


def test_names_with_spaces_and_non_utf8_bytes_are_processed(tmp_path):
    shutil.copy(RAW / SEED["000"], tmp_path / "with space 文件.txt")
    bad_name = os.fsencode(tmp_path) + b"/gbk_\xb0\xa1\xff.txt"  # 啊 in GBK + 0xff: not UTF-8
    with open(bad_name, "wb") as fh:
        fh.write((RAW / SEED["002"]).read_bytes())
    paths, quarantine = discover_sources(tmp_path, CFG)
    assert quarantine == []
    assert paths == ["gbk_\\xb0\\xa1\\xff.txt", "with space 文件.txt"]
    for p in paths:
        p.encode("utf-8")  # storable in JSON and Parquet
    shard = ingest_file(tmp_path, paths[0], CFG)
    (essay,) = shard.essays
    assert essay.title == EXPECTED_TITLES["002"][0]
    assert essay.source_path == paths[0] and "non_utf8_path" in essay.flags
    spaced = ingest_file(tmp_path, paths[1], CFG)
    assert spaced.essays[0].title == EXPECTED_TITLES["000"][0] and not spaced.essays[0].flags
    shardio.write_essays(tmp_path / "shard.parquet", shard.essays)
    assert shardio.read_essays(tmp_path / "shard.parquet")[0].source_path == paths[0]


def test_symlink_loops_are_quarantined_and_the_rest_proceeds(tmp_path):
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    shutil.copy(RAW / SEED["000"], sub / "x.txt")
    os.symlink(tmp_path / "a", sub / "back_to_a")  # directory loop
    os.symlink(tmp_path / "self.txt", tmp_path / "self.txt")  # link to itself
    os.symlink(tmp_path / "missing.txt", tmp_path / "dangling.txt")
    paths, quarantine = discover_sources(tmp_path, CFG)
    assert paths == ["a/b/x.txt"]
    assert [(q.path, q.reason) for q in quarantine] == [
        ("a/b/back_to_a", "symlink_loop"),
        ("dangling.txt", "broken_symlink"),
        ("self.txt", "symlink_loop"),
    ]
    assert _reasons(ingest_file(tmp_path, "self.txt", CFG)) == ["symlink_loop"]


def test_unreadable_file_chmod_000(tmp_path):
    path = tmp_path / "locked.txt"
    shutil.copy(RAW / SEED["000"], path)
    path.chmod(0)
    if os.geteuid() == 0:
        pytest.skip("running as root: root reads mode-000 files; the monkeypatched test covers the path")
    paths, quarantine = discover_sources(tmp_path, CFG)
    assert paths == [] and [q.reason for q in quarantine] == ["unreadable"]
    assert _reasons(ingest_file(tmp_path, "locked.txt", CFG)) == ["unreadable"]


def test_unreadable_file_when_open_raises_permission_error(tmp_path, monkeypatch):
    shutil.copy(RAW / SEED["000"], tmp_path / "locked.txt")
    shutil.copy(RAW / SEED["002"], tmp_path / "fine.txt")
    real_open = builtins.open

    def fake_open(file, *args, **kwargs):
        if str(file).endswith("locked.txt"):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    locked = ingest_file(tmp_path, "locked.txt", CFG)
    assert _reasons(locked) == ["unreadable"] and locked.essays == []
    assert ingest_file(tmp_path, "fine.txt", CFG).essays[0].title == EXPECTED_TITLES["002"][0]


def test_discover_walks_recursively_applies_globs_and_skips_hidden(tmp_path):
    (tmp_path / "d1" / "d2").mkdir(parents=True)
    (tmp_path / ".cache").mkdir()
    for rel in ("d1/d2/deep.TXT", "d1/a.jsonl", "top.md", "skip.csv", ".hidden.txt", ".cache/c.txt"):
        (tmp_path / rel).write_text("x", encoding="utf-8")
    paths, quarantine = discover_sources(tmp_path, CFG)
    assert paths == ["d1/a.jsonl", "d1/d2/deep.TXT", "top.md"]
    # Skipped entries are listed with a reason; a hidden directory is one row, not its files.
    assert [(q.path, q.reason) for q in quarantine] == [
        (".cache", "hidden"),
        (".hidden.txt", "hidden"),
        ("skip.csv", "unsupported_extension"),
    ]


def test_short_essays_are_kept_and_flagged(tmp_path):
    text = "第一篇：短文\n只有一句话。\n第二篇：长文\n" + seed_text("002").split("\n", 1)[1]
    shard = _write_and_ingest(tmp_path, "s.txt", text.encode("utf-8"))
    assert [e.title for e in shard.essays] == ["短文", "长文"]
    assert shard.essays[0].flags == ["short"] and "short" not in shard.essays[1].flags
    assert_partition(shard.essays, text)


def test_shard_round_trips_through_a_shard_file(tmp_path, seed_shards):
    shardio.write_essays(tmp_path / "s.parquet", seed_shards["004"].essays)
    back = Shard(essays=shardio.read_essays(tmp_path / "s.parquet"))
    assert _essay_view(back) == _essay_view(seed_shards["004"])
    assert rebuilt(back.essays) == seed_text("004")


def test_decode_bytes_prefers_strict_utf8():
    text, enc = decode_bytes("纯文本".encode("utf-8"))
    assert (text, enc) == ("纯文本", "utf-8")


# -- property: any arrangement of seed lines partitions and rebuilds -----------------------

_SEED_LINES = [ln for key in sorted(SEED) for ln in seed_text(key).split("\n")] + ["", " ", "\xa0", "第三篇：标题"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(_SEED_LINES), min_size=1, max_size=40), st.booleans())
def test_any_arrangement_of_lines_rebuilds_exactly(tmp_path, lines, trailing_newline):
    text = "\n".join(lines) + ("\n" if trailing_newline else "")
    if not text.strip():
        return
    shard = _write_and_ingest(tmp_path, "p.txt", text.encode("utf-8"))
    assert shard.quarantine == []
    assert_partition(shard.essays, text)
