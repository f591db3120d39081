"""Every snippet of README.md and docs/ runs, as written, against a release of raw/ (issue 25 #2).

The newcomer's path is the README read top to bottom: `make release` (the release of raw/ that
the fixture builds through the same pipeline and writer, byte-identical to the CLI's), its printed
summary, the layout, `show`, loading the release with pandas / DuckDB / Hugging Face `datasets`,
`export`, loading the export in `datasets` in both formats.  Each page runs in a fresh directory
holding `releases/` (and `raw/`), its blocks in order:

* ```` ```python ```` blocks are executed, each in its own namespace (copy-pasteable alone), except
  an excerpt of a source file, whose first line names it (``# src/corpuspipe/pipeline.py``);
* ```` ```sql ```` blocks are run by DuckDB;
* ```` ```bash ```` lines calling ``corpuspipe export|show|inspect|config|diff`` are run through the
  CLI (other lines -- make, prefect, dask, release -- are not: the release exists already);
* ```` ```text ```` blocks are only checked when annotated.

An HTML comment right before a block says what else to check:

* ``<!-- test: ids = corpuspipe export ARGS -->``: the block's rows (SQL: the first column; Python:
  the ``id`` column of the variable named by ``ids of NAME``) are exactly the ids the export writes;
* ``<!-- test: ids ⊆ corpuspipe export ARGS -->``: a subset of them (a stricter recipe);
* ``<!-- test: release summary of raw/ -->``: the block is what ``corpuspipe release`` prints at the end;
* ``<!-- test: output of corpuspipe ARGS -->``: every line of the block but ``…`` is a line the
  command prints (an excerpt of its output);
* ``<!-- test: skip (why) -->``: not run.

Before this test the README's two "deduplicated leaf sections" recipes returned 134 and 118 rows on
the same release; only the second was the export's selection.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from tests.helpers.paths import RAW, REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
CLI_RUN = ("export", "show", "inspect", "config", "diff")
_FENCE = re.compile(r"(?:<!--\s*test:\s*(?P<note>.*?)\s*-->\s*\n)?^```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^```\s*$",
                    re.S | re.M)


@dataclass
class Block:
    page: str
    line: int
    lang: str
    body: str
    note: str | None


def blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    name = path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else path.name
    return [Block(name, text.count("\n", 0, m.start("lang")) + 1, m["lang"],
                  m["body"], m["note"]) for m in _FENCE.finditer(text)]


@pytest.fixture(scope="session")
def raw_release(tmp_path_factory) -> Path:
    """``make release``'s release of raw/ (pipeline + writer without Prefect: the same bytes)."""
    from tests.helpers.seed_release import build_seed_release

    root = tmp_path_factory.mktemp("newcomer")
    build_seed_release(RAW, root / "releases")
    return root / "releases"


