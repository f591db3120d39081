"""Bench scripts for newcomers (issue 25): a missing input is one line saying what is needed and how
to get it (before: `bench/eval_release.py releases/1.0.0` died with a traceback), no script defaults
to a path on one machine (before: `bench/profile_pass1.py` read /work/main/..., `peer_datatrove.py`
wrote to /work/tmp/dt-work), and every script still runs against today's engine (before:
`bench/eval_boilerplate.py` died in every mode on `pipeline.serial_map`, removed by the run-loop
commit; issue 23's figures come from it).

Every check covers every ``bench/*.py`` found on disk, not a list kept by hand: a new script is
checked the day it is added.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from tests.helpers.paths import REPO

BENCH = REPO / "bench"
#: every bench script (``_need.py`` is the helper they share, not a script)
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if p.name != "_need.py")

MISSING = [
    ("eval_release", ["releases/1.0.0"], "needs a bench corpus with its truth file"),
    ("eval_release", ["releases/1.0.0", "--corpus", "{tmp}/nothing"], "needs a bench corpus"),
    ("profile_pass1", ["--corpus", "{tmp}/nothing"], "needs a crawl-shaped corpus"),
    ("bench_decode", ["--mb", "0.01"], "needs the shared external text"),
    ("make_corpus", ["--out", "{tmp}/c", "--mb", "0.01"], "needs the shared external text"),
    ("eval_sections", [], "needs the shared external text"),
    ("eval_boilerplate", ["--laws", "--out", "{tmp}/o"], "needs the shared external text"),
    ("eval_boilerplate", ["--crawl", "{tmp}/nothing", "--out", "{tmp}/o"], "needs a make_crawl.py corpus"),
    ("peer_datatrove", ["{tmp}/nothing", "--work", "{tmp}/w"], "needs a crawl-shaped corpus"),
    ("profile_edits", ["--mb", "0.01", "--repeat", "1"], "needs the shared external text"),
    ("profile_normalize", ["--kinds", "simp", "--repeat", "1"], "needs the shared external text"),
    ("scale_dedup", ["--mb", "0.01"], "needs the shared external text"),
    ("zh_equivalence", [], "needs the shared external text"),
    ("eval_zhe", [], "needs the shared external text"),
    ("eval_split", [], "needs the shared external text"),
    ("make_crawl", ["--out", "{tmp}/c", "--mb", "0.01"], "needs the shared external text"),
    ("section_dedup", [], "needs the shared external text"),
]


def _run(script: Path, args: list[str], cwd: Path, env: dict | None = None, timeout: float = 120):
    """The script run as a user runs it; one still running after ``timeout`` is a failure with its
    own message (rc -1), not an error of every test sharing the run."""
    cmd = [sys.executable, str(script), *args]
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(cmd, -1, "", f"{script.name} {' '.join(args)}: still running after {timeout} s")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """Every script's ``--help`` and every MISSING case, run as ``python bench/X.py ...`` runs them
    but in one interpreter (``_run_scripts.py``: 1.3 s instead of ~12 s CPU for a fresh one each),
    with the external text pointed at a folder that does not exist."""
    tmp = tmp_path_factory.mktemp("bench-runs")
    keys = [("help", s) for s in SCRIPTS] + [("missing", i) for i in range(len(MISSING))]
    jobs = [[str(BENCH / s), ["--help"]] for s in SCRIPTS]
    jobs += [[str(BENCH / f"{m[0]}.py"), [a.format(tmp=tmp / str(i)) for a in m[1]]] for i, m in enumerate(MISSING)]
    (tmp / "jobs.json").write_text(json.dumps(jobs), encoding="utf-8")
    env = {**os.environ, "CORPUSPIPE_EXTERNAL": str(tmp / "no-external")}
    proc = _run(Path(__file__).with_name("_run_scripts.py"), [str(tmp / "jobs.json"), str(tmp / "results.jsonl")],
                tmp, env, 180)
    done = {}
    if (tmp / "results.jsonl").exists():
        for line in (tmp / "results.jsonl").read_text(encoding="utf-8").splitlines():
            i, rc, out, err = json.loads(line)
            done[keys[i]] = subprocess.CompletedProcess(jobs[i], rc, out, err)
    stuck = f"not run: the runner ended (rc {proc.returncode}) at job {len(done)}: {proc.stderr[-1500:]}"
    return {k: done.get(k) or subprocess.CompletedProcess(jobs[i], -1, "", stuck) for i, k in enumerate(keys)}


@pytest.mark.parametrize("case", range(len(MISSING)), ids=[f"{m[0]}-{i}" for i, m in enumerate(MISSING)])
def test_a_missing_input_is_one_line(case, runs):
    script, _, said = MISSING[case]
    proc = runs["missing", case]
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"{script}.py: {said}") and " not found; " in lines[0]


def test_the_scripts_are_found():
    assert len(SCRIPTS) >= 20 and "eval_boilerplate.py" in SCRIPTS and "peer_datatrove.py" in SCRIPTS


# --- (a) no machine's paths -----------------------------------------------------------------------
MACHINE_PATH = re.compile(r"/work/|/tmp/|/home/|/Users/")


@pytest.mark.parametrize("script", SCRIPTS)
def test_no_bench_script_names_a_machine_path(script):
    """Not as a default, not in a usage line a reader copies: ``bench/out/...``, ``../shared``
    (``bench/_need.py``) or the system's temp folder (``tempfile``) instead."""
    lines = (BENCH / script).read_text(encoding="utf-8").splitlines()
    found = [f"{script}:{i}: {ln.strip()}" for i, ln in enumerate(lines, 1) if MACHINE_PATH.search(ln)]
    assert not found, "\n".join(found)


