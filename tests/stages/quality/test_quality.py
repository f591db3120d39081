"""Quality signals: measured on real seed text, stored as document columns, never filtering."""

from __future__ import annotations

import datetime as dt

import pyarrow.parquet as pq
import pytest
from tests.helpers import paths

from corpuspipe.core import schemas
from corpuspipe.stages.quality import SIGNALS, parse_date, parse_timestamp, signals

# the opening sentences of seed 000 (raw/000_9b3e22387aef82d6.txt)
PARA = ("构建社会主义和谐社会，是以胡锦涛同志为总书记的党中央提出的重大战略任务，党的十六届六中全会对构建社会主义"
        "和谐社会的指导思想、目标任务、工作原则和重大部署进行了科学阐述。组织工作历来是为党的政治任务服务的。")


def test_signal_names_are_the_release_columns():
    assert tuple(SIGNALS) == schemas.SIGNAL_COLUMNS


def test_ratios_on_real_prose():
    s = signals(PARA)
    han = sum("\u4e00" <= c <= "\u9fff" for c in PARA)
    assert s["han_ratio"] == pytest.approx(han / len(PARA), abs=1e-6)
    assert s["punct_ratio"] == pytest.approx(sum(c in "，、。" for c in PARA) / len(PARA), abs=1e-6)
    assert s["dup_line_char_frac"] == 0.0
    # "构建社会主义和谐社会" and "和谐社会" recur: some repeated 5..10-grams, but far from all
    assert 0 < s["dup_10gram_frac"] <= s["dup_5gram_frac"] < 0.5
    assert s["mean_sentence_chars"] == pytest.approx((len(PARA) - 2) / 2, abs=1e-3)


def test_a_text_pasted_twice_is_all_repetition():
    s = signals(PARA + "\n" + PARA)
    assert s["dup_line_char_frac"] == 1.0
    for n in range(5, 11):
        assert s[f"dup_{n}gram_frac"] == 1.0
    assert signals(PARA)["dup_5gram_frac"] < 1.0


def test_top_ngram_share_of_a_repeated_slogan():
    s = signals("加油加油加油加油")  # 8 characters; "加油" occurs 4 times -> 8/8
    assert s["top_2gram_frac"] == 1.0 and s["top_4gram_frac"] == pytest.approx(3 * 4 / 8)


def test_boilerplate_share_and_empty_text():
    assert signals(PARA, raw_chars=200, boilerplate_chars=50)["boilerplate_frac"] == 0.25
    assert set(signals("").values()) == {0.0}


def test_dates_and_crawl_times():
    assert parse_date("2006-11-20") == dt.date(2006, 11, 20) and parse_date("十一月") is None
    utc = dt.timezone.utc
    assert parse_timestamp("2024-03-01T08:00:00+08:00") == dt.datetime(2024, 3, 1, 0, 0, tzinfo=utc)
    assert parse_timestamp("2024-03-01 08:00") == dt.datetime(2024, 3, 1, 8, 0, tzinfo=utc)
    assert parse_timestamp("2024年3月1日") == dt.datetime(2024, 3, 1, tzinfo=utc)
    assert parse_timestamp("1709251200") == parse_timestamp("1709251200000") == dt.datetime(2024, 3, 1, tzinfo=utc)
    assert parse_timestamp("昨天") is None and parse_timestamp("") is None


def test_release_documents_carry_signals_and_typed_dates(seed_release):
    t = pq.read_table(seed_release / "documents")
    assert str(t.schema.field("date").type) == "date32[day]"
    assert str(t.schema.field("crawled_at").type) == "timestamp[ms, tz=UTC]"
    by_author = {r["author"]: r for r in t.select(["author", "date"]).to_pylist()}
    assert by_author["金祖岩"]["date"] == dt.date(2006, 11, 20)  # seed 003's byline
    for name in schemas.SIGNAL_COLUMNS:
        col = t[name].to_pylist()
        assert all(v >= 0 for v in col), name
        if name != "mean_sentence_chars":
            assert all(v <= 1 for v in col), name
    assert min(t["han_ratio"].to_pylist()) > 0.8
    # seed 000 carries a site watermark that the watermark stage removes
    row = next(r for r in t.to_pylist() if r["source_path"] == "000_9b3e22387aef82d6.txt")
    assert row["boilerplate_frac"] > 0


# -- the one-sort n-gram signals equal the nine-sort hashed reference -------------------------
import random

