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
from tests.helpers.paths import REPO

BENCH = REPO / "bench" / "make_corpus.py"


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


# --- the crawl-shaped generator (bench/make_crawl.py) ---------------------------------------------
CRAWL = REPO / "bench" / "make_crawl.py"
COPY_KINDS = {"near_copy", "trad_copy", "family"}


@pytest.fixture(scope="module")
def crawl_mod():
    spec = importlib.util.spec_from_file_location("bench_make_crawl", CRAWL)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    if not all(f.exists() for f in mod.training_files(mod.EXTERNAL)[:2]):
        pytest.skip(f"external text not available at {mod.EXTERNAL}")
    return mod


@pytest.fixture(scope="module")
def crawl_runs(crawl_mod, tmp_path_factory):
    a, b = tmp_path_factory.mktemp("crawl_a"), tmp_path_factory.mktemp("crawl_b")
    for out in (a, b):
        assert crawl_mod.main(["--out", str(out), "--mb", "2", "--seed", "5"]) == 0
    return a, b


def _crawl_truth(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "truth.jsonl").read_text(encoding="utf-8").splitlines()]


def _crawl_text(root: Path, row: dict) -> str:
    data = (root / "raw" / row["path"]).read_bytes()
    if row["line"] is not None:
        return json.loads(data.decode("utf-8").splitlines()[row["line"]])["text"]
    return data.decode(row["encoding"])  # strict: the truth encoding must decode the file


def _grams(text: str) -> set[str]:
    from corpuspipe.zh.opencc import single_char_t2s

    fold = {ord(t): s for t, s in single_char_t2s()}
    han = "".join(c for c in text.translate(fold) if "\u4e00" <= c <= "\u9fff")
    return {han[i : i + 5] for i in range(len(han) - 4)}


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / max(1, len(a | b))


def test_crawl_same_seed_gives_byte_identical_files(crawl_runs):
    a, b = crawl_runs
    fa, fb = _files(a), _files(b)
    assert fa.keys() == fb.keys() and len(fa) > 100
    assert [k for k in fa if fa[k] != fb[k]] == []


def test_crawl_truth_matches_the_files(crawl_runs):
    root = crawl_runs[0]
    truth = _crawl_truth(root)
    on_disk = {p.relative_to(root / "raw").as_posix() for p in (root / "raw").rglob("*") if p.is_file()}
    assert {t["path"] for t in truth} == on_disk
    assert all(p.count("/") == 3 for p in on_disk)  # site/yyyy/mm/file
    assert 2.0e6 <= sum((root / "raw" / p).stat().st_size for p in on_disk) < 2.3e6
    kinds = {t["kind"] for t in truth}
    assert {"original", "near_copy", "trad_copy", "family", "title_only"} <= kinds
    assert {t["encoding"] for t in truth} >= {"utf-8", "gb18030"} and len({t["encoding"] for t in truth}) >= 4
    assert any(t["line"] is not None for t in truth)  # JSON Lines exports
    by_id = {t["essay_id"]: t for t in truth}
    for t in truth:
        text = _crawl_text(root, t)
        if t["line"] is None:
            assert t["title"] in text
        else:  # a crawler export keeps the title in its own field
            line = (root / "raw" / t["path"]).read_text(encoding="utf-8").splitlines()[t["line"]]
            assert json.loads(line)["title"] == t["title"]
        if t["kind"] in COPY_KINDS:
            assert by_id[t["source"]]["kind"] == "original"
        if t["kind"] == "title_only":
            assert t["chars"] == 0
    family = [t for t in truth if t["kind"] == "family"]
    assert len({t["source"] for t in family}) == 1 and len(family) >= 10


def test_crawl_copies_resemble_their_source_and_originals_do_not(crawl_runs):
    root = crawl_runs[0]
    truth = _crawl_truth(root)
    by_id = {t["essay_id"]: t for t in truth}
    grams = {t["essay_id"]: _grams(_crawl_text(root, t)) for t in truth if t["chars"] > 300}
    copies = [t for t in truth if t["kind"] in COPY_KINDS and t["essay_id"] in grams and t["source"] in grams]
    assert len(copies) > 20
    for t in copies:
        assert _jaccard(grams[t["essay_id"]], grams[t["source"]]) > 0.2, t["essay_id"]
    originals = sorted(t["essay_id"] for t in truth if t["kind"] == "original" and t["essay_id"] in grams)
    worst = max(_jaccard(grams[x], grams[y]) for x, y in zip(originals, originals[1:]))
    assert worst < 0.1


