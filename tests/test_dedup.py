"""Near-duplicate and reuse detection: shingling, signatures, banding, verification, clusters, seeds."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from datasketch.lsh import _optimal_param
from hypothesis import given, settings
from hypothesis import strategies as st

from corpuspipe.core import schemas
from corpuspipe.core.config import DedupConfig
from corpuspipe.stages.dedup.minhash import (
    DedupItem,
    DuplicatePair,
    assign_clusters,
    band_keys,
    candidate_pairs,
    compute_signatures,
    lsh_params,
    pairs_table,
    signatures_by_id,
    signatures_numpy,
    verify_pairs,
)
from corpuspipe.stages.dedup.disk import dedup_in_memory as find_duplicates
from corpuspipe.stages.dedup.shingles import char_shingles, shingle_hashes, strip_text, word_shingles

REPO = Path(__file__).resolve().parents[1]
RAW = REPO / "raw"
GOV = REPO.parent / "shared" / "external" / "gov_reports" / "government_work_reports.jsonl"
CFG = DedupConfig()
HAN = re.compile(r"[\u4e00-\u9fff]")


def raw_lines(prefix: str) -> list[str]:
    (path,) = RAW.glob(f"{prefix}_*.txt")
    return path.read_text(encoding="utf-8").splitlines()


def line_starting(prefix: str, start: str) -> str:
    (line,) = [ln for ln in raw_lines(prefix) if ln.strip().startswith(start)]
    return line.strip()


def to_simplified(text: str) -> str:
    try:
        from corpuspipe.stages.normalize import to_simplified as conv  # the pipeline's converter, when present
    except ImportError:
        from opencc import OpenCC

        return OpenCC("t2s").convert(text)
    return conv(text)


def gov_paragraphs(min_chars: int = 300, limit: int = 60) -> list[str]:
    out: list[str] = []
    for line in GOV.read_text(encoding="utf-8").splitlines()[20:]:
        content = json.loads(line)["content"]
        for p in content.split("\n"):
            if len(p) >= min_chars and not HAN.search(p[:1]) is None:
                out.append(p)
                break
        if len(out) >= limit:
            break
    return out


def perturb(text: str, rate: float, seed: int) -> str:
    """Substitute/insert/delete ``rate`` of the Han characters (like the bench generator)."""
    rng = random.Random(seed)
    pos = [m.start() for m in HAN.finditer(text)]
    picks = set(rng.sample(pos, max(1, round(len(pos) * rate))))
    out = []
    for i, ch in enumerate(text):
        if i in picks:
            r = rng.random()
            if r < 0.6:
                out.append("鑫")
            elif r < 0.8:
                out.append("鑫" + ch)
        else:
            out.append(ch)
    return "".join(out)


# -- shingles ----------------------------------------------------------------------------


def test_shingles_ignore_punctuation_whitespace_and_script():
    a = "构建社会主义和谐社会，关键在党。\n关键在人！"
    b = "構建社會主義和諧社會 關鍵在黨,\u3000關鍵在人"
    assert strip_text(a) == "构建社会主义和谐社会关键在党关键在人"
    ha, hb = shingle_hashes(a, CFG), shingle_hashes(b, CFG)
    assert ha.dtype == np.uint64 and np.array_equal(ha, np.unique(ha))
    assert np.array_equal(ha, hb)
    assert len(ha) == len(strip_text(a)) - CFG.ngram + 1


def test_shingles_edge_cases_and_orders():
    assert shingle_hashes("，。 ", CFG).size == 0
    assert shingle_hashes("和谐", CFG).size == 1  # shorter than n: one shingle of the whole text
    assert not np.array_equal(char_shingles("和谐社会建设", 5), char_shingles("社会建设和谐", 5))
    # repeated n-grams are counted once
    assert char_shingles("和谐社会和谐社会和谐社会", 4).size == 4
    # seed changes the hashes
    assert not np.array_equal(char_shingles("和谐社会建设", 3, seed=1), char_shingles("和谐社会建设", 3, seed=2))


def test_word_shingles():
    text = "人民政协与祖国和人民风雨同舟、荣辱与共、辉煌同行"
    w = word_shingles(text, 2)
    assert w.size > 3 and np.array_equal(w, np.unique(w))
    assert np.array_equal(w, word_shingles("人民政协与祖国和人民 风雨同舟荣辱与共辉煌同行。", 2))
    cfg = DedupConfig(shingle="word", ngram=2)
    assert np.array_equal(shingle_hashes(text, cfg), w)


# -- signatures ----------------------------------------------------------------------------


def test_signature_table_schema_and_batching_invariance():
    paras = gov_paragraphs(limit=30)
    items = [DedupItem(f"d{i:03d}", p, len(p)) for i, p in enumerate(paras)] + [DedupItem("empty", "。。", 0)]
    t = compute_signatures(items, CFG)
    assert t.schema.field("signature").type == pa.list_(pa.uint32(), CFG.num_perm)
    assert t.column("id").to_pylist() == [it.id for it in items]
    assert t.column("n_shingles").to_pylist()[-1] == 0
    one_by_one = np.vstack([signatures_numpy(compute_signatures([it], CFG)) for it in items])
    assert np.array_equal(signatures_numpy(t), one_by_one)
    assert (signatures_numpy(t)[-1] == 0xFFFFFFFF).all()


def test_signature_estimates_track_exact_jaccard():
    paras = gov_paragraphs(limit=25)
    errors = []
    for k, p in enumerate(paras):
        for rate in (0.02, 0.05, 0.1):
            q = perturb(p, rate, seed=k)
            sig = signatures_numpy(compute_signatures([DedupItem("a", p, 0), DedupItem("b", q, 0)], CFG))
            est = float(np.mean(sig[0] == sig[1]))
            sa, sb = shingle_hashes(p, CFG), shingle_hashes(q, CFG)
            inter = np.intersect1d(sa, sb).size
            errors.append(est - inter / (sa.size + sb.size - inter))
    errors = np.array(errors)
    assert abs(errors.mean()) < 0.02  # unbiased
    assert np.abs(errors).max() < 0.2  # std at 128 perms is <= 0.045


# -- parameters and banding ---------------------------------------------------------------


def test_lsh_params_come_from_datasketch():
    p = lsh_params(CFG)
    assert (p["bands"], p["rows"]) == _optimal_param(CFG.threshold, CFG.num_perm, 0.5, 0.5)
    jr = CFG.containment_threshold / (1 + CFG.reuse_max_ratio - CFG.containment_threshold)
    assert (p["reuse_bands"], p["reuse_rows"]) == _optimal_param(jr, CFG.num_perm, 0.5, 0.5)
    for k in ("shingle", "ngram", "num_perm", "threshold", "bands", "rows"):
        assert k in p
    off = lsh_params(DedupConfig(reuse_max_ratio=0))
    assert off["reuse_bands"] == 0


def test_band_keys_rows_and_skips():
    paras = gov_paragraphs(limit=5)
    items = [DedupItem(f"d{i}", p, 0) for i, p in enumerate(paras)] + [DedupItem("short", "和谐社会建设", 0)]
    sigs = compute_signatures(items, CFG)
    p = lsh_params(CFG)
    nb = p["bands"] + p["reuse_bands"]
    t = band_keys(sigs, CFG, min_length=80)
    assert t.schema == pa.schema(
        [("band", pa.int16(), False), ("key", pa.uint64(), False), ("id", pa.dictionary(pa.int32(), pa.string()), False)]
    )
    assert t.num_rows == nb * 5
    assert "short" not in set(t.column("id").to_pylist())
    assert sorted(set(t.column("band").to_pylist())) == list(range(nb))
    assert band_keys(sigs, CFG).num_rows == nb * 6


def test_candidate_pairs_across_shards_sorted_unique():
    paras = gov_paragraphs(limit=6)
    shard1 = [DedupItem("z9", paras[0], 0), DedupItem("b1", paras[1], 0), DedupItem("c", paras[2], 0)]
    shard2 = [DedupItem("a0", paras[0], 0), DedupItem("y", paras[1] + "。", 0), DedupItem("q", paras[3], 0)]
    tables = [band_keys(compute_signatures(s, CFG), CFG) for s in (shard1, shard2)]
    pairs = candidate_pairs(tables)
    assert pairs == [("a0", "z9"), ("b1", "y")]
    assert candidate_pairs([]) == []


def test_candidate_pairs_large_bucket_is_linear_but_connected():
    ids = [f"x{i:03d}" for i in range(30)]
    t = pa.table(
        {"band": pa.array([0] * 30, pa.int16()), "key": pa.array([7] * 30, pa.uint64()), "id": ids}
    )
    full = candidate_pairs([t], max_bucket=100)
    assert len(full) == 30 * 29 // 2
    capped = candidate_pairs([t], max_bucket=10)
    assert len(capped) == 29 + 28
    assert all(a < b for a, b in capped) and capped == sorted(set(capped))
    assert {b for a, b in capped if a == "x000"} == set(ids[1:])


# -- verification -----------------------------------------------------------------------


def test_verify_classifies_and_drops():
    base = gov_paragraphs(limit=3)
    long_text = base[0] + base[1] + base[2]
    items = {
        "a": DedupItem("a", base[0], 0),
        "b": DedupItem("b", perturb(base[0], 0.02, 1), 0),  # near duplicate
        "c": DedupItem("c", long_text, 0),  # contains a: reuse
        "d": DedupItem("d", base[1], 0),  # unrelated to a
        "e": DedupItem("e", base[0], 0, group="g"),
        "f": DedupItem("f", long_text, 0, group="g"),  # same group as e: never reported
    }
    sigs = signatures_by_id(compute_signatures(list(items.values()), CFG))
    out = verify_pairs([("b", "a"), ("a", "c"), ("a", "d"), ("e", "f")], items, sigs, CFG, "section")
    assert [(p.a_id, p.b_id, p.relation) for p in out] == [("a", "b", "near_duplicate"), ("a", "c", "reuse")]
    near, reuse = out
    assert near.jaccard_exact >= CFG.threshold and abs(near.jaccard - near.jaccard_exact) < 0.15
    assert reuse.containment_ab == pytest.approx(1.0) and reuse.containment_ba < 0.5
    assert reuse.jaccard_exact < CFG.threshold
    tbl = pairs_table(out)
    assert tbl.schema == schemas.DUPLICATES and tbl.num_rows == 2
    with pytest.raises(ValueError):
        verify_pairs([], items, sigs, CFG, "paragraph")


def test_calibration_edited_copies_found_unrelated_not():
    """NOTES: ~3% edits give char 5-gram Jaccard 0.63-0.75; the default threshold must keep them."""
    paras = gov_paragraphs(limit=40)
    items = []
    for i, p in enumerate(paras):
        items.append(DedupItem(f"o{i:02d}", p, len(p)))
        if i % 2 == 0:
            items.append(DedupItem(f"p{i:02d}", perturb(p, 0.03 if i % 4 else 0.05, seed=i), len(p) - 1))
    pairs, clusters, stats = find_duplicates(items, CFG, "document")
    near = {(p.a_id, p.b_id) for p in pairs if p.relation == "near_duplicate"}
    expected = {(f"o{i:02d}", f"p{i:02d}") for i in range(0, len(paras), 2)}
    assert near == expected
    assert stats["near_duplicate"] == len(expected)
    for i in range(0, len(paras), 2):
        assert clusters[f"p{i:02d}"] == (f"o{i:02d}", f"o{i:02d}")


# -- clusters ----------------------------------------------------------------------------


def _pair(a: str, b: str, rel: str = "near_duplicate") -> DuplicatePair:
    a, b = min(a, b), max(a, b)
    return DuplicatePair("document", a, b, 0.9, 0.9, 0.9, 0.9, rel)


def test_assign_clusters_representative_rule():
    ids = ["a", "b", "c", "d", "e", "f"]
    pairs = [_pair("a", "b"), _pair("b", "c"), _pair("d", "e", "reuse")]
    quality = {"a": 5, "b": 9, "c": 9, "d": 1, "e": 100, "f": 3}
    out = assign_clusters(ids, pairs, quality)
    assert out["b"] == ("b", None)  # highest quality; tie with c -> smaller id
    assert out["a"] == ("b", "b") and out["c"] == ("b", "b")
    assert out["d"] == ("d", None) and out["e"] == ("e", None)  # reuse does not merge
    assert out["f"] == ("f", None)


@given(
    st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11)), max_size=20),
    st.lists(st.integers(0, 3), min_size=12, max_size=12),
    st.randoms(use_true_random=False),
)
@settings(max_examples=150, deadline=None)
def test_assign_clusters_is_order_independent(edges, quals, rnd):
    ids = [f"i{k:02d}" for k in range(12)]
    pairs = [_pair(ids[a], ids[b]) for a, b in edges if a != b]
    quality = dict(zip(ids, quals))
    out = assign_clusters(ids, pairs, quality)
    shuffled_ids, shuffled_pairs = list(ids), list(pairs)
    rnd.shuffle(shuffled_ids)
    rnd.shuffle(shuffled_pairs)
    assert assign_clusters(shuffled_ids, shuffled_pairs, quality) == out
    for x, (cid, dup) in out.items():
        members = [y for y, (c, _) in out.items() if c == cid]
        best = min(members, key=lambda m: (-quality[m], m))
        assert cid == best and dup == (None if x == best else best)


# -- seeds (acceptance) -------------------------------------------------------------------


def seed_essays() -> dict[str, str]:
    """The nine seed essays; 004 split on its 第X篇 / title lines (the teaser line dropped)."""
    out = {f"s{p}": "\n".join(raw_lines(p)) for p in ("000", "001", "002", "003")}
    out["s001"] = to_simplified(out["s001"])
    lines = raw_lines("004")[1:]
    starts = [i for i, ln in enumerate(lines) if re.match(r"^(第[一二三四五]篇：| 新形势下如何加强(组织部门|工会)自身建设)", ln)]
    assert len(starts) == 5
    for k, (s, e) in enumerate(zip(starts, starts[1:] + [len(lines)])):
        out[f"s004_{k + 1}"] = "\n".join(lines[s:e])
    return out


def test_seed_sections_reuse_and_near_pair():
    talent = line_starting("000", "二是要不断创新人才工作机制。")
    talent_t = line_starting("001", "2、")
    one = line_starting("004", "（一）个别组工干部业务不够熟悉")
    two = line_starting("004", "（二）部分组工干部业务不够熟悉")
    essays = seed_essays()
    assert one in essays["s004_2"] and two in essays["s004_3"]
    items = [
        DedupItem("000#talent", talent, len(talent)),
        DedupItem("001#2", to_simplified(talent_t), len(talent_t)),
        DedupItem("001#2raw", talent_t, len(talent_t), group="raw"),  # unconverted: t2s shingling still works
        DedupItem("004_2#1", one, len(one)),
        DedupItem("004_3#2", two, len(two)),
    ]
    # every other paragraph of the seeds as distractor sections
    for name, text in essays.items():
        for k, para in enumerate(text.split("\n")):
            if para.strip() and para.strip() not in {talent, one, two} and not para.startswith("2、"):
                items.append(DedupItem(f"{name}#p{k:03d}", para, len(para)))
    pairs, clusters, stats = find_duplicates(items, CFG, "section")
    got = {(p.a_id, p.b_id): p for p in pairs}
    reuse = got[("000#talent", "001#2")]
    assert reuse.relation == "reuse" and reuse.containment_ab > 0.9 and reuse.jaccard_exact < 0.4
    assert got[("000#talent", "001#2raw")].relation == "reuse"
    assert ("004_2#1", "004_3#2") in got
    assert got[("004_2#1", "004_3#2")].containment_ba > 0.9
    assert stats["skipped_short"] > 0  # headings and short lines are below min_section_chars


def test_seed_sections_via_sectioner():
    """Same acceptance through the pipeline's sectioner (leaf sections, doc id as group)."""
    from corpuspipe.core.config import SectionConfig
    from corpuspipe.stages.section import section_text

    items = []
    for name, text in seed_essays().items():
        secs = section_text(text, SectionConfig())
        for s in secs:
            items.append(DedupItem(f"{name}/{s.path}", text[s.char_start : s.char_end], s.char_end - s.char_start, group=name))
    pairs, _, _ = find_duplicates(items, CFG, "section")
    by_text = {(p.a_id, p.b_id): p for p in pairs}

    def find(prefix_a: str, start_a: str, prefix_b: str, start_b: str) -> bool:
        ids = {it.id: it.text for it in items}
        for (a, b) in by_text:
            ta, tb = ids[a].lstrip(), ids[b].lstrip()
            for x, y, tx, ty in ((a, b, ta, tb), (b, a, tb, ta)):
                if x.startswith(prefix_a) and y.startswith(prefix_b) and tx.startswith(start_a) and ty.startswith(start_b):
                    return True
        return False

    assert find("s000/", "二是要不断创新人才工作机制", "s001/", "2、")
    assert find("s004_2/", "（一）个别组工干部", "s004_3/", "（二）部分组工干部")


