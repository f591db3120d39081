"""What a bench script needs, said in one line when it is missing: no traceback, no machine's paths.

Inputs are options with defaults relative to the repository (``bench/out/...``) or to the shared
data beside it (``../shared/external``, where ``tests/helpers/paths.py`` finds it too); set
``CORPUSPIPE_EXTERNAL`` to read the external text from elsewhere.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXTERNAL = Path(os.environ.get("CORPUSPIPE_EXTERNAL") or REPO.parent / "shared" / "external")


def need(path: Path, what: str, how: str = "") -> Path:
    """``path`` if it exists; otherwise exit 2 with one line: the script, what it needs, where it
    looked and how to get it."""
    path = Path(path)
    if not path.exists():
        script = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "bench"
        print(f"{script}: needs {what}: {path} not found" + (f"; {how}" if how else ""), file=sys.stderr)
        raise SystemExit(2)
    return path


def need_external(sub: str = "") -> Path:
    """The shared external text (or a folder of it)."""
    return need(EXTERNAL / sub if sub else EXTERNAL, "the shared external text",
                "put the project's shared/ folder beside the repository or set CORPUSPIPE_EXTERNAL")