# --- (b) every script starts and answers --help ---------------------------------------------------
@pytest.mark.parametrize("script", SCRIPTS)
def test_every_bench_script_answers_help(script, runs):
    """rc 0 and argparse's usage: the script's imports resolve in any interpreter (peer_datatrove.py
    runs in datatrove's own), and --help does not start the work (eval_zhe.py ran it all, 7 s)."""
    proc = runs["help", script]
    assert proc.returncode == 0 and proc.stdout.startswith("usage: "), f"{script}: {proc.stderr[-2000:]}"


def _bound_names(tree: ast.AST) -> tuple[dict[str, object], list[str]]:
    """What each ``corpuspipe`` import of a script binds (module-level or inside a function), and
    the imports that fail."""
    bound: dict[str, object] = {}
    bad: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] != "corpuspipe":
                    continue
                try:
                    mod = importlib.import_module(a.name)
                except ImportError as e:
                    bad.append(f"line {node.lineno}: import {a.name}: {e}")
                    continue
                bound[a.asname or "corpuspipe"] = mod if a.asname else importlib.import_module("corpuspipe")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "corpuspipe":
            try:
                mod = importlib.import_module(node.module)
            except ImportError as e:
                bad.append(f"line {node.lineno}: from {node.module}: {e}")
                continue
            for a in node.names:
                if hasattr(mod, a.name):
                    bound[a.asname or a.name] = getattr(mod, a.name)
                    continue
                try:
                    bound[a.asname or a.name] = importlib.import_module(f"{node.module}.{a.name}")
                except ImportError:
                    bad.append(f"line {node.lineno}: from {node.module} import {a.name}: no such name")
    return bound, bad


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_name_a_bench_script_takes_from_corpuspipe_exists(script):
    """Statically, without running the script: every corpuspipe import (also the ones inside
    functions, which --help never reaches) and every ``module.name`` read from an imported
    corpuspipe module or class.  ``pipeline.serial_map`` sat in a function every mode of
    eval_boilerplate.py calls; --help passed."""
    tree = ast.parse((BENCH / script).read_text(encoding="utf-8"))
    bound, bad = _bound_names(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        chain, base = [], node
        while isinstance(base, ast.Attribute):
            chain.append(base.attr)
            base = base.value
        if not (isinstance(base, ast.Name) and base.id in bound):
            continue
        obj = bound[base.id]
        for attr in reversed(chain):
            if not isinstance(obj, (ModuleType, type)):
                break  # an instance's attributes are its own business
            if not hasattr(obj, attr):
                bad.append(f"line {node.lineno}: {base.id}.{'.'.join(reversed(chain))}: no {attr!r}")
                break
            obj = getattr(obj, attr)
    assert not bad, f"{script}: " + "; ".join(sorted(set(bad)))


# --- (c) issue 23's evaluation runs --------------------------------------------------------------
def test_eval_boilerplate_laws_runs_and_keeps_every_date_line(tmp_path, external):
    """``--laws``: the 55 laws of ``outline_laws/lawrefbook`` released as one folder, through
    ``pipeline.build`` (the real stages, in this process); its figures as bench/README.md gives
    them: every adoption / promulgation / effective-date line kept, no title starting with markup,
    nothing quarantined, one document per law."""
    laws = len(list((external / "outline_laws" / "lawrefbook").glob("*.md")))
    proc = _run(BENCH / "eval_boilerplate.py", ["--laws", "--out", str(tmp_path / "o")], tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    m = re.search(r"^laws (\d+) -> documents (\d+), quarantined (\d+)$", out, re.M)
    assert m and (int(m[1]), int(m[2]), int(m[3])) == (laws, laws, 0), out
    m = re.search(r"^law metadata lines kept (\d+)/(\d+)$", out, re.M)
    assert m and int(m[2]) >= laws and m[1] == m[2], out  # each law has at least its adoption line
    m = re.search(r"^titles starting with markup (\d+)/(\d+)", out, re.M)
    assert m and (int(m[1]), int(m[2])) == (0, laws), out
    assert re.search(r"^watermark edits by rule: \{.*\}$", out, re.M), out
