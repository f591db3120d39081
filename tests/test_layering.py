"""src/corpuspipe holds pure stage code: importing it must not pull in Prefect (the CLI is the
one thin layer that reaches the flows, lazily, inside its commands)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import corpuspipe


def test_no_corpuspipe_module_imports_prefect():
    modules = sorted(m.name for m in pkgutil.walk_packages(corpuspipe.__path__, "corpuspipe."))
    assert "corpuspipe.steps" in modules and "corpuspipe.stages.ingest.files" in modules
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m == 'prefect' or m.startswith('prefect.'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"prefect imported by corpuspipe modules: {out.stdout.strip()}"
