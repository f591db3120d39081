"""Ingestion that never dies: decoding short real files in every encoding, per-record and
per-file isolation, discovery of odd entries (FIFOs, sockets, links out of the root)."""

from __future__ import annotations

import json
import os
import shutil
import socket

import pytest
from tests.helpers import paths

from corpuspipe.config import IngestConfig
from corpuspipe.stages.ingest import files as ingest_files
from corpuspipe.stages.ingest import starts as ingest_starts
from corpuspipe.stages.ingest.decode import DecodeRejected, decode_bytes
from corpuspipe.stages.ingest.discover import discover_sources
from corpuspipe.stages.ingest.files import ingest_file

ROOT = paths.REPO
RAW = ROOT / "raw"
DATA = paths.DATA / "ingest"
CFG = IngestConfig()
SEED_000 = sorted(RAW.glob("000_*.txt"))[0]


def _jsonl(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines()]


def _reasons(shard) -> list[tuple[str, int | None]]:
    return [(q.reason, q.line) for q in shard.quarantine]


# -- decoding: strict candidates first, on real text -------------------------------------------


def _window(text: str, codec: str, start: int, max_bytes: int) -> str:
    """Characters of text from start whose encoding stays within max_bytes (the codec's
    unencodable characters dropped: real text otherwise)."""
    out: list[str] = []
    size = 0
    for c in text[start:]:
        try:
            n = len(c.encode(codec))
        except UnicodeEncodeError:
            continue
        if size + n > max_bytes:
            break
        out.append(c)
        size += n
    return "".join(out)


SIMPLIFIED = [d["content"] for d in _jsonl("gov_reports_sample.jsonl")[:3]]  # 2025, 2024, 1979
TRADITIONAL = _jsonl("gov_reports_sample.jsonl")[3]["content"]  # 1954, Traditional script
OPENINGS = [d["content"] for d in _jsonl("report_openings.jsonl")]


