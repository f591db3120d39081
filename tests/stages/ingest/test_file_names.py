"""Issue 24 #12: file names that are not UTF-8 next to names that literally spell their escapes.

Every stored name must lead back to exactly one file: ``bad\\xff\\xfename.txt`` (raw bytes FF FE)
and a file literally named ``bad\\xff\\xfename.txt`` were one name, the literal file was read twice
and the raw one never, and the release refused its duplicate doc_ids."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pyarrow.parquet as pq
from tests.helpers.seed_release import build_seed_release

from corpuspipe.config import IngestConfig
from corpuspipe.stages.ingest.discover import discover_sources, resolve_path
from corpuspipe.stages.ingest.files import ingest_file

CFG = IngestConfig()

# (file name as bytes, is it valid UTF-8)
NAMES = [
    (b"bad\xff\xfename.txt", False),  # raw bytes
    (b"bad\\xff\\xfename.txt", True),  # the same, spelled with backslashes
    (b"gbk_\xb0\xa1.txt", False),  # GBK for 啊
    (b"gbk_\\xb0\\xa1.txt", True),
    (b"a\\b.txt", True),  # a lone backslash
    (b"a\\\\b.txt", True),  # two
    (b"tail\\.txt", True),
    (b"\xe6\x96\x87\\x\xff.txt", False),  # UTF-8 文, a backslash, a raw byte
    (b"plain \xe6\x96\x87\xe4\xbb\xb6.txt", True),  # a UTF-8 name: stored as it is
]


def _texts(raw_dir: Path, gov_reports: list[dict]) -> list[bytes]:
    seeds = [p.read_bytes() for p in sorted(raw_dir.iterdir())]
    reports = [(r["title"] + "\n\n" + r["content"][:3000] + "\n").encode("utf-8") for r in gov_reports[:4]]
    return seeds + reports


def _plant(root: Path, raw_dir: Path, gov_reports: list[dict]) -> dict[bytes, bytes]:
    contents = dict(zip((n for n, _ in NAMES), _texts(raw_dir, gov_reports)))
    for name, data in contents.items():
        with open(os.fsencode(root) + b"/" + name, "wb") as fh:
            fh.write(data)
    return contents


def test_every_name_is_listed_once_and_reads_its_own_file(tmp_path, raw_dir, gov_reports):
    contents = _plant(tmp_path, raw_dir, gov_reports)
    paths, quarantine = discover_sources(tmp_path, CFG)
    assert quarantine == [] and len(paths) == len(NAMES) == len(set(paths))
    by_sha = {hashlib.sha256(d).hexdigest(): n for n, d in contents.items()}
    seen = set()
    for p in paths:
        p.encode("utf-8")  # storable in JSON and Parquet
        on_disk = os.fsencode(resolve_path(tmp_path, p))
        name = on_disk[len(os.fsencode(tmp_path)) + 1 :]
        assert name in contents
        shard = ingest_file(tmp_path, p, CFG)
        assert shard.quarantine == [] and shard.essays
        assert by_sha[shard.sources[0].sha256] == name  # the content of that very file
        assert ("non_utf8_path" in shard.essays[0].flags) == (not dict(NAMES)[name])
        seen.add(name)
    assert seen == set(contents)
    assert "plain 文件.txt" in paths  # UTF-8 names without a backslash do not change


def test_a_release_of_both_spellings_keeps_every_file(tmp_path, raw_dir, gov_reports):
    raw = tmp_path / "raw"
    raw.mkdir()
    contents = _plant(raw, raw_dir, gov_reports)
    rel = build_seed_release(raw, tmp_path / "releases")
    docs = pq.read_table(rel / "documents", columns=["doc_id", "source_path", "source_sha256"])
    assert docs.num_rows == len(set(docs["doc_id"].to_pylist()))
    assert set(docs["source_sha256"].to_pylist()) == {hashlib.sha256(d).hexdigest() for d in contents.values()}
    assert len(set(docs["source_path"].to_pylist())) == len(NAMES)
