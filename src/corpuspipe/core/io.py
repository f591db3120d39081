"""Small I/O helpers every layer uses: atomic writes and content hashes."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

def atomic_write_text(path: Path, text: str) -> None:
    """Write next to the target and os.replace it, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; released files are for everyone to read
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def file_hash(path: Path, h: Any, chunk: int = 1 << 20) -> str:
    """Hex digest of a file's bytes with the given hash object, read in chunks."""
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    return file_hash(path, hashlib.sha256())


def write_json(path: Path, data: Any) -> None:
    """Sorted keys, UTF-8, atomically: equal data gives equal bytes."""
    atomic_write_text(Path(path), json.dumps(data, ensure_ascii=False, sort_keys=True, indent=2) + "\n")


def read_user_text(path: Path, what: str, error: type[Exception]) -> str:
    """A user's UTF-8 file (config, rules), or ``error`` with one line naming it -- never its contents."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise error(f"{what} path is a directory: {path}") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