@pytest.fixture(scope="session", autouse=True)
def _hf_offline(tmp_path_factory):
    """Hugging Face `datasets` reads local files only, with its cache out of the home directory."""
    home = tmp_path_factory.mktemp("hf")
    old = {k: os.environ.get(k) for k in ("HF_HOME", "HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE")}
    os.environ.update(HF_HOME=str(home), HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1")
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _cli(args: list[str]) -> str:
    from typer.testing import CliRunner

    from corpuspipe.cli import app

    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, f"corpuspipe {' '.join(args)}: {res.output}"
    return res.output


def _export_ids(args: str, where: Path) -> list[str]:
    out = where / f"export-{abs(hash(args))}"
    if not out.exists():
        argv = args.split()
        assert argv[:2] == ["corpuspipe", "export"] and "OUT" in argv, args
        fmt = [] if "--format" in argv else ["--format", "parquet"]
        _cli(["export", *[str(out) if a == "OUT" else a for a in argv[2:]], *fmt])
    return [r["id"] for f in sorted((out / "parquet").glob("*.parquet"))
            for r in pq.read_table(f, columns=["id"]).to_pylist()]


def _ids(value) -> list[str]:
    if hasattr(value, "fetchall") and hasattr(value, "df"):  # a DuckDB relation
        value = value.df()
    cols = list(value.columns)
    col = "id" if "id" in cols else cols[0]
    return [str(x) for x in list(value[col])]


def _check_ids(block: Block, got: list[str], where: Path) -> None:
    m = re.match(r"ids(?: of \w+)? (=|⊆) (corpuspipe export .*)$", block.note)
    assert m, f"{block.page}:{block.line}: cannot read the note {block.note!r}"
    want = _export_ids(m[2], where)
    assert len(got) == len(set(got)), f"{block.page}:{block.line}: duplicate ids"
    if m[1] == "=":
        assert sorted(got) == sorted(want), (f"{block.page}:{block.line}: {len(got)} rows, but `{m[2]}` "
                                             f"exports {len(want)}")
    else:
        assert set(got) <= set(want) and got, f"{block.page}:{block.line}: not a subset of `{m[2]}`"


def _summary_text(release_root: Path, cwd: Path) -> str:
    from rich.console import Console

    from corpuspipe.cli.release import summary

    buf = io.StringIO()
    here = os.getcwd()
    try:
        os.chdir(cwd)
        summary(cwd / "releases" / (release_root / "latest").read_text().strip(),
                to=Console(file=buf, width=200, color_system=None))
    finally:
        os.chdir(here)
    return buf.getvalue()


def run_page(path: Path, releases: Path, work: Path) -> int:
    """Run every block of one page in ``work``; the number of blocks checked."""
    work.mkdir(parents=True)
    os.symlink(releases, work / "releases")
    os.symlink(RAW, work / "raw")
    here = os.getcwd()
    checked = 0
    try:
        os.chdir(work)
        for b in blocks(path):
            where = f"{b.page}:{b.line}"
            if b.note and b.note.startswith("skip"):
                assert re.match(r"skip \(.+\)", b.note), f"{where}: a skipped block says why: skip (why)"
                continue
            if b.note == "release summary of raw/":
                assert b.body == _summary_text(releases, work), f"{where}: the release prints\n" + \
                    _summary_text(releases, work)
                checked += 1
            elif b.note and b.note.startswith("output of "):
                argv = b.note.removeprefix("output of ").split()
                assert argv[0] == "corpuspipe", f"{where}: output of corpuspipe ..."
                printed = set(_cli(argv[1:]).splitlines())
                missing = [ln for ln in b.body.splitlines() if ln != "…" and ln not in printed]
                assert not missing, f"{where}: `{b.note[10:]}` does not print {missing[:3]}"
                checked += 1
            elif b.lang == "python" and re.match(r"# \S+\.py\s*$", b.body.split("\n", 1)[0]):
                assert not b.note, f"{where}: an excerpt of a source file is not run, so it checks nothing"
                compile(b.body, where, "exec")  # still valid Python
            elif b.lang == "python":
                ns: dict = {"__name__": "__snippet__"}
                exec(compile(b.body, where, "exec"), ns)  # noqa: S102 -- the docs' own code
                if b.note:
                    name = re.match(r"ids of (\w+)", b.note)
                    assert name, f"{where}: a Python block names its result: ids of NAME = ..."
                    _check_ids(b, _ids(ns[name[1]]), work)
                checked += 1
            elif b.lang == "sql":
                import duckdb

                rel = duckdb.sql(b.body)
                rows = rel.fetchall() if rel is not None else []
                if b.note:
                    _check_ids(b, [str(r[0]) for r in rows], work)
                checked += 1
            elif b.lang == "bash":
                for line in b.body.splitlines():
                    cmd = line.split("#", 1)[0].strip().rstrip("\\").strip()
                    argv = cmd.split()
                    if argv and argv[0] in ("corpuspipe", ".venv/bin/corpuspipe") and len(argv) > 1 \
                            and argv[1] in CLI_RUN:
                        _cli(argv[1:])
                        checked += 1
            else:
                assert b.note is None, f"{where}: a note on a {b.lang or 'plain'} block is never checked"
    finally:
        os.chdir(here)
    return checked


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_snippet_runs_as_written(page, raw_release, tmp_path):
    run_page(page, raw_release, tmp_path / "work")


def test_the_newcomers_path_is_in_the_readme(raw_release, tmp_path):
    """README: the summary, the report to open, show, loading (pandas, DuckDB, datasets), export,
    the export in datasets in both formats -- all present, all run."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    for needle in ("make release", "report.html", "corpuspipe show", "pd.read_parquet", "duckdb.sql",
                   'load_dataset("parquet"', "corpuspipe export", 'load_dataset("json"', ".jsonl.zst"):
        assert needle in text, needle
    assert run_page(REPO / "README.md", raw_release, tmp_path / "work") >= 6
    assert (raw_release / "1.0.0" / "report.html").is_file()
    assert len(text.splitlines()) <= 150, "the README is a front door: the reference lives in docs/"


def test_a_wrong_recipe_fails(raw_release, tmp_path):
    """The check can fail: the README's old leaf recipe (no document filter) is caught."""
    page = tmp_path / "page.md"
    page.write_text("<!-- test: ids = corpuspipe export releases/1.0.0 OUT --level section -->\n```sql\n"
                    "SELECT section_id FROM 'releases/1.0.0/sections/*.parquet' WHERE is_leaf AND duplicate_of IS NULL\n"
                    "```\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="rows, but"):
        run_page(page, raw_release, tmp_path / "work")
