"""Issue 23 item 3: no title keeps the markup around it (54 of the 55 Markdown laws were titled ``# …``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpuspipe.config import IngestConfig
from corpuspipe.core.edits import rebuild_raw
from corpuspipe.stages.ingest.files import ingest_file
from corpuspipe.stages.ingest.split import split_text
from corpuspipe.stages.ingest.titles import clean_title

CFG = IngestConfig()
MARKUP = ("#", "*", "_", "<", ">", "`")


def test_the_55_markdown_laws_get_plain_titles_and_stay_one_essay_each(tmp_path: Path, external: Path) -> None:
    src = external / "outline_laws" / "lawrefbook"
    for p in sorted(src.glob("*.md")):
        text = p.read_text(encoding="utf-8")
        essays = ingest_file(src, p.name, CFG).essays
        assert len(essays) == 1, p.name  # its ## headings are outline items, not titles
        [e] = essays
        assert e.title == text.split("\n", 1)[0].lstrip("#").strip()
        assert not e.title.startswith(MARKUP)
        assert rebuild_raw(e.body.text, e.body.edits) == text


@pytest.mark.parametrize("raw,title", [
    ("# 关于加强预算审查监督的决定", "关于加强预算审查监督的决定"),
    ("### 关于加强预算审查监督的决定 ###", "关于加强预算审查监督的决定"),
    ("**2024年政府工作报告**", "2024年政府工作报告"),
    ("__2024年政府工作报告__", "2024年政府工作报告"),
    ("<h1>2024年政府工作报告</h1>", "2024年政府工作报告"),
    ("#  【精选】2024年工作总结", "2024年工作总结"),
    ("#话题#的讨论", "#话题#的讨论"),  # a hashtag is words, not a heading mark
    ("C# 程序设计教程", "C# 程序设计教程"),
])
def test_clean_title_strips_markup(raw: str, title: str) -> None:
    assert clean_title(raw) == title


def test_markdown_compilation_titles(external: Path) -> None:
    """Two Markdown laws in one file: both titles plain, the second found where it starts."""
    src = sorted((external / "outline_laws" / "lawrefbook").glob("*.md"))
    a, b = (p.read_text(encoding="utf-8") for p in src[3:5])
    text = a.rstrip("\n") + "\n\n" + b
    spans = split_text(text, CFG.max_title_chars, CFG.min_essay_chars, CFG.max_long_title_chars)
    assert [s.title for s in spans] == [t.split("\n", 1)[0].lstrip("# ") for t in (a, b)]


def test_a_jsonl_title_with_markup(tmp_path: Path) -> None:
    rec = {"title": "## 2024年工作总结", "text": "一年来，我们认真贯彻落实各项决策部署，各项工作取得明显成效。" * 3}
    (tmp_path / "a.jsonl").write_text(json.dumps(rec, ensure_ascii=False) + "\n", encoding="utf-8")
    [e] = ingest_file(tmp_path, "a.jsonl", CFG).essays
    assert e.title == "2024年工作总结"
