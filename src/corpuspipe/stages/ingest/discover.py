"""Finding the raw files: every candidate under the raw root, with its size, and a quarantine
entry with a reason for every entry that is not listed.

* A name that is not valid UTF-8 is listed as its bytes with ``\\xNN`` escapes and a literal
  backslash as two (a lossless, JSON/Parquet-safe form, one name per file);
  :func:`resolve_path` maps it back and its essays are flagged ``non_utf8_path``.  Hidden files
  and directories (leading dot), links out of the raw root, non-regular files and unmatched
  extensions are not listed but quarantined with a reason.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import re
import stat
from functools import lru_cache
from pathlib import Path

from corpuspipe.stages.ingest.config import IngestConfig
from corpuspipe.core.records import QuarantineEntry


def _safe_name(rel: str) -> str:
    """A UTF-8-clean, reversible form of an fsdecoded relative path: a byte that is not UTF-8
    becomes ``\\xNN`` and a literal backslash ``\\\\``, so every stored name has exactly one file.
    Issue 24 #12: without the second rule the raw name ``bad\\xff\\xfename.txt`` (bytes FF FE)
    and a file literally named ``bad\\xff\\xfename.txt`` got the same name: the literal one was
    read twice, the raw one never, and the release refused its duplicate doc_ids.  A name without
    a backslash that is valid UTF-8 (all names, nearly always) is stored as it is."""
    raw = os.fsencode(rel)
    if b"\\" not in raw:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return raw.replace(b"\\", b"\\\\").decode("utf-8", errors="backslashreplace")


_ESCAPE = re.compile(rb"\\(\\|x[0-9a-f]{2})")


def _name_bytes(rel_path: str) -> bytes:
    """Inverse of :func:`_safe_name`, as bytes."""
    data = rel_path.encode("utf-8")
    if b"\\" not in data:
        return data
    return _ESCAPE.sub(lambda m: b"\\" if m.group(1) == b"\\" else bytes((int(m.group(1)[1:], 16),)), data)


def resolve_path(raw_root: Path, rel_path: str) -> Path:
    """The file on disk that a stored (``_safe_name``) relative path names."""
    if "\\" not in rel_path:
        return Path(raw_root) / rel_path
    return Path(os.fsdecode(os.fsencode(raw_root) + b"/" + _name_bytes(rel_path)))


def non_utf8(rel_path: str) -> bool:
    try:
        _name_bytes(rel_path).decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _matches(rel: str, globs: tuple[str, ...]) -> bool:
    low = rel.lower()
    for g in globs:
        g = g.lower()
        if fnmatch.fnmatchcase(low, g) or (g.startswith("**/") and fnmatch.fnmatchcase(low, g[3:])):
            return True
    return False


def discover_sources(raw_root: Path, cfg: IngestConfig) -> tuple[list[str], list[QuarantineEntry]]:
    """:func:`discover_sized` without the sizes."""
    sized, quarantine = discover_sized(raw_root, cfg)
    return [rel for rel, _n in sized], quarantine


def discover_sized(raw_root: Path, cfg: IngestConfig) -> tuple[list[tuple[str, int]], list[QuarantineEntry]]:
    """Recursive; returns sorted POSIX paths relative to raw_root of candidate files, each with its
    size in bytes from the same ``stat`` (a second stat per file was ~0.8 s of the 100 MB crawl's
    unchanged re-run), plus a
    quarantine entry (with a reason) for every entry that is not listed:

    * ``hidden``: a name with a leading dot (one row for a hidden directory, not its files);
    * ``symlink_outside_root``: a link whose target resolves outside the raw root (unless
      ``follow_external_symlinks``); ``broken_symlink``, ``symlink_loop`` (a link to itself or
      a directory link back to one of its ancestors), ``symlink_duplicate`` (a second way into
      an already listed directory: listing it twice would ingest the same files twice);
    * ``not_a_regular_file``: FIFO, socket, device (opening a FIFO would block the build);
    * ``unsupported_extension``: no include glob matches;
    * ``unreadable``/``unreadable_dir``: no permission or an I/O error.
    """
    raw_root = Path(raw_root)
    found: list[tuple[str, int]] = []
    quarantine: list[QuarantineEntry] = []
    try:
        root_st = os.stat(raw_root)
    except OSError as exc:
        return [], [QuarantineEntry(".", "unreadable_dir", f"{type(exc).__name__}: {exc.strerror}")]
    real_root = os.path.realpath(raw_root)
    seen_dirs = {(root_st.st_dev, root_st.st_ino)}
    stack: list[tuple[str, str, frozenset[tuple[int, int]]]] = [
        (os.fspath(raw_root), "", frozenset(seen_dirs))
    ]
    while stack:
        abs_dir, rel_dir, ancestors = stack.pop()
        try:
            with os.scandir(abs_dir) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            quarantine.append(QuarantineEntry(_safe_name(rel_dir or "."), "unreadable_dir", exc.strerror or ""))
            continue
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            safe = _safe_name(rel)
            st = _stat_listed(entry, safe, cfg, real_root)
            if isinstance(st, QuarantineEntry):
                quarantine.append(st)
            elif stat.S_ISDIR(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if key in ancestors:
                    quarantine.append(
                        QuarantineEntry(safe, "symlink_loop", f"links back to {_safe_name(_relative(entry.path, real_root))}")
                    )
                elif key in seen_dirs:
                    quarantine.append(QuarantineEntry(safe, "symlink_duplicate", "directory already listed"))
                else:
                    seen_dirs.add(key)
                    stack.append((entry.path, rel, ancestors | {key}))
            elif (why := _not_listed_file(entry, rel, safe, st, cfg)) is not None:
                quarantine.append(why)
            else:
                found.append((safe, st.st_size))
    return sorted(found), sorted(quarantine, key=lambda q: (q.path, q.reason))


def _stat_listed(entry: os.DirEntry, safe: str, cfg: IngestConfig, real_root: str) -> os.stat_result | QuarantineEntry:
    """The entry's stat (links followed), or why it is not listed: hidden, a broken or looping
    link, a link out of the raw root."""
    if entry.name.startswith("."):
        return QuarantineEntry(safe, "hidden", "name starts with a dot")
    try:
        st = os.stat(entry.path)  # follows symlinks
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return QuarantineEntry(safe, "symlink_loop", "symlink resolves to itself")
        if entry.is_symlink():
            return QuarantineEntry(safe, "broken_symlink", exc.strerror or "")
        return QuarantineEntry(safe, "unreadable", exc.strerror or "")
    if (
        not cfg.follow_external_symlinks
        and entry.is_symlink()
        and not _within(os.path.realpath(entry.path), real_root)
    ):
        # The target is not named: the detail goes into the release.
        return QuarantineEntry(safe, "symlink_outside_root", "target is outside the raw root")
    return st


def _not_listed_file(entry: os.DirEntry, rel: str, safe: str, st: os.stat_result,
                     cfg: IngestConfig) -> QuarantineEntry | None:
    """Why an entry that is not a directory is not listed (a FIFO, socket or device; no include
    glob matches; no read permission), or None: it is listed."""
    if not stat.S_ISREG(st.st_mode):
        return QuarantineEntry(safe, "not_a_regular_file", file_kind(st.st_mode))
    if not _matches(rel, cfg.include_globs):
        ext = os.path.splitext(entry.name)[1]
        detail = f"{_safe_name(ext)!r} matches no include glob" if ext else "no extension matches an include glob"
        return QuarantineEntry(safe, "unsupported_extension", detail, bytes=st.st_size)
    if not os.access(entry.path, os.R_OK):
        return QuarantineEntry(safe, "unreadable", "no read permission", bytes=st.st_size)
    return None


def _within(real: str, real_root: str) -> bool:
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def _relative(path: str, real_root: str) -> str:
    real = os.path.realpath(path)
    return os.path.relpath(real, real_root) if _within(real, real_root) else "outside the raw root"




def inside_root(path: Path, root: Path) -> bool:
    return _within(os.path.realpath(path), _realpath(os.fspath(root)))


@lru_cache(maxsize=64)
def _realpath(root: str) -> str:
    """The raw root's real path, once per build, not once per file (3 % of ingest's time on the
    crawl bench went to resolving the same root for every one of its 14,601 files)."""
    return os.path.realpath(root)


def file_kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"), (stat.S_ISDIR, "directory"),
    ):  # fmt: skip
        if test(mode):
            return name
    return "not a regular file"
