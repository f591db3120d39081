"""Ingestion: find raw files, decode them, split them into essays with lossless header edits.

Contract with the rest of the pipeline:

* Text files (``.txt``, ``.md``): the decoded file is partitioned into essays; essay ``i``
  owns ``decoded[rs:re]`` and the ranges tile the whole file, so
  ``"".join(rebuild_raw(e.body.text, e.body.edits) for e in essays) == decoded``.  Offsets
  are into the *decoded* text; a UTF-8 BOM is not part of it (encoding ``utf-8-sig``), nor is
  a UTF-16/32 BOM.
* JSON Lines crawler exports: every good record is one essay, ``essay_index`` is its index
  among the *good* records (0, 1, 2, ... like text files), and its raw offsets refer to the
  record's decoded text value (``base=0``), not to the JSONL file.  Bad lines are quarantined
  with their 1-based line number; the other records proceed.
* Crawl text is repaired before it is split (:mod:`crawltext`, issue 24): CR/CRLF/U+2028-9 line
  ends, invisible format characters and HTML entities/tags become LF, nothing and their text, as
  edits of stage ``ingest``; the splitter's spans over the repaired text are mapped back to the
  decoded text, so the partition above still holds.
* A file whose encoding changes midway (pages concatenated) is decoded segment by segment
  (:func:`decode_file`); the encoding names each segment (``mixed:utf-8@0,gb18030@5120``), the
  decoded text is the decoded segments joined, and a segment no encoding fits is left out of it
  and quarantined alone (``undecodable`` with its bytes and lines) while the rest is released.
* Non-body lines (teaser, ``第X篇`` header, title line, repeated title, byline, leading and
  trailing blank lines) are removed as edits with stage ``ingest``.  Site lines (``時間:``,
  ``導語:``, breadcrumbs, ``[来源：…]``) are left for the watermark stage.
* Big files stream (issue 11): a text file's essays come one at a time from the splitter
  (:func:`iter_file`), so the pipeline writes them row group by row group; a strict UTF-8 file
  over 16 MB is read and decoded in chunks.  Pass 0 on a 200 MB compilation
  (``bench/bench_ingest_bigfile.py``): peak RSS 559 MB (165 MB of it the imported libraries;
  134 MB the decoded text) against 1,358 MB with the whole list of essays, same CPU (31 s).
  A failure inside a file quarantines it (``error``); only if some of its essays were already
  handed on (a file bigger than a row group) do those stay, and the entry says after which.
* Essays shorter than ``min_essay_chars`` (non-space characters) are kept and flagged
  ``short``: dropping them here would break the partition of the file; the release decides.
* A name that is not valid UTF-8 is listed as its bytes with ``\\xNN`` escapes and a literal
  backslash as two (a lossless, JSON/Parquet-safe form, one name per file);
  :func:`resolve_path` maps it back and its essays are flagged ``non_utf8_path``.  Hidden files
  and directories (leading dot), links out of the raw root, non-regular files and unmatched
  extensions are not listed but quarantined with a reason.
"""

from __future__ import annotations

import codecs
import errno
import fnmatch
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from charset_normalizer import from_bytes

from corpuspipe.stages.ingest import crawltext
from corpuspipe.stages.ingest.mojibake import find_mojibake_repairs, mojibake_evidence, repair_string
from corpuspipe.stages.ingest.split import analyse_essay, clean_title, iter_split, split_lines
from corpuspipe.core.config import IngestConfig
from corpuspipe.core.edits import Replacement, TrackedText
from corpuspipe.core.records import Essay, QuarantineEntry, Shard, SourceInfo

STAGE = "ingest"

__all__ = ["discover_sources", "discover_sized", "ingest_file", "decode_bytes", "decode_file", "DecodeRejected", "Dropped",
           "resolve_path", "STAGE"]

