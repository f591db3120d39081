"""A huge text file streams through pass 0 (issue 11): the splitter keeps a bounded window of
lines, the ingest reader hands essays on in row-group-sized groups, and the result is the same
as splitting the whole file at once.

Data: ``tests/data/split/documents.jsonl`` (real reports, resolutions and laws; see its README),
joined into a compilation the way crawlers save them.
"""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from tests.helpers import paths

from corpuspipe.core import shardio
from corpuspipe.config import PipelineConfig
from corpuspipe.core.edits import rebuild_raw
from corpuspipe.core.stage import Context
from corpuspipe.stages.ingest import Ingest
from corpuspipe.stages.ingest import decode as ingest_decode
from corpuspipe.stages.ingest import files as ingest_files
from corpuspipe.stages.ingest.files import ingest_file
from corpuspipe.stages.ingest.lines import LazyLines, split_lines
from corpuspipe.stages.ingest.split import iter_split
from corpuspipe.stages.ingest.starts import find_essay_starts

DATA = paths.DATA / "split"
DOCS = [json.loads(x) for x in (DATA / "documents.jsonl").read_text(encoding="utf-8").splitlines()]
CFG = PipelineConfig()


def compilation(copies: int) -> str:
    """Every document as title line, its own date lines, blank line, body; ``copies`` rounds."""
    parts = []
    for _ in range(copies):
        for d in DOCS:
            parts.append("\n".join([d["title"], *d["date_lines"]]) + "\n\n" + d["content"].strip() + "\n\n")
    return "".join(parts)


def _key(spans):
    return [(s.start, s.end, s.title, s.author, s.date, [(r.start, r.end, r.rule) for r in s.removals]) for s in spans]


def test_streaming_split_equals_the_whole_file_split_and_keeps_a_small_window(monkeypatch):
    text = compilation(4)
    whole = split_lines(text)
    starts = find_essay_starts(text, whole, 40, 50, 100)  # a plain list of every line
    assert len(starts) >= 40  # the compilation is split (12 documents x 4)

    peak = 0
    real_fill = LazyLines._fill

    def fill(self, want):
        nonlocal peak
        real_fill(self, want)
        peak = max(peak, len(self._buf))

    monkeypatch.setattr(LazyLines, "_fill", fill)
    spans = list(iter_split(text, 40, 50, 100))
    bounds = [0, *[whole.index(next(ln for ln in whole if ln.start == s.start)) for s in spans[1:]]]
    assert bounds == starts
    assert spans[0].start == 0 and spans[-1].end == len(text)
    assert all(a.end == b.start for a, b in zip(spans, spans[1:]))
    # the window: about one essay's lines, never the file's
    longest_essay = max(sum(1 for ln in whole if a.start <= ln.start < a.end) for a in spans)
    assert peak <= longest_essay + 2 * LazyLines._BATCH
    assert peak < len(whole) / 4


def test_a_line_below_the_window_is_an_error_not_a_silent_reread():
    lines = LazyLines("一\n二\n三\n")
    assert len(lines) == 3 and lines[2].content == "三"
    lines.release(2)
    with pytest.raises(IndexError):
        lines[1]
    assert lines[2].content == "三"
    assert len(LazyLines("")) == 0 and len(LazyLines("a\nb")) == 2


def _groups(tmp_path, monkeypatch, group_chars):
    monkeypatch.setattr(shardio, "GROUP_CHARS", group_chars)
    ctx = Context(CFG)
    return list(Ingest().read_groups(tmp_path, ["a.txt", "b.txt", "c.txt"], ctx)), ctx


def _write_three(tmp_path):
    text = compilation(3)
    (tmp_path / "a.txt").write_text(text, encoding="utf-8")
    (tmp_path / "b.txt").write_bytes(b"\x89PNG\r\n")  # quarantined between two big files
    (tmp_path / "c.txt").write_text(compilation(1), encoding="utf-8")
    return text


