"""The CLI's user errors are one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import os

from tests.helpers.cli import one_line, run_cli


def test_missing_raw_dir(tmp_path):
    one_line(run_cli("release", str(tmp_path / "nope"), "--out", str(tmp_path / "out")), "raw directory not found")


def test_empty_raw_dir(tmp_path):
    (tmp_path / "empty").mkdir()
    one_line(run_cli("release", str(tmp_path / "empty"), "--out", str(tmp_path / "out")), "raw directory is empty")


def test_unwritable_output(tmp_path, raw_dir):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    one_line(run_cli("release", str(raw_dir), "--out", str(blocker / "releases")), "not a directory")


def test_serve_refuses_a_missing_raw_dir_in_one_line(tmp_path):
    """Checked before any server is asked (the address is never contacted); was an internal error
    (UnboundLocalError) when the raw directory was checked before preflight was imported."""
    proc = run_cli("serve", "--cron", "0 3 * * *", "--raw", str(tmp_path / "nope"),
                   env={**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api"})
    one_line(proc, "raw directory not found")


def test_inspect_rejects_non_release(tmp_path):
    one_line(run_cli("inspect", str(tmp_path)), "not a release")


def test_version():
    from corpuspipe import __version__

    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"corpuspipe {__version__}"


def test_config_init_writes_a_commented_file_that_changes_nothing(tmp_path):
    from corpuspipe.config import PipelineConfig
    from corpuspipe.preflight import load_config

    path = tmp_path / "c.toml"
    assert run_cli("config", "init", str(path)).returncode == 0
    text = path.read_text(encoding="utf-8")
    assert "# threshold = 0.35" in text and "exact Jaccard" in text
    assert load_config(path).config_hash() == PipelineConfig().config_hash()
    again = run_cli("config", "init", str(path))
    one_line(again, "exists; pass --force")


def test_config_show_marks_changed_values(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[dedup]\nthreshold = 0.5\n", encoding="utf-8")
    proc = run_cli("config", "show", "--config", str(cfg))
    assert proc.returncode == 0
    assert "threshold = 0.5  # default: 0.35" in proc.stdout and "[release]" in proc.stdout
    one_line(run_cli("config", "show", "--config", str(tmp_path / "none.toml")), "config file not found")


def test_config_reference_lists_every_key(repo):
    """The configuration reference (docs/reference/configuration.md, generated: tests/docs/test_docs.py)."""
    from corpuspipe.config import PipelineConfig

    page = (repo / "docs" / "reference" / "configuration.md").read_text(encoding="utf-8")
    for sec, f in PipelineConfig.model_fields.items():
        part = page.split(f"## `[{sec}]`", 1)[1].split("\n## ", 1)[0]
        for key in f.annotation.model_fields:
            assert f"| `{key}` |" in part, f"{sec}.{key}"


def test_inspect_names_document_and_section_pairs_apart(seed_release):
    proc = run_cli("inspect", str(seed_release))
    assert proc.returncode == 0, proc.stderr
    assert "{" not in proc.stdout and "'" not in proc.stdout  # tables, not Python reprs
    rows = [l for l in proc.stdout.splitlines() if "near_duplicate" in l]
    assert any("document" in l for l in rows) and any("section" in l for l in rows)
