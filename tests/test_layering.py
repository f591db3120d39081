"""Only the orchestration package imports Prefect (the CLI reaches it lazily, inside its commands),
and imports point down the stack."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import corpuspipe


def test_no_corpuspipe_module_imports_prefect():
    modules = sorted(m.name for m in pkgutil.walk_packages(corpuspipe.__path__, "corpuspipe.")
                     if m.name not in PREFECT_MODULES)
    assert "corpuspipe.pipeline" in modules and "corpuspipe.stages.ingest.files" in modules
    assert "corpuspipe.orchestrate.server" in modules  # the early server launches Prefect without importing it
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


PREFECT_MODULES = {"corpuspipe.orchestrate.flow", "corpuspipe.orchestrate.serve"}
LAYERS = ["core", "zh", "stages", "pipeline", "release", "orchestrate", "preflight", "cli"]  # each may import only its own layer or lower


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
    """The flow drives the one release loop: it never imports a stage module or the pipeline, and
    prefect.yaml's entry point is only a name for it."""
    from pathlib import Path

    root = Path(corpuspipe.__file__).parent
    flow = (root / "orchestrate" / "flow.py").read_text(encoding="utf-8")
    assert "corpuspipe.stages" not in flow and "corpuspipe import pipeline" not in flow
    assert "release_steps(" in flow
    entry = (root.parents[1] / "flows" / "release.py").read_text(encoding="utf-8")
    assert "from corpuspipe.orchestrate.flow import build_release" in entry
