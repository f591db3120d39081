"""The benchmark corpus generator is deterministic and its truth file describes what it wrote.

Why: benchmark numbers and dedup recall are only comparable across runs and machines when the
corpus is byte-identical for the same arguments and the truth is right.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "make_corpus.py"


def _load_make_corpus():
    spec = importlib.util.spec_from_file_location("bench_make_corpus", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def mc():
    mod = _load_make_corpus()
    if not mod.GOV_DIR.exists():
        pytest.skip(f"gov reports not available at {mod.GOV_DIR}")
    return mod


@pytest.fixture(scope="module")
def two_runs(mc, tmp_path_factory):
    a, b = tmp_path_factory.mktemp("corpus_a"), tmp_path_factory.mktemp("corpus_b")
    for out in (a, b):
        assert mc.main(["--out", str(out), "--mb", "0.5", "--seed", "3"]) == 0
    return a, b


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_arguments_give_byte_identical_files(two_runs):
    a, b = two_runs
    fa, fb = _files(a), _files(b)
    assert fa.keys() == fb.keys()
    assert [k for k in fa if fa[k] != fb[k]] == []
    assert "truth.json" in fa and len(fa) > 10


def test_truth_paths_and_copies_exist(two_runs):
    root = two_runs[0]
    truth = json.loads((root / "truth.json").read_text(encoding="utf-8"))
    docs = {d["path"]: d for d in truth["documents"]}
    on_disk = {p.relative_to(root / "raw").as_posix() for p in (root / "raw").rglob("*") if p.is_file()}
    assert set(docs) == on_disk
    assert 0.4e6 < sum(d["bytes"] for d in docs.values()) < 0.5e6 + 400_000  # "about" the size asked
    originals = [d for d in docs.values() if d["copy_of"] is None]
    assert len({d["base"] for d in originals}) == len(originals)  # each base once unedited
    assert all(d["edit_rate"] == 0 and not d["shuffled"] for d in originals)
    for d in docs.values():
        if d["copy_of"] is not None:
            orig = docs[d["copy_of"]]
            assert orig["copy_of"] is None and orig["base"] == d["base"]
        text = (root / "raw" / d["path"]).read_bytes().decode(d["encoding"])
        for wm in d["watermark_texts"]:
            assert wm in text
    for sc in truth["section_copies"]:
        assert sc["from"] in docs and sc["to"] in docs
        to_text = (root / "raw" / sc["to"]).read_bytes().decode(docs[sc["to"]]["encoding"])
        assert sc["text"] in to_text


def test_traditional_documents_use_traditional_only_characters(mc, two_runs):
    root = two_runs[0]
    trad_only = mc.traditional_only_chars()
    truth = json.loads((root / "truth.json").read_text(encoding="utf-8"))
    trad = [d for d in truth["documents"] if d["traditional"]]
    assert any(d["converted_s2t"] for d in trad)
    for d in trad:
        text = (root / "raw" / d["path"]).read_bytes().decode(d["encoding"])
        assert sum(c in trad_only for c in text) >= 10, d["path"]