@pytest.mark.parametrize("size", [200, 500, 1000, 2500, 3000])
@pytest.mark.parametrize("codec", ["gb18030", "gbk", "gb2312"])
def test_short_simplified_files_decode_as_gb18030(size, codec):
    for text in [*SIMPLIFIED, *OPENINGS]:
        for start in range(0, len(text) - 1600, max(1, (len(text) - 1600) // 5)):
            window = _window(text, codec, start, size)
            got, enc = decode_bytes(window.encode(codec))
            assert (got, enc) == (window, "gb18030")


@pytest.mark.parametrize("size", [200, 700, 2500])
def test_report_openings_with_a_zero_width_space_are_not_quarantined(tmp_path, size):
    # charset-normalizer answered "no encoding fits" for these (measured on the old decoder).
    for k, text in enumerate(OPENINGS):
        window = _window(text, "gb18030", 0, size)
        assert window.startswith("\u200b")
        (tmp_path / f"{k}.txt").write_bytes(window.encode("gb18030"))
        shard = ingest_file(tmp_path, f"{k}.txt", CFG)
        assert shard.quarantine == [] and shard.sources[0].encoding == "gb18030"


@pytest.mark.parametrize("size", [200, 500, 1000, 2500, 3000])
def test_short_traditional_files_decode_as_big5(size):
    for start in range(0, len(TRADITIONAL) - 1600, (len(TRADITIONAL) - 1600) // 8):
        window = _window(TRADITIONAL, "big5", start, size)
        got, enc = decode_bytes(window.encode("big5"))
        assert (got, enc) == (window, "big5")


def test_simplified_text_in_big5_and_traditional_in_gb18030_keep_their_codec():
    # Big5 bytes of Simplified-only text cannot exist, but Traditional text is valid GB18030
    # (GBK has the Traditional characters): the frequency check must not send it to Big5.
    trad = _window(TRADITIONAL, "gbk", 500, 2500)
    assert decode_bytes(trad.encode("gb18030")) == (trad, "gb18030")
    # GBK bytes of Simplified text usually also decode as Big5 (to rare characters).
    simp = _window(SIMPLIFIED[0], "gbk", 0, 2500)
    data = simp.encode("gbk")
    assert data.decode("big5", errors="strict" if _decodes(data, "big5") else "replace") != simp
    assert decode_bytes(data) == (simp, "gb18030")


def _decodes(data: bytes, codec: str) -> bool:
    try:
        data.decode(codec)
        return True
    except UnicodeDecodeError:
        return False


@pytest.mark.parametrize(
    ("codec", "bom", "expected"),
    [("utf-16-le", b"\xff\xfe", "utf-16-le"), ("utf-16-be", b"\xfe\xff", "utf-16-be"), ("utf-8", b"\xef\xbb\xbf", "utf-8-sig")],
)
def test_short_files_with_a_bom(codec, bom, expected):
    window = _window(SIMPLIFIED[1], codec, 100, 300)
    assert decode_bytes(bom + window.encode(codec)) == (window, expected)


def test_a_strictly_valid_file_with_a_private_use_character_is_kept(tmp_path):
    # Seed 000 plus one private-use character (real mojibake leaves them): still GB18030,
    # never quarantined even though it is not "plausible" at that size.
    text = _window(SIMPLIFIED[0], "gb18030", 0, 300) + "\ue2a6"
    got, enc = decode_bytes(text.encode("gb18030"))
    assert (got, enc) == (text, "gb18030")


def test_control_characters_are_not_taken_for_chinese():
    # Random bytes that happen to be valid GB18030 are still not text.
    data = bytes([0x01, 0x02, 0x1B]) * 50 + b"\x81\x30\x81\x30" * 10
    with pytest.raises(DecodeRejected):
        decode_bytes(data)


# -- per-record isolation (JSON Lines) ----------------------------------------------------------


def test_a_deeply_nested_line_and_a_huge_integer_quarantine_only_their_lines(tmp_path):
    doc = _jsonl("gov_reports_sample.jsonl")[0]
    good = json.dumps({"text": doc["content"], "title": doc["title"]}, ensure_ascii=False)
    nested = "[" * 100_000 + "]" * 100_000
    huge_int = '{"text": "正文", "n": ' + "7" * 5_000 + "}"
    (tmp_path / "c.jsonl").write_text("\n".join([good, nested, huge_int, good]) + "\n", encoding="utf-8")
    shard = ingest_file(tmp_path, "c.jsonl", CFG)
    assert [e.title for e in shard.essays] == [doc["title"]] * 2
    assert _reasons(shard) == [("bad_json", 2), ("bad_json", 3)]
    nested_q, int_q = shard.quarantine
    assert "RecursionError" in nested_q.detail and "ValueError" in int_q.detail
    assert "[[" not in nested_q.detail and "777" not in int_q.detail  # never the content


def test_an_exception_while_building_one_record_quarantines_that_line(tmp_path, monkeypatch):
    docs = _jsonl("gov_reports_sample.jsonl")[:3]
    real = ingest_files.analyse_essay

    def flaky(text, *args, **kwargs):
        if text.startswith(docs[1]["content"][:20]):
            raise KeyError("secret essay text")
        return real(text, *args, **kwargs)

    monkeypatch.setattr(ingest_files, "analyse_essay", flaky)
    lines = [json.dumps({"text": d["content"]}, ensure_ascii=False) for d in docs]
    (tmp_path / "c.jsonl").write_text("\n".join(lines), encoding="utf-8")
    shard = ingest_file(tmp_path, "c.jsonl", CFG)
    assert len(shard.essays) == 2 and [e.essay_index for e in shard.essays] == [0, 1]
    (q,) = shard.quarantine
    assert (q.reason, q.line, q.detail) == ("error", 2, "error: KeyError")


def test_every_record_missing_the_text_field_names_the_fields_seen(tmp_path):
    docs = _jsonl("gov_reports_sample.jsonl")[:3]
    lines = [json.dumps({"content": d["content"], "title": d["title"], "url": d["url"]}, ensure_ascii=False) for d in docs]
    (tmp_path / "c.jsonl").write_text("\n".join(lines), encoding="utf-8")
    shard = ingest_file(tmp_path, "c.jsonl", CFG)
    assert shard.essays == []
    (q,) = shard.quarantine
    assert q.reason == "missing_text" and q.line is None
    assert q.detail.startswith('no "text" field; fields seen: content, title, url')


def test_one_record_missing_the_text_field_among_good_ones_is_one_line(tmp_path):
    doc = _jsonl("gov_reports_sample.jsonl")[0]
    lines = [json.dumps({"text": doc["content"]}, ensure_ascii=False), json.dumps({"body": "x", "id": 3})]
    (tmp_path / "c.jsonl").write_text("\n".join(lines), encoding="utf-8")
    shard = ingest_file(tmp_path, "c.jsonl", CFG)
    assert len(shard.essays) == 1
    (q,) = shard.quarantine
    assert (q.reason, q.line, q.detail) == ("missing_text", 2, 'no "text" field; fields seen: body, id')


# -- per-file isolation -------------------------------------------------------------------------


def test_an_exception_inside_a_file_quarantines_the_file_by_type_only(tmp_path, monkeypatch):
    shutil.copy(SEED_000, tmp_path / "a.txt")

    def boom(*args, **kwargs):
        raise ValueError("contents of the file: 创新组织工作思路")

    monkeypatch.setattr(ingest_files, "iter_split", boom)
    shard = ingest_file(tmp_path, "a.txt", CFG)
    assert shard.essays == [] and shard.sources == []
    (q,) = shard.quarantine
    assert (q.path, q.reason, q.detail) == ("a.txt", "error", "error: ValueError")
    assert shard.stats["ingest.quarantined_files"] == 1


def test_a_recursion_error_in_splitting_quarantines_the_file(tmp_path, monkeypatch):
    shutil.copy(SEED_000, tmp_path / "a.txt")

    def deep(*args, **kwargs):
        return deep(*args, **kwargs)

    monkeypatch.setattr(ingest_starts, "bigrams", deep)
    shard = ingest_file(tmp_path, "a.txt", CFG)
    assert [(q.reason, q.detail) for q in shard.quarantine] == [("error", "error: RecursionError")]


# -- discovery ------------------------------------------------------------------------------------


def test_symlink_out_of_the_root_is_quarantined_inside_links_are_followed(tmp_path):
    root, outside = tmp_path / "raw", tmp_path / "elsewhere"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    shutil.copy(SEED_000, root / "sub" / "a.txt")
    shutil.copy(SEED_000, outside / "b.txt")
    os.symlink("/etc/passwd", root / "x.txt")
    os.symlink(outside / "b.txt", root / "out.txt")
    os.symlink(outside, root / "outdir")
    os.symlink(root / "sub" / "a.txt", root / "inside.txt")
    paths, quarantine = discover_sources(root, CFG)
    assert paths == ["inside.txt", "sub/a.txt"]
    assert [(q.path, q.reason) for q in quarantine] == [
        ("out.txt", "symlink_outside_root"),
        ("outdir", "symlink_outside_root"),
        ("x.txt", "symlink_outside_root"),
    ]
    assert all("passwd" not in q.detail and str(outside) not in q.detail for q in quarantine)
    # ingest_file refuses it too (a caller may pass a path discovery never listed).
    assert _reasons(ingest_file(root, "x.txt", CFG)) == [("symlink_outside_root", None)]
    assert ingest_file(root, "inside.txt", CFG).essays
    # Opting in follows them.
    cfg = IngestConfig(follow_external_symlinks=True, include_globs=("**/*.txt",))
    paths, quarantine = discover_sources(root, cfg)
    assert paths == ["inside.txt", "out.txt", "outdir/b.txt", "sub/a.txt", "x.txt"] and quarantine == []


def test_fifo_and_socket_are_quarantined_not_opened(tmp_path):
    os.mkfifo(tmp_path / "pipe.txt")
    sock_path = tmp_path / "s.txt"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(os.fspath(sock_path))
    except OSError:  # path too long for AF_UNIX
        sock.close()
        pytest.skip("cannot bind a unix socket here")
    try:
        shutil.copy(SEED_000, tmp_path / "ok.txt")
        paths, quarantine = discover_sources(tmp_path, CFG)
        assert paths == ["ok.txt"]
        assert [(q.path, q.reason, q.detail) for q in quarantine] == [
            ("pipe.txt", "not_a_regular_file", "FIFO"),
            ("s.txt", "not_a_regular_file", "socket"),
        ]
        # Opening a FIFO would block forever: ingest_file refuses before open.
        assert _reasons(ingest_file(tmp_path, "pipe.txt", CFG)) == [("not_a_regular_file", None)]
    finally:
        sock.close()


def test_device_is_quarantined(tmp_path):
    if not os.path.exists("/dev/null"):
        pytest.skip("no /dev/null")
    root = tmp_path / "raw"
    root.mkdir()
    os.symlink("/dev/null", root / "null.txt")
    cfg = IngestConfig(follow_external_symlinks=True)
    _, quarantine = discover_sources(root, cfg)
    assert [(q.path, q.reason, q.detail) for q in quarantine] == [("null.txt", "not_a_regular_file", "character device")]


def test_unsupported_extension_and_hidden_entries_get_a_row_each(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("x")
    (tmp_path / "page.html").write_text("<html>正文</html>", encoding="utf-8")
    (tmp_path / "README").write_text("x")
    (tmp_path / ".notes.txt").write_text("x")
    shutil.copy(SEED_000, tmp_path / "a.txt")
    paths, quarantine = discover_sources(tmp_path, CFG)
    assert paths == ["a.txt"]
    assert [(q.path, q.reason) for q in quarantine] == [
        (".git", "hidden"),
        (".notes.txt", "hidden"),
        ("README", "unsupported_extension"),
        ("page.html", "unsupported_extension"),
    ]
    assert quarantine[3].detail == "'.html' matches no include glob" and quarantine[3].bytes > 0
