"""Issue 13 #8, #10, #13 at the command line: one-line errors before Prefect starts, diff never
writes into a release, sealed releases still inspect/publish, the embedded server is retried."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time

import pytest
from tests.helpers.cli import file_digests, one_line, run_cli
from tests.helpers.tiny_release import make_tables, write_release

from corpuspipe.cli.flowrun import is_connection_refused, run_with_server_retry
from corpuspipe.release.versioning import seal_release

SECRET = "sk-live-51HqT0aXz9"


@pytest.fixture
def releases(tmp_path):
    root = tmp_path / "releases"
    a = write_release(root, make_tables(), "1.0.0")
    b = write_release(root, make_tables(n_docs=5, titles={1: "新标题"}), "1.1.0", previous_version="1.0.0")
    return root, a, b


# ----------------------------------------------------------------------------- #8 preflight
def test_bad_version_is_one_line_before_prefect(tmp_path, raw_dir):
    t0 = time.perf_counter()
    proc = run_cli("release", str(raw_dir), "--out", str(tmp_path / "out"), "--version", "bad")
    print(f"[measure] release --version bad -> error in {time.perf_counter() - t0:.2f} s")
    one_line(proc, "--version 'bad' is not MAJOR.MINOR.PATCH")


def test_version_must_be_newer_than_the_latest_release(releases, raw_dir):
    root, _, _ = releases
    one_line(run_cli("release", str(raw_dir), "--out", str(root), "--version", "1.1.0"),
             "not newer than the latest release 1.1.0")


@pytest.mark.parametrize("toml, needle", [
    ("[dedup]\nthreshold = 1.5\n", "dedup.threshold: Input should be less than or equal to 1"),
    ("[dedup]\nthresold = 0.5\n", "unknown key dedup.thresold"),
    (f'api_key = "{SECRET}"\n', "unknown key api_key"),
    ("[ingest]\nmax_file_bytes = -1\n", "ingest.max_file_bytes"),
    ("[dedup\n", "not valid TOML"),
])
def test_bad_config_is_one_line_naming_file_and_key(tmp_path, raw_dir, toml, needle):
    cfg = tmp_path / "my.toml"
    cfg.write_text(toml, encoding="utf-8")
    t0 = time.perf_counter()
    proc = run_cli("release", str(raw_dir), "--out", str(tmp_path / "out"), "--config", str(cfg))
    print(f"[measure] release --config bad -> error in {time.perf_counter() - t0:.2f} s")
    line = one_line(proc, "my.toml", needle)
    assert SECRET not in line


def test_rules_file_error_names_file_and_rule_never_contents(tmp_path, raw_dir):
    rules = tmp_path / "rules.toml"
    rules.write_text(f'api_key = "{SECRET}"\n[[rule]]\nname = "nested"\nscope = "inline"\n'
                     "pattern = '''(x+)+y'''\n", encoding="utf-8")
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f"[watermark]\nrules_file = '{rules}'\n", encoding="utf-8")
    line = one_line(run_cli("release", str(raw_dir), "--out", str(tmp_path / "out"), "--config", str(cfg)),
                    "rules.toml")
    assert SECRET not in line and "(x+)+y" not in line
    rules.write_text("[[rule]]\nname = 'nested'\nscope = 'inline'\npattern = '''(x+)+y'''\n", encoding="utf-8")
    one_line(run_cli("release", str(raw_dir), "--out", str(tmp_path / "out"), "--config", str(cfg)),
             "rules.toml", "rule 'nested'", "pattern refused")


@pytest.mark.skipif(importlib.util.find_spec("s3fs") is not None, reason="s3fs is installed here")
def test_publish_to_s3_without_the_extra_says_how_to_install_it(releases):
    _, a, _ = releases
    one_line(run_cli("publish", str(a), "s3://bucket/corpus"), "install it with: pip install 'corpuspipe[s3]'")


def test_read_only_publish_target_is_one_line(releases, tmp_path):
    _, a, _ = releases
    if os.geteuid() == 0:  # root ignores file modes; sysfs refuses new files even to root
        target = "/sys/corpuspipe-target/corpus"
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        target = str(ro / "corpus")
    one_line(run_cli("publish", str(a), target), "publish target is read-only")


def test_disk_full_is_one_line(releases):
    _, a, b = releases
    one_line(run_cli("diff", str(a), str(b), "--out", "/dev/full"), "no space left on the device")


# ----------------------------------------------------------------------------- #10 immutable releases
def test_diff_prints_and_never_writes_into_a_release(releases, tmp_path):
    root, a, b = releases
    before = file_digests(root)
    proc = run_cli("diff", str(a), str(b))
    assert proc.returncode == 0, proc.stderr
    assert "documents" in proc.stdout and "1.1.0" in proc.stdout
    assert file_digests(root) == before
    one_line(run_cli("diff", str(a), str(b), "--out", str(b / "CHANGELOG.md")), "refusing to write into release")
    assert file_digests(root) == before
    dest = tmp_path / "notes" / "changes.md"
    assert run_cli("diff", str(a), str(b), "--out", str(dest)).returncode == 0
    assert dest.read_text(encoding="utf-8") == proc.stdout


def test_sealed_releases_inspect_diff_and_publish(releases, tmp_path):
    root, a, b = releases
    seal_release(a)
    seal_release(b)
    assert run_cli("inspect", str(b)).returncode == 0
    assert run_cli("diff", str(a), str(b)).returncode == 0
    target = tmp_path / "bucket"
    first = run_cli("publish", str(b), str(target))
    assert first.returncode == 0 and first.stdout.startswith("published"), first.stderr
    again = run_cli("publish", str(b), str(target))
    assert again.returncode == 0 and again.stdout.startswith("already published"), again.stderr


# ----------------------------------------------------------------------------- #13 embedded server
class ConnectError(Exception):  # stands for httpx.ConnectError (matched by name, httpx not imported)
    pass


def test_connection_refused_before_any_task_is_retried_once_server_restarts():
    resets = []
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            try:
                raise ConnectionRefusedError(111, "Connection refused")
            except ConnectionRefusedError as inner:
                raise ConnectError("All connection attempts failed") from inner
        return "releases/1.0.0"

    assert run_with_server_retry(flaky, lambda: False, lambda: resets.append(1), wait=0) == "releases/1.0.0"
    assert len(calls) == 2 and resets == [1]
    calls.clear()
    with pytest.raises(ConnectError):  # a task already ran: never silently re-run half a build
        run_with_server_retry(flaky, lambda: True, lambda: resets.append(1), wait=0)
    assert not is_connection_refused(ValueError("bad config"))


@pytest.mark.slow
def test_release_with_two_busy_processes_beside_it(tmp_path, raw_dir):
    busy = [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(2)]
    try:
        env = {**os.environ, "PREFECT_HOME": str(tmp_path / ".prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        t0 = time.perf_counter()
        proc = run_cli("release", str(raw_dir), "--out", str(tmp_path / "out"), timeout=600, env=env)
        print(f"[measure] release beside 2 busy processes: {time.perf_counter() - t0:.1f} s")
    finally:
        for p in busy:
            p.kill()
            p.wait()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ConnectError" not in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "out" / "latest").read_text().strip() == "1.0.0"
