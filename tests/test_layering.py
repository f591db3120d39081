"""src/corpuspipe holds pure stage code: importing it must not pull in Prefect (the CLI is the
one thin layer that reaches the flows, lazily, inside its commands)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import corpuspipe


def test_no_corpuspipe_module_imports_prefect():
    modules = sorted(m.name for m in pkgutil.walk_packages(corpuspipe.__path__, "corpuspipe."))
    assert "corpuspipe.pipeline" in modules and "corpuspipe.stages.ingest.files" in modules
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


LAYERS = ["core", "zh", "stages", "pipeline", "release", "preflight", "cli"]  # each may import only its own layer or lower


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "corpuspipe" or len(parts) < 2:
        return None
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else None


def test_imports_point_down_the_stack():
    """cli -> release -> pipeline -> stages -> zh -> core: no arrow up (ARCHITECTURE.md)."""
    import ast
    from pathlib import Path

    root = Path(corpuspipe.__file__).parent
    bad = []
    for path in sorted(root.rglob("*.py")):
        mod = "corpuspipe." + ".".join(path.relative_to(root).with_suffix("").parts)
        own = _layer(mod)
        if own is None:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                other = _layer(name)
                if other is not None and other > own:
                    bad.append(f"{mod} imports {name}")
    assert bad == []


def test_the_flow_wires_no_stage_by_hand():
    """The flow runs the pipeline's plan: it never imports a stage module."""
    from pathlib import Path

    flow = (Path(corpuspipe.__file__).parents[2] / "flows" / "release.py").read_text(encoding="utf-8")
    assert "corpuspipe.stages" not in flow and "pipeline.plan()" in flow
