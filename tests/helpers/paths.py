"""The folders tests read, named once so that a test file's depth under ``tests/`` does not matter."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RAW = REPO / "raw"  # the user's seed essays
DATA = REPO / "tests" / "data"  # real text copied for tests, each folder with a README (source, licence)
SHARED = REPO.parent / "shared"
EXTERNAL = SHARED / "external"
