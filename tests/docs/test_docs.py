"""Docs that cannot drift (issue 25 #2): the generated reference pages and ``config.example.toml``
are what the code gives now, every release column has its sentence, and the site builds with
``mkdocs build --strict`` (a broken link, anchor or nav entry fails)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib

import pytest
from tests.helpers.paths import REPO

from corpuspipe import docgen
from corpuspipe.core import schema_docs, schemas
from corpuspipe.config import PipelineConfig


def test_generated_pages_are_what_the_code_gives():
    """config.example.toml and docs/reference/*.md: regenerate and compare (`make docs` writes them).
    Before: the README said compression_level 9 and config.example.toml partition_rows 4000000,
    while the code said 3 and 1000000."""
    assert docgen.stale() == [], "run `make docs` (python -m corpuspipe.docgen) and commit the result"


def test_the_example_config_is_what_config_init_writes_and_loads_as_the_defaults(tmp_path):
    from typer.testing import CliRunner

    from corpuspipe.cli import app

    path = tmp_path / "c.toml"
    res = CliRunner().invoke(app, ["config", "init", str(path)])
    assert res.exit_code == 0, res.output
    assert path.read_text(encoding="utf-8") == (REPO / "config.example.toml").read_text(encoding="utf-8")
    # every key is there, commented out: uncommenting all of them gives the defaults back
    text = (REPO / "config.example.toml").read_text(encoding="utf-8")
    uncommented = re.sub(r"^# (\w+ = .*)$", r"\1", text, flags=re.M).replace("= (unset)", "= \"\"")
    data = tomllib.loads(uncommented)
    data["watermark"].pop("rules_file")
    assert PipelineConfig.model_validate(data) == PipelineConfig()


def test_the_references_name_every_default_option_and_column():
    cfg_page = (REPO / "docs/reference/configuration.md").read_text(encoding="utf-8")
    assert "| `compression_level` | int in [1, 22] | `3` |" in cfg_page
    assert "| `partition_rows` | int >= 1000 | `1000000` |" in cfg_page
    cli_page = (REPO / "docs/reference/cli.md").read_text(encoding="utf-8")
    for cmd in ("release", "serve", "inspect", "export", "show", "diff", "publish", "config show", "config init"):
        assert f"## `corpuspipe {cmd}`" in cli_page
    assert "| `--level` | text | `document` |" in cli_page and "| `--keep-flagged` | flag | — |" in cli_page
    contract = (REPO / "docs/reference/release-contract.md").read_text(encoding="utf-8")
    for name, schema in schemas.TABLES.items():
        for f in schema:
            assert f"| `{f.name}` |" in contract, (name, f.name)


def test_every_column_has_exactly_one_sentence():
    """A column added to schemas.py without a sentence in schema_docs.py (or a sentence for a column
    that is gone) fails here, so the contract page follows the schema."""
    assert set(schema_docs.TABLES) == set(schemas.TABLES) == set(schema_docs.COLUMNS)
    for name, schema in schemas.TABLES.items():
        assert list(schema_docs.COLUMNS[name]) == schema.names, name
        assert all(doc.strip() for doc in schema_docs.COLUMNS[name].values())


def test_docgen_check_fails_on_a_stale_page(tmp_path):
    for rel, text in docgen.pages().items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    assert docgen.stale(tmp_path) == []
    p = tmp_path / "docs/reference/configuration.md"
    p.write_text(p.read_text(encoding="utf-8").replace("`1000000`", "`4000000`"), encoding="utf-8")
    assert docgen.stale(tmp_path) == ["docs/reference/configuration.md"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    return proc, out


def test_the_site_builds_strictly_with_no_warning(site):
    proc, out = site
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "WARNING" not in proc.stderr, proc.stderr[-3000:]
    for page in ("index.html", "reference/release-contract/index.html", "reference/cli/index.html",
                 "reference/configuration/index.html", "using-a-release/index.html"):
        assert (out / page).is_file(), page
    assert (out / "img" / "report-edits.png").is_file()


def test_every_docs_page_is_in_the_nav_and_the_picture_is_small():
    nav = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    for page in sorted((REPO / "docs").rglob("*.md")):
        assert page.relative_to(REPO / "docs").as_posix() in nav, page
    for img in (REPO / "docs" / "img").glob("*.png"):
        assert img.stat().st_size < 300_000, img


#: a default quoted in prose: "`dedup.max_bucket` = 100", "`release.shard_files` files (512)",
#: "`dedup.min_document_chars` (50: ...", "`release.shard_max_bytes` = 32 MB"
_QUOTED_DEFAULT = re.compile(r"`(?P<section>\w+)\.(?P<key>\w+)`(?: \w+)? (?:= |\()(?P<num>\d[\d,]*(?:\.\d+)?)"
                             r"(?: ?(?P<unit>KB|MB|GB)\b)?")
_UNITS = {None: 1, "KB": 2**10, "MB": 2**20, "GB": 2**30}


def quoted_defaults(text: str) -> list[tuple[str, float, object]]:
    """Every ``section.key`` the text quotes with a number: (name, the number quoted, the default)."""
    cfg = PipelineConfig()
    out = []
    for m in _QUOTED_DEFAULT.finditer(text):
        section = getattr(cfg, m["section"], None)
        if section is None or m["key"] not in type(section).model_fields:
            continue
        out.append((f"{m['section']}.{m['key']}", float(m["num"].replace(",", "")) * _UNITS[m["unit"]],
                    getattr(section, m["key"])))
    return out


def test_defaults_quoted_in_prose_are_the_codes():
    """A page that quotes a setting's default in prose says the number the code has.  Before:
    using-a-release.md said `dedup.min_document_chars` (30) after the default became 50."""
    found = []
    for page in [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]:
        for name, quoted, default in quoted_defaults(page.read_text(encoding="utf-8")):
            found.append(name)
            assert quoted == default, f"{page.relative_to(REPO)}: `{name}` is {default}, the page says {quoted:g}"
    assert len(found) >= 4 and "dedup.min_document_chars" in found  # the pattern still finds the quotes
    assert quoted_defaults("`dedup.min_document_chars` (30: a title-only page)")[0][1:] == (30, 50)
