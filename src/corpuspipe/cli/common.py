"""What every command shares: the two consoles, the verbosity, the one-line user error, and the
release a command reads.

User errors (missing input, unwritable output, …) print one line saying what and where and
exit non-zero; they never show a traceback.
"""

from __future__ import annotations

import errno
from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True)
out = Console()
VERBOSE = {"level": 1}  # 0 quiet, 1 normal, 2 verbose

# What the running command writes to, for an error that does not say (pyarrow's ENOSPC names no file).
WRITING: dict[str, Path | None] = {"to": None}
RELEASE_READ: dict[str, Path | None] = {"dir": None}


class UserError(Exception):
    """A problem the user can fix; reported as one line."""


def fail(msg: str, code: int = 2) -> None:
    from rich.markup import escape

    # escape: messages hold [brackets] (extras like corpuspipe[s3], TOML tables) that rich would eat
    console.print(f"[bold red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def damaged(exc: Exception) -> None:
    """A release that does not match its manifest: one line naming the file, exit 1."""
    fail(str(exc), 1)


def warn(message: str) -> None:
    """One warning line (damaged work-cache entries, ...)."""
    from rich.markup import escape

    console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


def check_raw_dir(raw: Path) -> None:
    if not raw.exists():
        raise UserError(f"raw directory not found: {raw}")
    if not raw.is_dir():
        raise UserError(f"raw path is not a directory: {raw}")
    try:
        has_files = any(p.is_file() for p in raw.rglob("*"))
    except OSError as exc:
        raise UserError(f"cannot read raw directory {raw}: {exc.strerror or exc}") from None
    if not has_files:
        raise UserError(f"raw directory is empty: {raw}")


def check_writable(out_dir: Path) -> None:
    probe_root = out_dir
    while not probe_root.exists():
        probe_root = probe_root.parent
    if not probe_root.is_dir():
        raise UserError(f"output path is not a directory: {probe_root}")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".write-probe"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"cannot write to output directory {out_dir}: {exc.strerror or exc}") from None


def resolve_release(path: Path) -> Path:
    RELEASE_READ["dir"] = path
    if (path / "MANIFEST.json").is_file():
        return path
    latest = path / "latest"
    if latest.is_file():
        candidate = path / latest.read_text(encoding="utf-8").strip()
        if (candidate / "MANIFEST.json").is_file():
            RELEASE_READ["dir"] = candidate
            return candidate
    raise UserError(f"not a release (no MANIFEST.json): {path}")


def operational_error(exc: BaseException) -> str | None:
    """The one line for a failure of the machine or of a file rather than of the program: a full disk,
    no permission, a damaged Parquet or JSON file.  None for anything else (a bug)."""
    if isinstance(exc, OSError):
        where = exc.filename or WRITING["to"]
        if exc.errno == errno.ENOSPC or "No space left on device" in str(exc):
            return f"no space left on the device{f' writing {where}' if where else ''}; free some space and run again"
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return f"{exc.strerror or 'permission denied'}: {where or '(a file the command writes)'}"
        if exc.strerror:
            return f"{exc.strerror}{f': {exc.filename}' if exc.filename else ''}"
    import json

    if isinstance(exc, json.JSONDecodeError):  # the message is the parser's, never the file's text
        return f"a damaged JSON file{_in_release()}: {exc.msg} at line {exc.lineno} column {exc.colno}"
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover
        return None
    if isinstance(exc, pa.ArrowInvalid):  # a Parquet file cut short or overwritten
        return f"a damaged Parquet file{_in_release()}: {str(exc).splitlines()[0][:200]}"
    return None


def _in_release() -> str:
    if RELEASE_READ["dir"] is not None:
        return f" in release {RELEASE_READ['dir']}"
    return f" under {WRITING['to']}" if WRITING["to"] is not None else ""


def where(exc: BaseException) -> str:
    """file:line of the innermost frame in corpuspipe or flows (for a bug report; no values)."""
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "corpuspipe" in f.filename or "/flows/" in f.filename]
    if not frames:
        return ""
    f = frames[-1]
    parts = Path(f.filename).parts
    short = "/".join(parts[parts.index("corpuspipe"):] if "corpuspipe" in parts else parts[-2:])
    return f" at {short}:{f.lineno}"
