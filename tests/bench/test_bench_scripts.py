"""Bench scripts for newcomers (issue 25 #5): a missing input is one line saying what is needed and
how to get it (before: `bench/eval_release.py releases/1.0.0` died with a traceback), and no script
defaults to a path on one machine (before: `bench/profile_pass1.py` read /work/main/...)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from tests.helpers.paths import REPO

#: the bench scripts of the docs work (bench/README.md lists them all)
SCRIPTS = ("eval_release", "profile_pass1", "bench_decode", "bench_ingest_bigfile", "eval_dedup",
           "make_corpus", "eval_sections", "eval_flags", "_need")

MISSING = [
    ("eval_release", ["releases/1.0.0"], "needs a bench corpus with its truth file"),
    ("eval_release", ["releases/1.0.0", "--corpus", "{tmp}/nothing"], "needs a bench corpus"),
    ("profile_pass1", ["--corpus", "{tmp}/nothing"], "needs a crawl-shaped corpus"),
    ("bench_decode", ["--mb", "0.01"], "needs the shared external text"),
    ("make_corpus", ["--out", "{tmp}/c", "--mb", "0.01"], "needs the shared external text"),
    ("eval_sections", [], "needs the shared external text"),
]


@pytest.mark.parametrize("script,args,said", MISSING, ids=[f"{m[0]}-{i}" for i, m in enumerate(MISSING)])
def test_a_missing_input_is_one_line(script, args, said, tmp_path):
    env = {**os.environ, "CORPUSPIPE_EXTERNAL": str(tmp_path / "no-external")}
    proc = subprocess.run([sys.executable, str(REPO / "bench" / f"{script}.py"),
                           *[a.format(tmp=tmp_path) for a in args]],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"{script}.py: {said}") and " not found; " in lines[0]


def test_no_bench_script_defaults_to_a_machine_path():
    for name in SCRIPTS:
        text = (REPO / "bench" / f"{name}.py").read_text(encoding="utf-8")
        assert not re.search(r"/work/|/home/|/Users/", text), name
