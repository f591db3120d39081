"""Issue 24 #11: a file whose encoding changes midway (crawled pages concatenated) is decoded segment
by segment, each segment released with its encoding recorded, and only a segment no encoding fits
is quarantined.  Before, a file half UTF-8 and half GBK was quarantined whole as ``undecodable``."""

from __future__ import annotations

import json
import random

import pyarrow.parquet as pq
import pytest
from tests.helpers import paths
from tests.helpers.seed_release import build_seed_release

from corpuspipe.config import IngestConfig
from corpuspipe.stages.ingest.decode import decode_file
from corpuspipe.stages.ingest.files import ingest_file

DATA = paths.DATA / "ingest"
ROWS = [json.loads(line) for line in (DATA / "gov_reports_sample.jsonl").read_text(encoding="utf-8").splitlines()]


def _page(k: int, chars: int = 2500) -> str:
    """A page: a real report's title and its first ``chars`` characters, cut at a line end."""
    r = ROWS[k]
    body = r["content"].replace("\u200b", "")[:chars].rsplit("\n", 1)[0]
    return r["title"] + "\n\n" + body + "\n\n"


S1, S2, S3 = _page(0), _page(1), _page(2)  # Simplified: 2025, 2024, 1979 reports
T1 = "".join(c for c in _page(3) if c.isascii() or c.encode("big5", "ignore"))  # 1954, Traditional, Big5-encodable
_RND = random.Random(11)
GARBAGE = bytes(_RND.randrange(0x80, 0x100) for _ in range(700)) + b"\n"  # random high bytes: no encoding fits


def _enc(text: str, codec: str) -> bytes:
    return text.encode(codec)


CASES = [
    # (parts as (text or None for garbage, codec)), expected encodings in order
    ([(S1, "utf-8"), (S2, "gb18030")], ["utf-8", "gb18030"]),
    ([(S1, "gb18030"), (S2, "utf-8")], ["gb18030", "utf-8"]),
    ([(S1, "utf-8"), (T1, "big5")], ["utf-8", "big5"]),
    ([(T1, "big5"), (S2, "utf-8")], ["big5", "utf-8"]),
    ([(S1, "utf-8"), (S2, "gbk"), (S3, "utf-8")], ["utf-8", "gb18030", "utf-8"]),
    ([(S1, "utf-8"), (T1, "big5"), (S2, "gb18030")], ["utf-8", "big5", "gb18030"]),
    ([(S1, "utf-8"), (None, ""), (S2, "gb18030")], ["utf-8", "undecodable", "gb18030"]),
    ([(None, ""), (S2, "utf-8")], ["undecodable", "utf-8"]),
    ([(S1, "gb18030"), (None, ""), (S2, "utf-8")], ["gb18030", "undecodable", "utf-8"]),
]


def _build(parts) -> tuple[bytes, str, list[int]]:
    data, text, starts = b"", "", []
    for t, codec in parts:
        starts.append(len(data))
        data += GARBAGE if t is None else _enc(t, codec)
        text += "" if t is None else t
    return data, text, starts


@pytest.mark.parametrize("parts, encodings", CASES)
def test_each_segment_is_decoded_with_its_own_encoding(parts, encodings):
    data, want, starts = _build(parts)
    text, encoding, dropped = decode_file(data)
    assert text == want
    assert encoding == "mixed:" + ",".join(f"{e}@{s}" for e, s in zip(encodings, starts))
    bad = [i for i, (t, _) in enumerate(parts) if t is None]
    assert [(d.start, d.end) for d in dropped] == [(starts[i], starts[i] + len(GARBAGE)) for i in bad]


def test_one_encoding_files_are_not_split(tmp_path):
    for text, codec in ((S1 + S2, "gb18030"), (T1, "big5"), (S1 + S3, "utf-8")):
        assert decode_file(text.encode(codec)) == (text, codec, [])
    # a GBK file with short lines that are valid UTF-8 by chance (一 is D2 BB in GBK) and a garbage line:
    # the garbage goes, the rest is GB18030 (before: the whole file was undecodable)
    text = "一\n二\n" + S1
    data = text.encode("gbk") + GARBAGE
    got, encoding, dropped = decode_file(data)
    assert (got, encoding) == (text, f"mixed:gb18030@0,undecodable@{len(text.encode('gbk'))}")
    assert [(d.start, d.end) for d in dropped] == [(len(data) - len(GARBAGE), len(data))]


def test_a_mixed_file_releases_both_halves_and_quarantines_only_the_bad_lines(tmp_path):
    data, _text, starts = _build([(S1, "utf-8"), (None, ""), (S2, "gb18030")])
    (tmp_path / "pages.txt").write_bytes(data)
    shard = ingest_file(tmp_path, "pages.txt", IngestConfig())
    assert [e.title for e in shard.essays] == [ROWS[0]["title"], ROWS[1]["title"]]
    assert all("mixed_encoding" in e.flags for e in shard.essays)
    (src,) = shard.sources
    assert src.encoding == f"mixed:utf-8@0,undecodable@{starts[1]},gb18030@{starts[2]}"
    (q,) = shard.quarantine
    line = S1.count("\n") + 1
    assert (q.reason, q.line, q.bytes) == ("undecodable", line, len(GARBAGE))
    assert f"bytes {starts[1]}-{starts[2]} (line {line})" in q.detail


def test_a_release_keeps_every_segment(tmp_path, raw_dir):
    raw = tmp_path / "raw"
    raw.mkdir()
    for p in raw_dir.glob("*.txt"):
        (raw / p.name).write_bytes(p.read_bytes())
    data, _text, _starts = _build([(S1, "utf-8"), (T1, "big5"), (None, ""), (S2, "gbk")])
    (raw / "concatenated.txt").write_bytes(data)
    rel = build_seed_release(raw, tmp_path / "releases")
    docs = pq.read_table(rel / "documents", columns=["source_path", "title", "flags"]).to_pylist()
    mine = [d["title"] for d in docs if d["source_path"] == "concatenated.txt"]
    assert sorted(mine) == sorted([ROWS[0]["title"], ROWS[1]["title"], T1.split("\n")[0]])
    quarantine = pq.read_table(rel / "quarantine").to_pylist()
    assert [(q["path"], q["reason"]) for q in quarantine] == [("concatenated.txt", "undecodable")]
    manifest = json.loads((rel / "MANIFEST.json").read_text(encoding="utf-8"))
    (inp,) = [i for i in manifest["inputs"] if i["path"] == "concatenated.txt"]
    assert inp["encoding"].startswith("mixed:utf-8@0,big5@") and "undecodable@" in inp["encoding"]