def test_seed_essays_are_not_document_duplicates():
    essays = seed_essays()
    items = [DedupItem(k, v, len(v)) for k, v in essays.items()]
    pairs, clusters, stats = find_duplicates(items, CFG, "document")
    assert not [p for p in pairs if p.relation == "near_duplicate"]
    assert all(cid == k and dup is None for k, (cid, dup) in clusters.items())
    assert stats["items"] == 9 and stats["skipped_short"] == 0
    # a Traditional copy of an essay *is* a document duplicate of its Simplified original
    raw001 = "\n".join(raw_lines("001"))
    pairs, clusters, _ = find_duplicates(items + [DedupItem("s001_raw", raw001, 1)], CFG, "document")
    assert [(p.a_id, p.b_id, p.relation) for p in pairs] == [("s001", "s001_raw", "near_duplicate")]
    assert clusters["s001_raw"] == ("s001", "s001")


def test_find_duplicates_counts_skipped_sections():
    items = [DedupItem("a", "和谐社会" * 5, 20), DedupItem("b", "和谐社会" * 5, 20)]
    pairs, clusters, stats = find_duplicates(items, CFG, "section")
    assert pairs == [] and stats["skipped_short"] == 2 and stats["candidates"] == 0
    assert clusters == {"a": ("a", None), "b": ("b", None)}
    # documents: a title-only or watermark-only page (stripped text < min_document_chars) is never
    # a near-duplicate, even of an identical page; a real body of the same kind is
    pairs, clusters, stats = find_duplicates(items, CFG, "document")
    assert pairs == [] and stats["skipped_short"] == 2
    assert clusters == {"a": ("a", None), "b": ("b", None)}
    wm = "来源：www.fanwen.com 更多范文请访问"  # a page that is only a watermark: 21 stripped chars
    (para,) = gov_paragraphs(limit=1)
    docs = [DedupItem("w1", wm, len(wm)), DedupItem("w2", wm, len(wm)), DedupItem("p1", para, len(para)),
            DedupItem("p2", para, len(para))]
    pairs, clusters, stats = find_duplicates(docs, CFG, "document")
    assert [(p.a_id, p.b_id) for p in pairs] == [("p1", "p2")] and stats["skipped_short"] == 2
    assert clusters["w2"] == ("w2", None) and clusters["p2"] == ("p1", "p1")


def test_shard_tables_round_trip_through_parquet(tmp_path):
    """The flow writes signatures and band keys beside each shard; read back, results are identical."""
    import pyarrow.parquet as pq

    paras = gov_paragraphs(limit=8)
    shards = [
        [DedupItem(f"s1_{i}", p, len(p)) for i, p in enumerate(paras[:4])],
        [DedupItem(f"s2_{i}", perturb(p, 0.03, i), len(p)) for i, p in enumerate(paras[:4])],
    ]
    direct, loaded = [], []
    for k, shard in enumerate(shards):
        sig = compute_signatures(shard, CFG)
        bk = band_keys(sig, CFG, min_length=80)
        pq.write_table(sig, tmp_path / f"sig{k}.parquet")
        pq.write_table(bk, tmp_path / f"bands{k}.parquet")
        assert pq.read_table(tmp_path / f"sig{k}.parquet").equals(sig)
        direct.append(bk)
        loaded.append(pq.read_table(tmp_path / f"bands{k}.parquet"))
    assert candidate_pairs(direct) == candidate_pairs(loaded) == [(f"s1_{i}", f"s2_{i}") for i in range(4)]
