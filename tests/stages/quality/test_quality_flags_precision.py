"""Issue 12: flags that hold on unseen real text (gov reports, Wikisource pages)."""

from __future__ import annotations

from corpuspipe.config import IngestConfig
from corpuspipe.core.edits import TrackedText
from corpuspipe.core.records import Essay
from corpuspipe.stages.ingest.files import _finish_essay
from corpuspipe.stages.ingest.mojibake import mojibake_evidence
from corpuspipe.stages.quality.flags import encoding_damage


def _ingested(text: str) -> Essay:
    e = Essay("a.txt", "0" * 64, 0, TrackedText(text))
    return _finish_essay(e, IngestConfig(), [], [])


def test_replacement_characters_are_encoding_damage_not_mojibake(gov_reports: list[dict]) -> None:
    raw = bytearray(gov_reports[0]["content"][:4000].encode("utf-8"))
    for pos in (3001, 2001, 1001, 501):  # cut UTF-8 sequences: the decoder writes U+FFFD
        del raw[pos]
    damaged = raw.decode("utf-8", errors="replace")
    assert damaged.count("\ufffd") >= 4
    assert mojibake_evidence(damaged) == {}
    assert "mojibake" not in _ingested(damaged).flags
    assert encoding_damage(damaged)


def test_traditional_page_under_a_simplified_site_header_is_not_mojibake(gov_reports: list[dict]) -> None:
    # Wikisource's 论联合政府 version page (Traditional, good Big5) re-hosted with Simplified site lines
    page = next(r for r in gov_reports if "的版本包括" in r["content"][:200])["content"]
    text = f"文章整理自星河写作社区第18站精心编排\n{page}\n本页仅作学习交流之用，下次再见～小编"
    assert mojibake_evidence(page) == {} and mojibake_evidence(text) == {}


def test_big5_bytes_read_as_gbk_are_still_mojibake(gov_reports: list[dict]) -> None:
    trad = next(r for r in gov_reports if "國" in r["content"][:2000])["content"][:5000]
    garbled = trad.encode("big5", errors="ignore").decode("gbk", errors="ignore")
    assert "outside_gb2312" in mojibake_evidence(garbled)
    assert "mojibake" in _ingested(garbled).flags


def test_wikisource_version_page_and_link_split_licence_are_not_truncated(gov_reports: list[dict]) -> None:
    from corpuspipe.stages.quality.flags import truncated

    page = next(r for r in gov_reports if "的版本包括" in r["content"][:200])["content"]
    # as the pipeline releases it: lines joined, Simplified
    assert not truncated("论联合政府\n的版本包括：\n论联合政府（1945年），1945年中共七大报告论联合政府（1953年），"
                         "1953年4月《毛泽东选集》第三卷")
    assert not truncated(page)
    report = next(r for r in gov_reports if "以优异成绩迎接党的十九大胜利召开！" in r["content"])["content"]
    body = report[: report.index("以优异成绩迎接党的十九大胜利召开！") + 17]
    # an unseen licence variant, split at its links, after the last sentence of the report
    assert not truncated(body + "\n本作品来自\n中华人民共和国法律。依据《")
    assert not truncated(body + "\n，也可能在其他管辖区，属于")
    cut = body[: len(body) * 2 // 3].rstrip("。！？!?\n ")
    assert truncated(cut) and not truncated(body)
