"""Only the orchestration package imports Prefect (the CLI reaches it lazily, inside its commands),
and every import points down the stack."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import corpuspipe


PREFECT_MODULES = {"corpuspipe.orchestrate.flow", "corpuspipe.orchestrate.serve"}


def test_no_corpuspipe_module_but_the_flow_imports_prefect():
    modules = sorted(m.name for m in pkgutil.walk_packages(corpuspipe.__path__, "corpuspipe.")
                     if m.name not in PREFECT_MODULES and not m.name.endswith(".__main__"))  # runs the CLI
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


SRC = Path(corpuspipe.__file__).parent
FLOWS = SRC.parents[1] / "flows"  # prefect.yaml's entry point: a name for corpuspipe.orchestrate.flow

#: The stack, bottom first: a module may import only from its own layer or a lower one.  Every
#: package and top-level module of src/corpuspipe, and flows/ (prefect.yaml's entry point), has a
#: layer, and nothing else is listed (``test_layers_list_exactly_what_src_holds``): a new package
#: must be placed here before it can be merged.
LAYERS: list[tuple[str, ...]] = [
    ("__init__",),  # corpuspipe/__init__.py: __version__ only
    ("core",),
    ("zh",),
    ("stages",),
    ("config",),  # PipelineConfig: the stages' config sections composed
    ("pipeline",),
    ("release",),
    ("orchestrate",),  # the Prefect flow, the early server, cron serving: the only Prefect imports
    ("configdoc", "preflight"),  # what the CLI checks and prints before a run
    ("flows",),
    ("cli",),
    ("docgen",),  # writes the reference pages from the config models and the CLI
]
#: Folders of src/corpuspipe that hold data, not code (read through ``importlib.resources``): no
#: layer, and no Python file in them.
DATA = {"rules"}  # watermarks.toml, the shipped watermark rules
_RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
#: the names directly under corpuspipe/: modules, and folders whether or not they have an
#: __init__.py (Python imports a folder without one as a namespace package); anything else
#: imported from ``corpuspipe`` is an attribute of its __init__, e.g. __version__
_TOP = {p.stem if p.is_file() else p.name for p in SRC.iterdir()
        if (p.suffix == ".py" or p.is_dir()) and not p.name.startswith(("_", "."))}


def _modules() -> list[tuple[str, Path]]:
    """(dotted name, path) of every Python module of the package and of the orchestration package."""
    out = [("corpuspipe." + ".".join(p.relative_to(SRC).with_suffix("").parts), p) for p in sorted(SRC.rglob("*.py"))]
    out += [("flows." + ".".join(p.relative_to(FLOWS).with_suffix("").parts), p) for p in sorted(FLOWS.rglob("*.py"))]
    return out


def _top(module: str) -> str | None:
    """The layer name of a dotted module (or of an attribute imported from a package); None for
    code outside the project."""
    parts = module.split(".")
    if parts[0] == "flows":
        return "flows"
    if parts[0] != "corpuspipe":
        return None
    if len(parts) == 1 or parts[1] not in _TOP:
        return "__init__"
    return parts[1]


def _imported(module: str, path: Path) -> Iterator[str]:
    """Every project module (or package attribute) the file imports, relative imports resolved,
    ``from corpuspipe import x`` as ``corpuspipe.x``."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            yield base
            yield from (f"{base}.{a.name}" for a in node.names)


def test_every_module_has_a_layer():
    """The layer check below cannot skip a module: each one of src/corpuspipe and flows/ is placed."""
    modules = _modules()
    assert "corpuspipe.configdoc" in dict(modules) and "flows.release" in dict(modules)
    unplaced = sorted(m for m, _ in modules if _top(m) not in _RANK)
    assert unplaced == [], f"modules with no layer (add them to LAYERS): {unplaced}"


def test_layers_list_exactly_what_src_holds():
    """LAYERS and DATA name every module and folder directly under src/corpuspipe, and nothing that
    is gone: a new package (with or without __init__.py) fails here until it is placed."""
    listed = (set(_RANK) - {"__init__", "flows"}) | DATA
    assert sorted(_TOP - listed) == [], "in src/corpuspipe but not in LAYERS (place them)"
    assert sorted(listed - _TOP) == [], "in LAYERS or DATA but not in src/corpuspipe (remove them)"
    assert FLOWS.is_dir() and "flows" in _RANK
    assert [p for d in DATA for p in (SRC / d).rglob("*.py")] == [], "code in a data folder: give it a layer"


def test_imports_point_down_the_stack():
    """cli -> flows -> configdoc/preflight -> orchestrate -> release -> pipeline -> stages -> zh ->
    core: no arrow up (ARCHITECTURE.md)."""
    bad = []
    for mod, path in _modules():
        own = _RANK.get(_top(mod))
        if own is None:
            continue  # unplaced: test_every_module_has_a_layer names it
        for name in _imported(mod, path):
            top = _top(name)
            if top is not None and _RANK.get(top, len(LAYERS)) > own:
                bad.append(f"{mod} imports {name}")
    assert bad == []


def test_the_flow_wires_no_stage_by_hand():
    """The flow drives the one release loop: it never imports a stage module or the pipeline, and
    prefect.yaml's entry point is only a name for it."""
    flow = (SRC / "orchestrate" / "flow.py").read_text(encoding="utf-8")
    assert "corpuspipe.stages" not in flow and "corpuspipe import pipeline" not in flow
    assert "release_steps(" in flow
    entry = (FLOWS / "release.py").read_text(encoding="utf-8")
    assert "from corpuspipe.orchestrate.flow import build_release" in entry