import numpy as np

from corpuspipe.stages.quality import measures as Q

_DATA = paths.DATA


def _cp(text: str) -> np.ndarray:
    return np.frombuffer("".join(text.split()).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)


@pytest.mark.parametrize("name", ["normalize/gov_2025_simplified.txt", "normalize/cpc_20_simplified.txt",
                                  "normalize/cpc_3_traditional.txt", "normalize/us_constitution_zhs.txt"])
def test_ngram_signals_equal_the_hashed_reference_on_real_text(name):
    text = (_DATA / name).read_text(encoding="utf-8")
    cp = _cp(text + "\n" + text[: len(text) // 3])  # a pasted third: long repeats past 10 characters
    assert Q._ngram_signals(cp) == Q._ngram_signals_hashed(cp)
    for cut in (1, 2, 3, 4, 5, 6, 9, 10, 11, 37):  # short texts: fewer than n characters
        assert Q._ngram_signals(cp[:cut]) == Q._ngram_signals_hashed(cp[:cut])


@pytest.mark.parametrize("alphabet", ["ab", "加油", "一二三四五六七", "abcdefghij0123456789，。一二三四五六七八九十百千万"])
def test_ngram_signals_equal_the_hashed_reference_on_random_repetitive_text(alphabet):
    rng = random.Random(7)
    for length in list(range(0, 25)) + [64, 500]:
        text = "".join(rng.choice(alphabet) for _ in range(length))
        assert Q._ngram_signals(_cp(text)) == Q._ngram_signals_hashed(_cp(text)), text


def test_ngram_signals_with_a_huge_alphabet_use_the_reference():
    # more than 65,535 distinct characters cannot be packed 4 to a key: the hashed path answers
    cp = np.arange(0x4E00, 0x4E00 + 70_000, dtype=np.uint64)
    cp = np.concatenate((cp, cp[:5000]))
    assert Q._ngram_signals(cp) == Q._ngram_signals_hashed(cp)
    assert Q._ngram_signals(cp)["dup_10gram_frac"] == pytest.approx(10_000 / len(cp))


def test_batched_ngram_signals_equal_one_document_at_a_time():
    texts = [(_DATA / n).read_text(encoding="utf-8") for n in ("normalize/gov_2025_simplified.txt",
                                                               "normalize/cpc_3_traditional.txt")]
    rng = random.Random(3)
    docs = [t[a:a + size] for t in texts for a, size in ((0, 3000), (500, 40), (9, 1), (0, 0), (100, 7), (2000, 5000))]
    docs += ["".join(rng.choice("加油一二") for _ in range(rng.randrange(0, 40))) for _ in range(60)]
    docs.append(docs[0])  # the same text in two documents is no repetition within either
    rng.shuffle(docs)
    cps = [np.frombuffer("".join(t.split()).encode("utf-32-le"), dtype=np.uint32) for t in docs]
    for chunk in (1 << 6, 1 << 12, 1 << 15):  # many small chunks, a few, one
        old = Q._CHUNK_CHARS
        Q._CHUNK_CHARS = chunk
        try:
            got = Q._ngram_signals_batch(cps)
        finally:
            Q._CHUNK_CHARS = old
        assert got == [Q._ngram_signals_hashed(c.astype(np.uint64)) for c in cps]
    assert Q.signals_batch(docs, [0] * len(docs), [0] * len(docs)) == [signals(t) for t in docs]


def test_ngram_signals_are_the_same_when_threads_compute_them_at_once(gov_reports):
    # the thread runner computes two shards' quality signals at the same time in one process;
    # a scratch table shared between calls once let one thread's ranks leak into another's keys
    # (a flaky byte difference in top_4gram_frac between two builds of raw/)
    from concurrent.futures import ThreadPoolExecutor

    texts = [r["content"] for r in gov_reports[:16]]
    # two alphabets of different size: ranks of one document are wrong for the other's characters
    docs = [[t[:6000]] for t in texts] + [["".join(sorted(set(t)))[:300] * 3] for t in texts]
    cps = [[np.frombuffer("".join(t.split()).encode("utf-32-le"), dtype=np.uint32) for t in d] for d in docs]
    want = [Q._ngram_signals_batch(c) for c in cps]
    with ThreadPoolExecutor(max_workers=4) as ex:
        for _ in range(5):
            assert list(ex.map(Q._ngram_signals_batch, cps)) == want