_BOMS: tuple[tuple[bytes, str, str], ...] = (
    (b"\xff\xfe\x00\x00", "utf-32-le", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be", "utf-32-be"),
    (b"\xef\xbb\xbf", "utf-8", "utf-8-sig"),
    (b"\xff\xfe", "utf-16-le", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be", "utf-16-be"),
)
_BINARY_MAGIC: tuple[bytes, ...] = (
    b"\x89PNG", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"%PDF", b"PK\x03\x04", b"\x1f\x8b",
    b"BM", b"RIFF", b"\x7fELF", b"II*\x00", b"MM\x00*", b"7z\xbc\xaf", b"Rar!", b"\xd0\xcf\x11\xe0",
)  # fmt: skip
# Codecs charset-normalizer may name, decoded with their superset so rare characters survive.
_SUPERSET = {"gb2312": "gb18030", "gbk": "gb18030", "big5": "cp950"}
_CJK_CODECS = ("gb18030", "big5", "cp950", "big5hkscs", "utf_16", "utf_32")
_MAX_CJK_CHAOS = 0.2
_SURROGATE = re.compile("[\ud800-\udfff]")


class DecodeRejected(Exception):
    """The bytes are not usable text; ``reason`` is the quarantine code."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# -- discovery ---------------------------------------------------------------------------


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


def _non_utf8(rel_path: str) -> bool:
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
            if entry.name.startswith("."):
                quarantine.append(QuarantineEntry(safe, "hidden", "name starts with a dot"))
                continue
            try:
                st = os.stat(entry.path)  # follows symlinks
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    quarantine.append(QuarantineEntry(safe, "symlink_loop", "symlink resolves to itself"))
                elif entry.is_symlink():
                    quarantine.append(QuarantineEntry(safe, "broken_symlink", exc.strerror or ""))
                else:
                    quarantine.append(QuarantineEntry(safe, "unreadable", exc.strerror or ""))
                continue
            if (
                not cfg.follow_external_symlinks
                and entry.is_symlink()
                and not _within(os.path.realpath(entry.path), real_root)
            ):
                # The target is not named: the detail goes into the release.
                quarantine.append(QuarantineEntry(safe, "symlink_outside_root", "target is outside the raw root"))
                continue
            if stat.S_ISDIR(st.st_mode):
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
                continue
            if not stat.S_ISREG(st.st_mode):
                quarantine.append(QuarantineEntry(safe, "not_a_regular_file", _file_kind(st.st_mode)))
                continue
            if not _matches(rel, cfg.include_globs):
                ext = os.path.splitext(entry.name)[1]
                detail = f"{_safe_name(ext)!r} matches no include glob" if ext else "no extension matches an include glob"
                quarantine.append(QuarantineEntry(safe, "unsupported_extension", detail, bytes=st.st_size))
                continue
            if not os.access(entry.path, os.R_OK):
                quarantine.append(QuarantineEntry(safe, "unreadable", "no read permission", bytes=st.st_size))
                continue
            found.append((safe, st.st_size))
    return sorted(found), sorted(quarantine, key=lambda q: (q.path, q.reason))


def _within(real: str, real_root: str) -> bool:
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def _relative(path: str, real_root: str) -> str:
    real = os.path.realpath(path)
    return os.path.relpath(real, real_root) if _within(real, real_root) else "outside the raw root"


# -- decoding ----------------------------------------------------------------------------


def _longest_line(data: bytes | str, limit: int | None = None) -> int:
    """Length of the longest line, without splitting (a split copies a 200 MB file once more).
    Over ``limit`` with a CR in the data, lines are measured again with CR as a line end too: a
    file with old Mac line endings is one "line" by LF alone (issue 24 #8), and ingest turns its
    CRs into line breaks."""
    nl = b"\n" if isinstance(data, bytes) else "\n"
    longest = pos = 0
    while True:
        end = data.find(nl, pos)
        if end < 0:
            longest = max(longest, len(data) - pos)
            break
        longest = max(longest, end - pos)
        pos = end + 1
    if limit is not None and longest > limit and (b"\r" if isinstance(data, bytes) else "\r") in data:
        brk = re.compile(rb"[^\r\n]*" if isinstance(data, bytes) else r"[^\r\n]*")
        longest = max((m.end() - m.start() for m in brk.finditer(data)), default=0)
    return longest


# Strict candidates after UTF-8, in order of preference on a tie.  Plain Big5 first: cp950
# decodes the same bytes except a few punctuation marks, which it maps to math symbols
# (A241 -> U+2215 instead of the full-width ／ Chinese text means); cp950 (Microsoft's
# extensions) only when Big5 fails, then big5hkscs (Hong Kong characters).
_STRICT_CJK = ("gb18030", "big5", "cp950", "big5hkscs")
# Never in prose: C0/C1 controls other than whitespace, U+FFFD, noncharacters.
_NOT_TEXT = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\ufffd\ufffe\uffff]")
_SAMPLE_CHARS = 64 * 1024  # per slice: the verdict never needs the whole of a big file
_MIN_COMMON = 0.6


@lru_cache(maxsize=1)
def _common_chars() -> np.ndarray:
    """A lookup table over the BMP: True for characters frequent in real Chinese text, i.e.
    GB2312 level 1 (the 3,755 most frequent Simplified characters), Big5's 5,401 frequent
    characters (lead bytes A4-C6) and CJK punctuation.  Real text scores >= 0.9 of its
    non-ASCII characters here; GBK bytes read as Big5 (or the reverse) land on rare
    characters and score far lower, which settles the GB18030/Big5 ambiguity (both codecs
    accept most Chinese byte strings).  A numpy table: a regex class of these 9k characters
    counted at 4 MB/s and made decoding slower than charset-normalizer.
    """
    chars: set[str] = set()
    for lead in range(0xB0, 0xD8):
        for trail in range(0xA1, 0xFF):
            try:
                chars.add(bytes((lead, trail)).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    for lead in range(0xA4, 0xC7):
        for trail in (*range(0x40, 0x7F), *range(0xA1, 0xFF)):
            try:
                chars.add(bytes((lead, trail)).decode("big5"))
            except UnicodeDecodeError:
                continue
    chars.update(chr(c) for c in range(0x3000, 0x3040))
    chars.update(chr(c) for c in range(0xFF01, 0xFF5F))
    chars.update("\u2014\u2026\u2018\u2019\u201c\u201d\u00b7\u2022")
    table = np.zeros(0x110000, dtype=bool)
    table[[ord(c) for c in chars]] = True
    return table


def _sample(text: str) -> str:
    if len(text) <= 3 * _SAMPLE_CHARS:
        return text
    mid = len(text) // 2
    return text[:_SAMPLE_CHARS] + text[mid : mid + _SAMPLE_CHARS] + text[-_SAMPLE_CHARS:]


@dataclass
class _Candidate:
    codec: str
    text: str
    not_text: bool  # controls, U+FFFD, noncharacters: never in real text
    pua: float  # share of private-use characters: a trace of mojibake in real text, a flood in a wrong decoding
    common: float  # share of the sample's non-ASCII characters that are frequent

    @property
    def plausible(self) -> bool:
        return not self.not_text and self.common >= _MIN_COMMON and self.pua <= 0.001

    @property
    def text_like(self) -> bool:
        """Good enough to keep when nothing better fits: a valid file is never quarantined."""
        return not self.not_text and self.pua <= 0.01


def _candidate(codec: str, text: str) -> _Candidate:
    """Scores from a sample of at most 192k characters (numpy over code points: regex
    classes and findall over a wrong decoding's many private-use hits ran at 4-12 MB/s)."""
    cps = np.frombuffer(_sample(text).encode("utf-32-le"), dtype=np.uint32)
    non_ascii = int(np.count_nonzero(cps >= 0x80))
    common = int(np.count_nonzero(_common_chars()[cps])) / non_ascii if non_ascii else 1.0
    pua = int(np.count_nonzero((cps >= 0xE000) & (cps <= 0xF8FF))) / max(len(cps), 1)
    return _Candidate(codec, text, _NOT_TEXT.search(text) is not None, pua, common)


_PREFIX_BYTES = 64 * 1024


def _prefix_score(data: bytes, codec: str) -> float | None:
    """Frequent-character share of the first 64 KB decoded with codec; None if it fails there
    (then the whole file fails too).  Orders the full decodes so that the likely codec is
    decoded first and usually alone: GB18030 accepts most Big5 bytes, and decoding a Big5
    file fully with both cost twice the time."""
    try:
        head = codecs.getincrementaldecoder(codec)("strict").decode(data[:_PREFIX_BYTES], final=len(data) <= _PREFIX_BYTES)
    except UnicodeDecodeError:
        return None
    return _candidate(codec, head).common


def _strict_cjk(data: bytes) -> Iterator[_Candidate]:
    """Strict decodings, the likeliest first (by a prefix), extensions only when plain Big5 fails."""
    scored = [(score, -k, codec) for k, codec in enumerate(_STRICT_CJK) if (score := _prefix_score(data, codec)) is not None]
    big5_ok = False
    for _, _, codec in sorted(scored, reverse=True):
        if codec in ("cp950", "big5hkscs") and big5_ok:
            continue
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        big5_ok = big5_ok or codec in ("big5", "cp950")
        yield _candidate(codec, text)


def decode_bytes(data: bytes) -> tuple[str, str]:
    """(text, encoding) of :func:`decode_file` (a file of several encodings names its segments, and
    any it had to drop, in the encoding: ``mixed:utf-8@0,gb18030@5120``).  Raises DecodeRejected."""
    text, encoding, _dropped = decode_file(data)
    return text, encoding


@dataclass(frozen=True)
class Dropped:
    """A segment of a file no encoding fits: left out of the decoded text, quarantined alone."""

    start: int  # bytes
    end: int
    first_line: int  # 1-based
    last_line: int


def decode_file(data: bytes, segments: bool = True) -> tuple[str, str, list[Dropped]]:
    """(text, encoding, dropped segments).  Raises DecodeRejected.

    Order: a BOM (UTF-8, UTF-16, UTF-32); strict UTF-8; nearly-UTF-8; strict GB18030 and
    Big5, the one whose first 64 KB has more frequent characters decoded first, accepted when
    plausible (no controls, few private-use characters, mostly frequent characters);
    charset-normalizer only when no strict decoding is plausible, and a text-like strict
    decoding still beats "undecodable".  charset-normalizer first had answered "no encoding
    fits" for valid GB18030 files of 200-700 bytes (real report openings with a zero-width
    space: 28 of 3,516 real-text windows) and dominated the time: ``bench/bench_decode.py``
    (4 MB of real reports, same loaded machine, back to back) measured 18-27 MB/s for GB18030
    and 14 MB/s for Big5 with it first, 77 and 81-93 MB/s now.
    """
    if not data or data.isspace():  # not data.strip(): that copied a 200 MB file once more
        raise DecodeRejected("empty", "no bytes" if not data else "only whitespace")
    for bom, codec, name in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(codec), name, []
            except UnicodeDecodeError as exc:
                raise DecodeRejected("undecodable", f"{name} BOM but {exc.reason} at byte {exc.start}") from exc
    if data.startswith(_BINARY_MAGIC) or b"\x00" in data:
        raise DecodeRejected("binary", "NUL bytes" if b"\x00" in data else f"magic {data[:4]!r}")
    try:
        return data.decode("utf-8"), "utf-8", []
    except UnicodeDecodeError:
        pass
    # Nearly valid UTF-8 (a truncated last character, a stray byte): keep it as UTF-8.
    bad = _utf8_errors(data, limit=3)
    if bad <= 3:
        lenient = data.decode("utf-8", errors="replace")
        non_ascii = len(lenient) - len(data.decode("ascii", errors="ignore"))
        if non_ascii >= 100 * bad:
            return lenient, "utf-8", []
        del lenient
    candidates: list[_Candidate] = []
    for cand in _strict_cjk(data):
        if cand.plausible:
            return cand.text, cand.codec, []
        candidates.append(cand)
    mixed = _decode_mixed(data) if segments else None
    if mixed is not None:
        return mixed
    found = _charset_normalizer(data)
    if found is not None:
        return (*found, [])
    text_like = [c for c in candidates if c.text_like]
    if text_like:
        best = max(text_like, key=lambda c: c.common)
        return best.text, best.codec, []
    if segments:  # last: line by line, so that a stretch of garbage does not take the whole file along
        parts = _decode_region(data, 0, len(data), 1, data.count(b"\n") + 1, whole=False)
        if any(codec for codec, *_ in parts):
            return _joined(parts, len(data))
    raise DecodeRejected("undecodable", "no encoding fits (strict UTF-8, GB18030, Big5, charset-normalizer)")


_MIN_UTF8_SEGMENT = 8  # non-ASCII characters: a GBK or Big5 line is valid UTF-8 by chance only when short
_MAX_SEGMENTS = 64  # more changes of encoding than this is not a few concatenated pages


def _decode_mixed(data: bytes) -> tuple[str, str, list[Dropped]] | None:
    """A file whose encoding changes midway (issue 24 #11: crawled pages concatenated, one UTF-8,
    the next GBK), decoded segment by segment, or None when it is not one.

    Tried only when neither UTF-8 nor one strict GB18030/Big5 decoding fits the whole file (then
    the file used to be quarantined whole as ``undecodable``).  Lines are the unit (a line break is
    byte 0x0A in all of these encodings, never inside a character): a line is ASCII, valid UTF-8,
    or not; runs of UTF-8 lines holding at least 8 non-ASCII characters of plausible Chinese text
    are UTF-8 segments, everything between them one other segment, decoded alone like a file
    (:func:`decode_file`).  A segment no encoding fits is dropped from the text and reported
    (:class:`Dropped`) so that only it is quarantined.  The encoding names every segment by the
    byte it starts at: ``mixed:utf-8@0,gb18030@5120,undecodable@9000``.
    """
    kinds: list[tuple[str, int, int]] = []  # (u | x | a, start, end) per line
    pos, n = 0, len(data)
    while pos < n:
        e = data.find(b"\n", pos)
        e = n if e < 0 else e + 1
        line = data[pos:e]
        if line.isascii():
            kind = "a"
        else:
            try:
                line.decode("utf-8")
                kind = "u"
            except UnicodeDecodeError:
                kind = "x"
        kinds.append((kind, pos, e))
        pos = e
    if not any(k == "u" for k, _, _ in kinds) or not any(k == "x" for k, _, _ in kinds):
        return None
    # runs of lines: ASCII lines join the run they follow (the first ones the first run)
    runs: list[list] = []  # [kind, start, end, first line, last line]
    for i, (kind, a, b) in enumerate(kinds, start=1):
        if runs and (kind == "a" or kind == runs[-1][0] or runs[-1][0] == "a"):
            if runs[-1][0] == "a":
                runs[-1][0] = kind
            runs[-1][2], runs[-1][4] = b, i
        else:
            runs.append([kind, a, b, i, i])
    for r in runs:  # a UTF-8 run must look like Chinese text, else it is a chance decoding
        if r[0] == "u":
            text = data[r[1] : r[2]].decode("utf-8")
            cand = _candidate("utf-8", text)
            if len(text) - len(text.encode("ascii", "ignore")) < _MIN_UTF8_SEGMENT or not cand.plausible:
                r[0] = "x"
    merged: list[list] = []
    for r in runs:
        if merged and merged[-1][0] == r[0]:
            merged[-1][2], merged[-1][4] = r[2], r[4]
        else:
            merged.append(list(r))
    if len(merged) < 2 or len(merged) > _MAX_SEGMENTS or not any(r[0] == "u" for r in merged):
        return None
    parts: list[tuple[str | None, str, int, int, int]] = []  # (codec or None, text, start, first, last)
    for kind, a, b, first, last in merged:
        if kind == "u":
            parts.append(("utf-8", data[a:b].decode("utf-8"), a, first, last))
        else:
            parts.extend(_decode_region(data, a, b, first, last))
    if not any(codec for codec, *_ in parts):
        return None
    return _joined(parts, n)


def _joined(parts: list[tuple[str | None, str, int, int, int]], n: int) -> tuple[str, str, list[Dropped]]:
    """The decoded segments joined, the encoding naming each, the dropped ones."""
    names = [f"{codec or 'undecodable'}@{a}" for codec, _t, a, _f, _l in parts]
    ends = [a for _c, _t, a, _f, _l in parts[1:]] + [n]
    dropped = [Dropped(a, e, f, l) for (codec, _t, a, f, l), e in zip(parts, ends) if codec is None]
    return "".join(t for _c, t, *_ in parts), "mixed:" + ",".join(names), dropped


def _lines(d: Dropped) -> str:
    return f"line {d.first_line}" if d.first_line == d.last_line else f"lines {d.first_line}-{d.last_line}"


def _decode_region(
    data: bytes, a: int, b: int, first: int, last: int, whole: bool = True
) -> list[tuple[str | None, str, int, int, int]]:
    """A stretch between UTF-8 segments (or, ``whole=False``, a file nothing else decodes): one
    plausible strict GB18030/Big5 decoding of it, else line by line -- a line takes the codec of the
    line before when it is plausible Chinese in it (short lines would flip between codecs), else
    the first of :data:`_STRICT_CJK` in which it is; ASCII lines go with the line before, or after
    when that one is dropped -- and each run of lines is decoded with its codec, a run no codec fits
    dropped (None).  Two pages side by side, one Big5 and one GBK, or a page and a run of garbage
    bytes, are two runs; one run for the whole stretch is decoded like a file."""
    seg = data[a:b]
    if whole:
        for cand in _strict_cjk(seg):
            if cand.plausible:
                return [(cand.codec, cand.text, a, first, last)]
    lines: list[list] = []  # [codec (None: none fits, "": ASCII), start, end, first line, last line]
    pos, lineno, prev = a, first, None
    while pos < b:
        e = data.find(b"\n", pos, b)
        e = b if e < 0 else e + 1
        line = data[pos:e]
        if line.isascii():
            codec = ""
        elif prev is not None and _plausible_in(line, prev):
            codec = prev
        else:
            codec = next((c for c in _STRICT_CJK if _plausible_in(line, c)), None)
        lines.append([codec, pos, e, lineno, lineno])
        prev = codec or prev
        pos, lineno = e, lineno + 1
    # ASCII lines go with the run before them, or after them when the one before is dropped
    for i, ln in enumerate(lines):
        if ln[0] == "":
            before = lines[i - 1][0] if i else None
            after = next((x[0] for x in lines[i + 1 :] if x[0] != ""), None)
            ln[0] = before if before else after if after else "ascii"
    runs: list[list] = []
    for ln in lines:
        if runs and runs[-1][0] == ln[0]:
            runs[-1][2], runs[-1][4] = ln[2], ln[4]
        else:
            runs.append(ln)
    if len(runs) == 1:
        if not whole:
            return [(runs[0][0], seg.decode(runs[0][0]) if runs[0][0] else "", a, first, last)]
        try:
            text, codec, _ = decode_file(seg, segments=False)
        except DecodeRejected:
            return [(None, "", a, first, last)]
        return [(codec, text, a, first, last)]
    return [(c, data[s:e].decode(c) if c else "", s, f, l) for c, s, e, f, l in runs]


def _plausible_in(line: bytes, codec: str) -> bool:
    try:
        return _candidate(codec, line.decode(codec)).plausible
    except UnicodeDecodeError:
        return False


def _utf8_errors(data: bytes, limit: int) -> int:
    """How many invalid sequences ``errors="replace"`` would replace, counting past ``limit``
    only to ``limit + 1``.  A GB18030 file has one per character, and the replace handler
    made the old full lenient decode the slowest step of decoding one."""
    head = _utf8_errors_from(memoryview(data)[:_PREFIX_BYTES], limit + 1) if len(data) > _PREFIX_BYTES else 0
    if head > limit + 1:  # (+1: the cut may split the prefix's last character)
        return head
    return _utf8_errors_from(memoryview(data), limit)


def _utf8_errors_from(view: memoryview, limit: int) -> int:
    pos = count = 0
    while count <= limit:
        try:
            codecs.utf_8_decode(view[pos:], "strict", True)
            return count
        except UnicodeDecodeError as exc:
            count += 1
            pos += exc.end
    return count


def _charset_normalizer(data: bytes) -> tuple[str, str] | None:
    # Chinese codecs first (2.7x faster than the full search); everything else if they misfit.
    best = from_bytes(data, cp_isolation=list(_CJK_CODECS)).best()
    if best is None or best.chaos > _MAX_CJK_CHAOS:
        best = from_bytes(data).best()
    if best is None:
        return None
    codec = _SUPERSET.get(best.encoding, best.encoding)
    try:
        return data.decode(codec), codec
    except (UnicodeDecodeError, LookupError):
        try:
            return data.decode(best.encoding), best.encoding
        except (UnicodeDecodeError, LookupError):
            return None


# -- essays --------------------------------------------------------------------------------


@dataclass
class _FileInput:
    rel_path: str
    sha256: str
    size: int


def _apply_repairs(essay: Essay, pre: list[Replacement]) -> None:
    """Record the crawl-text repairs of the essay's range (:mod:`crawltext`: found on the whole text
    before the split, so the splitter's removals are in the repaired text's coordinates) and flag
    the essay by their kinds."""
    if not pre:
        return
    essay.body.apply(pre, STAGE)
    rules = set()
    for r in pre:
        essay.bump(f"ingest.{r.rule}")
        rules.add(r.rule)
    for f in crawltext.flags_for(rules):
        essay.add_flag(f)


def _finish_essay(essay: Essay, cfg: IngestConfig, removals: list[Replacement], flags: list[str]) -> Essay:
    """Record removals, repair reversible mojibake, flag the rest."""
    if removals:
        essay.body.apply(removals, STAGE)
        for r in removals:
            essay.bump(f"ingest.{r.rule}")
    repairs = find_mojibake_repairs(essay.body.text)
    if repairs:
        essay.body.apply(repairs, STAGE)
        essay.bump("ingest.mojibake_repair", len(repairs))
        essay.add_flag("mojibake_repaired")  # repaired, but a damaged copy: never a cluster's representative
    if crawltext.html_residue(essay.body.text):
        essay.add_flag("html_residue")
    if essay.title:
        essay.title = repair_string(essay.title)
        stripped = crawltext.repair_string(essay.title)
        if stripped != essay.title:
            # titles are metadata, not tracked text: repair and count the characters dropped (invisible
            # ones, markup; the raw title stays in the source range)
            essay.bump("ingest.title_controls", max(len(essay.title) - len(stripped), 1))
            essay.title = stripped.strip() or None
    evidence = mojibake_evidence(essay.body.text)
    if evidence:
        essay.add_flag("mojibake")
        for k, v in evidence.items():
            essay.bump(f"ingest.mojibake.{k}", v)
    if sum(map(len, essay.body.text.split())) < cfg.min_essay_chars:
        essay.add_flag("short")
    for f in flags:
        essay.add_flag(f)
    return essay


def _text_essays(text: str, src: _FileInput, cfg: IngestConfig, flags: list[str]) -> Iterator[Essay]:
    """The file's essays one at a time, as the splitter finds them (:func:`iter_split`): a
    200 MB compilation never has its ~4,000 essays, nor all its lines, in memory at once."""
    fixes = crawltext.find_repairs(text)
    view = text if fixes is None else fixes.text  # what the splitter sees: LF text, no markup or invisibles
    spans = iter_split(view, cfg.max_title_chars, cfg.min_essay_chars, cfg.max_long_title_chars)
    for i, span in enumerate(spans):
        start, end = (span.start, span.end) if fixes is None else (fixes.to_raw(span.start), fixes.to_raw(span.end))
        body = TrackedText(text[start:end], base=start)
        essay = Essay(
            source_path=src.rel_path,
            source_sha256=src.sha256,
            essay_index=i,
            body=body,
            title=span.title,
            author=span.author,
            date=span.date,
        )
        removals = [
            Replacement(r.start - span.start, r.end - span.start, "", r.rule) for r in span.removals if r.end > r.start
        ]
        if fixes is not None:
            _apply_repairs(essay, fixes.inside(start, end))
            if essay.body.text != view[span.start : span.end]:  # never seen; quarantines the file as an error
                raise ValueError("crawl-text repairs and the split disagree")
        yield _finish_essay(essay, cfg, removals, flags)


def _error(exc: BaseException) -> str:
    """A quarantine detail for an unexpected failure: the exception's type, never its message
    (messages can quote the input, e.g. json's or a codec's)."""
    return f"error: {type(exc).__name__}"


def _field_names(keys: Iterable[str], limit: int = 20) -> str:
    """Record keys for a quarantine detail: sorted, each cut to 40 printable characters."""
    names = sorted({"".join(c if c.isprintable() else "?" for c in k[:40]) for k in keys})
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more if names else "(none)"


def _jsonl_essays(
    text: str, src: _FileInput, cfg: IngestConfig, flags: list[str]
) -> tuple[list[Essay], list[QuarantineEntry], int]:
    """One essay per good record.  Each line is isolated: any exception while parsing or
    processing it (``json`` raises RecursionError on a line nested 100,000 deep and
    ValueError on an integer of over 4,300 digits) quarantines that line alone.
    """
    essays: list[Essay] = []
    quarantine: list[QuarantineEntry] = []
    blank = 0
    records = 0  # lines that parsed as JSON objects
    fields_seen: set[str] = set()  # keys of the objects that lacked the text field
    field = cfg.jsonl_text_field

    def reject(lineno: int, reason: str, detail: str) -> None:
        quarantine.append(QuarantineEntry(src.rel_path, reason, detail, line=lineno, sha256=src.sha256))

    pos = 0
    lineno = 0
    while pos <= len(text):
        end = text.find("\n", pos)
        if end < 0:
            end = len(text)
        line = text[pos:end]
        pos = end + 1
        lineno += 1
        if not line.strip():
            blank += 1
            continue
        if len(line) > cfg.max_line_chars:
            reject(lineno, "line_too_long", f"{len(line)} chars > {cfg.max_line_chars}")
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            reject(lineno, "bad_json", f"{exc.msg} at column {exc.colno}")
            continue
        except RecursionError as exc:
            reject(lineno, "bad_json", f"{_error(exc)} (nested too deeply)")
            continue
        except Exception as exc:  # ValueError: an integer too long to convert; anything else
            reject(lineno, "bad_json", _error(exc))
            continue
        if not isinstance(record, dict):
            reject(lineno, "bad_json", f"a JSON {type(record).__name__}, not an object")
            continue
        records += 1
        try:
            essay = _jsonl_essay(record, src, cfg, flags, len(essays))
        except _RecordRejected as exc:
            if exc.reason == "missing_text":
                fields_seen.update(record)
            reject(lineno, exc.reason, exc.detail)
            continue
        except Exception as exc:
            reject(lineno, "error", _error(exc))
            continue
        essays.append(essay)
    missing = [q for q in quarantine if q.reason == "missing_text"]
    if not essays and missing and len(missing) == records:
        # Every record lacks the field: most likely the wrong field name.  One row that names
        # the fields found instead of one row per record.
        quarantine = [q for q in quarantine if q.reason != "missing_text"]
        quarantine.append(
            QuarantineEntry(
                src.rel_path,
                "missing_text",
                f'no "{field}" field; fields seen: {_field_names(fields_seen)} (all {records} records)',
                sha256=src.sha256,
            )
        )
    return essays, quarantine, blank


class _RecordRejected(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def _jsonl_essay(record: dict, src: _FileInput, cfg: IngestConfig, flags: list[str], index: int) -> Essay:
    field = cfg.jsonl_text_field
    body_text = record.get(field)
    if not isinstance(body_text, str):
        found = "no" if body_text is None else f"a {type(body_text).__name__}, not a string, in"
        raise _RecordRejected("missing_text", f'{found} "{field}" field; fields seen: {_field_names(record)}')
    if not body_text.strip():
        raise _RecordRejected("empty", f"field {field!r} is blank")
    if _SURROGATE.search(body_text):
        raise _RecordRejected("bad_text", "lone surrogate code points")
    title = record.get(cfg.jsonl_title_field)
    title = clean_title(crawltext.repair_string(title)) if isinstance(title, str) and title.strip() else None
    fixes = crawltext.find_repairs(body_text)
    view = body_text if fixes is None else fixes.text
    lines = split_lines(view)
    span = analyse_essay(
        view, lines, 0, len(lines), cfg.max_title_chars, known_title=title,
        max_long_title_chars=cfg.max_long_title_chars,
    )
    url, crawled = record.get(cfg.jsonl_url_field), record.get(cfg.jsonl_crawled_at_field)
    essay = Essay(
        source_path=src.rel_path,
        source_sha256=src.sha256,
        essay_index=index,
        body=TrackedText(body_text, base=0),
        title=span.title,
        author=span.author,
        date=span.date,
        url=str(url) if url is not None else None,
        crawled_at=str(crawled) if crawled is not None else None,
    )
    if fixes is not None:
        _apply_repairs(essay, fixes.inside(0, len(body_text)))
    removals = [Replacement(r.start, r.end, "", r.rule) for r in span.removals if r.end > r.start]
    return _finish_essay(essay, cfg, removals, flags)


def ingest_file(raw_root: Path, rel_path: str, cfg: IngestConfig) -> Shard:
    """Read, decode, split into essays.  Returns Shard(essays=[...], sources=[SourceInfo(...)], quarantine=[...]).

    A whole file that cannot be used yields no essays and one quarantine entry; a JSONL
    file can also yield essays plus per-line entries.  Never raises (except on
    KeyboardInterrupt/SystemExit): an unexpected failure quarantines the file as
    ``error`` with the exception's type, so one bad file never stops a release.
    (:func:`iter_file` is the streaming form the pipeline uses.)
    """
    shard = Shard()
    try:
        shard.essays = list(iter_file(Path(raw_root), rel_path, cfg, shard))
    except Exception as exc:
        return failed_file(rel_path, exc)
    return shard


def failed_file(rel_path: str, exc: BaseException, released: int = 0, src: SourceInfo | None = None) -> Shard:
    """The Shard for a file whose ingestion raised: one ``error`` entry naming the exception's
    type (never its message, which may quote the input).  ``released``: essays of the file
    already handed on by a streaming reader (a huge file is written group by group, so they
    cannot be taken back); they stay, with ``src`` as their source, and the detail says so."""
    shard = Shard(stats={"ingest.files": 1, "ingest.quarantined_files": 1})
    detail = _error(exc)
    if released:
        detail += f" after essay {released - 1} (the essays before it are released)"
        shard.stats["ingest.essays"] = released
        if src is not None:
            shard.sources.append(SourceInfo(src.path, src.bytes, src.sha256, src.encoding, src.kind, released))
    shard.quarantine.append(QuarantineEntry(rel_path, "error", detail))
    return shard


_CHUNK_BYTES = 16 * 1024 * 1024


def _blank(text: str) -> bool:
    """``not text.strip()`` without the copy: strip() returned a new 134 MB string for a 200 MB
    file ending in a newline (isspace() and strip() agree on what is whitespace)."""
    return not text or text.isspace()


def _read_big_utf8(path: Path, cfg: IngestConfig) -> tuple[str, str, int] | None:
    """(text, sha256, bytes) of a big file that is plain strict UTF-8, read and decoded 16 MB at
    a time, or None when it is anything else (a BOM, binary, invalid UTF-8, whitespace only, a
    line too long): the caller then takes the whole-bytes path, so the answer is exactly
    :func:`decode_bytes`' (strict UTF-8 is its first choice after a BOM).  Whole bytes and
    decoded text at once were 200 MB + 134 MB for the 200 MB file of issue 11; chunks cost the
    decoded pieces and their join (2 x 134 MB) and no 200 MB bytes object."""
    h = hashlib.sha256()
    dec = codecs.getincrementaldecoder("utf-8")("strict")
    pieces: list[str] = []
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK_BYTES):
            if not size and (chunk.startswith(tuple(b for b, _, _ in _BOMS)) or chunk.startswith(_BINARY_MAGIC)):
                return None
            if b"\x00" in chunk:
                return None
            try:
                pieces.append(dec.decode(chunk))
            except UnicodeDecodeError:
                return None
            h.update(chunk)
            size += len(chunk)
    try:
        pieces.append(dec.decode(b"", final=True))
    except UnicodeDecodeError:
        return None
    text = "".join(pieces)
    del pieces
    if _blank(text) or _longest_line(text, cfg.max_line_chars) > cfg.max_line_chars:
        return None
    return text, h.hexdigest(), size


def _inside(path: Path, root: Path) -> bool:
    return _within(os.path.realpath(path), _realpath(os.fspath(root)))


@lru_cache(maxsize=64)
def _realpath(root: str) -> str:
    """The raw root's real path, once per build, not once per file (3 % of ingest's time on the
    crawl bench went to resolving the same root for every one of its 14,601 files)."""
    return os.path.realpath(root)


def iter_file(raw_root: Path, rel_path: str, cfg: IngestConfig, shard: Shard) -> Iterator[Essay]:
    """Yield the file's essays as they are made; ``shard`` receives the file's stats and
    quarantine entries as they happen, and its SourceInfo once the last essay is out.

    May raise: the caller quarantines the file (:func:`failed_file`).  Memory (issue 11): the
    file's bytes are dropped as soon as they are decoded, and the essays come one at a time
    from the streaming splitter, so a 200 MB file holds its decoded text (~2 bytes a Chinese
    character) and the essays its reader has not written yet.
    """
    path = resolve_path(raw_root, rel_path)
    shard.stats["ingest.files"] = 1
    flags = ["non_utf8_path"] if "\\" in rel_path and _non_utf8(rel_path) else []

    def reject(reason: str, detail: str, size: int | None = None, sha: str | None = None) -> None:
        shard.quarantine.append(QuarantineEntry(rel_path, reason, detail, bytes=size, sha256=sha))
        shard.stats["ingest.quarantined_files"] = 1

    try:
        st = os.stat(path)
        if not cfg.follow_external_symlinks and not _inside(path, raw_root):
            return reject("symlink_outside_root", "resolves outside the raw root")
        if not stat.S_ISREG(st.st_mode):
            return reject("not_a_regular_file", _file_kind(st.st_mode))
        size = st.st_size
        if size > cfg.max_file_bytes:
            return reject("too_large", f"{size} bytes > {cfg.max_file_bytes}", size)
        fast = _read_big_utf8(path, cfg) if size > _CHUNK_BYTES else None
        if fast is not None:
            data = b""
        else:
            with open(path, "rb") as fh:
                data = fh.read()
    except PermissionError as exc:
        return reject("unreadable", exc.strerror or "permission denied")
    except OSError as exc:
        reason = "symlink_loop" if exc.errno == errno.ELOOP else "unreadable"
        return reject(reason, f"{type(exc).__name__}: {exc.strerror}")
    is_jsonl = rel_path.lower().endswith((".jsonl", ".ndjson"))
    if fast is not None:
        text, sha, size = fast
        encoding = "utf-8"
        src = _FileInput(rel_path, sha, size)
        shard.stats["ingest.bytes"] = size
    else:
        sha = hashlib.sha256(data).hexdigest()
        src = _FileInput(rel_path, sha, len(data))
        shard.stats["ingest.bytes"] = len(data)
        if not is_jsonl and len(data) > cfg.max_line_chars and _longest_line(data, 4 * cfg.max_line_chars) > 4 * cfg.max_line_chars:
            return reject("line_too_long", f"a line of more than {4 * cfg.max_line_chars} bytes", len(data), sha)
        try:
            text, encoding, dropped = decode_file(data)
        except DecodeRejected as exc:
            return reject(exc.reason, exc.detail, len(data), sha)
        size = len(data)
        for d in dropped:  # only these lines are lost; the rest of the file is released
            shard.quarantine.append(QuarantineEntry(
                rel_path, "undecodable", f"bytes {d.start}-{d.end} ({_lines(d)}) fit no "
                f"encoding; the rest of the file ({encoding}) is released", line=d.first_line,
                bytes=d.end - d.start, sha256=sha))
        if encoding.startswith("mixed:"):
            flags.append("mixed_encoding")
    replaced = (fast is None and "\ufffd" in text and (encoding == "utf-8" or encoding.startswith("mixed:"))
                and b"\xef\xbf\xbd" not in data)
    del data  # the essays hold the text twice (raw and current); the bytes are not needed
    if replaced:
        flags.append("decode_replaced")

    if is_jsonl:
        essays, bad_lines, blank = _jsonl_essays(text, src, cfg, flags)
        shard.quarantine.extend(bad_lines)
        shard.stats["ingest.jsonl_blank_lines"] = blank
        shard.sources.append(SourceInfo(rel_path, size, sha, encoding, "jsonl", len(essays)))
        yield from essays
    else:
        longest = _longest_line(text, cfg.max_line_chars) if fast is None else 0  # the chunked reader checked it
        if longest > cfg.max_line_chars:
            return reject("line_too_long", f"a line of {longest} chars > {cfg.max_line_chars}", size, sha)
        if _blank(text):
            return reject("empty", "only whitespace after decoding", size, sha)
        # listed first and counted as essays go out: a failure midway is reported with the essays
        # already handed on (failed_file)
        source = SourceInfo(rel_path, size, sha, encoding, "text", 0)
        shard.sources.append(source)
        for essay in _text_essays(text, src, cfg, flags):
            source.essays += 1
            yield essay
    shard.stats["ingest.essays"] = shard.sources[-1].essays


def _file_kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"), (stat.S_ISDIR, "directory"),
    ):  # fmt: skip
        if test(mode):
            return name
    return "not a regular file"