def test_crawl_traditional_copies_are_traditional(crawl_runs):
    from corpuspipe.zh.opencc import traditional_only_chars

    root = crawl_runs[0]
    trad_only = traditional_only_chars()
    trad = [t for t in _crawl_truth(root) if t["kind"] == "trad_copy" and t["chars"] > 300]
    assert trad
    for t in trad:
        han = [c for c in _crawl_text(root, t) if "\u4e00" <= c <= "\u9fff"]
        assert sum(c in trad_only for c in han) > 0.05 * len(han), t["essay_id"]


REAL_KINDS = {"paginated", "dated", "contained", "real_original", "markdown"}


def test_crawl_real_page_classes_and_their_truth(crawl_runs):
    """Issue 23's classes, built from real text: their planted lines are on the page, the dated
    content lines too, a paginated essay has its advert between pages, a contained essay's page is
    inside its container with 1-2x its length of other text, a Markdown page is titled ``# …``."""
    root = crawl_runs[0]
    truth = _crawl_truth(root)
    by_id = {t["essay_id"]: t for t in truth}
    real = [t for t in truth if t["kind"] in REAL_KINDS]
    assert {t["kind"] for t in real} == REAL_KINDS
    assert min(int(t["essay_id"][1:]) for t in real) > max(int(t["essay_id"][1:]) for t in truth if t not in real)
    for t in real:
        text = _crawl_text(root, t)
        lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
        for w in set(t["watermarks"]):
            assert lines.count(w) >= t["watermarks"].count(w), (t["path"], w)
        if t["kind"] == "paginated":
            advert = max(set(t["watermarks"]), key=t["watermarks"].count)
            inner = [i for i, ln in enumerate(lines) if ln == advert and 1 < i < len(lines) - 3]
            assert len(inner) >= t["pages"] - 1 >= 1
        elif t["kind"] == "dated":
            assert t["content_lines"] and all(c.strip() in lines for c in t["content_lines"])
        elif t["kind"] == "contained":
            src = by_id[t["source"]]
            assert src["kind"] == "real_original" and t["real"] == src["real"]
            body = [ln for ln in _crawl_text(root, src).split("\n") if ln.strip()
                    and ln.strip() != src["title"] and ln.strip() not in src["watermarks"]]
            assert body and all(ln.strip() in lines for ln in body)
            assert 1.9 * t["contained_chars"] <= t["chars"] <= 3.1 * t["contained_chars"]
        elif t["kind"] == "markdown":
            assert text.startswith(f"# {t['title']}\n") and t["path"].endswith(".md")


def test_dup_heavy_crawl_comes_in_families_of_about_a_hundred(crawl_mod, tmp_path):
    """``--dup-heavy``: every original with 80-120 copies of itself (near and Traditional), each
    resembling it; the truth says which."""
    out = tmp_path / "dup"
    assert crawl_mod.main(["--out", str(out), "--mb", "1.5", "--seed", "2", "--dup-heavy"]) == 0
    truth = _crawl_truth(out)
    by_id = {r["essay_id"]: r for r in truth}
    copies: dict[str, list[dict]] = {}
    for r in truth:
        if r["kind"] in ("near_copy", "trad_copy"):
            copies.setdefault(r["source"], []).append(r)
    assert len(copies) >= 2 and all(80 <= len(v) <= 120 for v in copies.values())
    assert {r["kind"] for v in copies.values() for r in v} == {"near_copy", "trad_copy"}
    for src, rows in list(copies.items())[:2]:
        base = _grams(_crawl_text(out, by_id[src]))
        assert all(_jaccard(base, _grams(_crawl_text(out, r))) > 0.3 for r in rows[:10])
    assert json.loads((out / "corpus.json").read_text(encoding="utf-8"))["dup_heavy"] is True