def test_groups_are_row_group_sized_and_add_up_to_the_whole_file(tmp_path, monkeypatch):
    text = _write_three(tmp_path)
    groups, ctx = _groups(tmp_path, monkeypatch, 20_000)
    assert len(groups) > 3
    for g in groups:
        assert len(g.essays) == 1 or sum(len(e.body.raw) for e in g.essays) <= 20_000
    essays = [e for g in groups for e in g.essays]
    whole = ingest_file(tmp_path, "a.txt", CFG.ingest).essays + ingest_file(tmp_path, "c.txt", CFG.ingest).essays
    assert [(e.doc_id, e.body.text, e.title) for e in essays] == [(e.doc_id, e.body.text, e.title) for e in whole]
    a = [e for e in essays if e.source_path == "a.txt"]
    assert "".join(rebuild_raw(e.body.text, e.body.edits) for e in a) == text  # lossless across groups
    # each source and quarantine entry is handed on once, after its file's last essay
    assert [s.path for g in groups for s in g.sources] == ["a.txt", "c.txt"]
    assert [q.reason for g in groups for q in g.quarantine] == ["binary"]
    assert ctx.counts["ingest"]["essays"] == len(essays) and ctx.counts["ingest"]["files"] == 3

    # the shard file's row groups are the reader's groups, cut by the same rule
    path = tmp_path / "shard.parquet"
    w = shardio.EssayWriter(path)
    for g in groups:
        w.write(g.essays)
    w.close()
    assert [pq.ParquetFile(path).metadata.row_group(i).num_rows for i in range(len(groups))] == [
        len(g.essays) for g in groups if g.essays
    ]


def test_a_failure_after_some_essays_went_out_keeps_them_and_says_so(tmp_path, monkeypatch):
    _write_three(tmp_path)
    real = ingest_files._finish_essay
    seen = {"n": 0}

    def flaky(essay, *args, **kwargs):
        if essay.source_path == "a.txt":
            seen["n"] += 1
            if seen["n"] == 30:
                raise KeyError("secret essay text")
        return real(essay, *args, **kwargs)

    monkeypatch.setattr(ingest_files, "_finish_essay", flaky)
    groups, _ = _groups(tmp_path, monkeypatch, 20_000)
    a = [e for g in groups for e in g.essays if e.source_path == "a.txt"]
    assert 0 < len(a) < 29 and [e.essay_index for e in a] == list(range(len(a)))
    (q,) = [q for g in groups for q in g.quarantine if q.path == "a.txt"]
    assert q.reason == "error" and q.detail == f"error: KeyError after essay {len(a) - 1} (the essays before it are released)"
    (src,) = [s for g in groups for s in g.sources if s.path == "a.txt"]
    assert src.essays == len(a)
    assert any(e.source_path == "c.txt" for g in groups for e in g.essays)  # the next file goes on


def test_a_failure_before_any_essay_went_out_quarantines_the_whole_file(tmp_path, monkeypatch):
    _write_three(tmp_path)

    def boom(*args, **kwargs):
        raise ValueError("contents of the file: 创新组织工作思路")

    monkeypatch.setattr(ingest_files, "iter_split", boom)
    groups, ctx = _groups(tmp_path, monkeypatch, 10**9)
    assert [e for g in groups for e in g.essays] == []
    assert sorted((q.path, q.detail) for g in groups for q in g.quarantine if q.reason == "error") == [
        ("a.txt", "error: ValueError"), ("c.txt", "error: ValueError")]
    assert [s for g in groups for s in g.sources] == []
    assert ctx.counts["ingest"]["quarantined_files"] == 3


@pytest.mark.parametrize("kind", ["utf8", "literal_fffd", "bom", "gb18030", "bad_tail", "whitespace", "long_line"])
def test_a_big_file_read_in_chunks_decodes_as_the_whole_bytes_do(tmp_path, monkeypatch, kind):
    """The chunked UTF-8 reader must give exactly decode_bytes' answer, or hand over to it."""
    text = compilation(2)
    data = {
        "utf8": text.encode(), "literal_fffd": (text + "\ufffd\n").encode(), "bom": b"\xef\xbb\xbf" + text.encode(),
        "gb18030": text.encode("gb18030"), "bad_tail": text.encode() + "报".encode()[:2], "whitespace": b" \n" * 5000,
        "long_line": text.encode() + "长" .encode() * 3000,
    }[kind]
    (tmp_path / "a.txt").write_bytes(data)
    cfg = CFG.ingest.model_copy(update={"max_line_chars": 2500})
    slow = ingest_file(tmp_path, "a.txt", cfg)
    monkeypatch.setattr(ingest_decode, "CHUNK_BYTES", 4096)  # every file is "big", read in 4 KB chunks
    fast = ingest_file(tmp_path, "a.txt", cfg)
    assert fast.sources == slow.sources and fast.quarantine == slow.quarantine and fast.stats == slow.stats
    assert [(e.doc_id, e.body.raw, e.body.text, e.flags) for e in fast.essays] == [
        (e.doc_id, e.body.raw, e.body.text, e.flags) for e in slow.essays]
    if kind == "literal_fffd":
        assert not any("decode_replaced" in e.flags for e in fast.essays)
