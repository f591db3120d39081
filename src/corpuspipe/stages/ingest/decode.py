"""Decoding a raw file's bytes into text, and naming the encoding.

* A BOM (UTF-8, UTF-16, UTF-32) is not part of the decoded text (encoding ``utf-8-sig``, ...).
* A file whose encoding changes midway (pages concatenated) is decoded segment by segment
  (:func:`decode_file`); the encoding names each segment (``mixed:utf-8@0,gb18030@5120``), the
  decoded text is the decoded segments joined, and a segment no encoding fits is left out of it
  and quarantined alone (``undecodable`` with its bytes and lines) while the rest is released.
* A strict UTF-8 file over 16 MB is read and decoded in chunks (:func:`read_big_utf8`).
"""

from __future__ import annotations

import codecs
import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import numpy as np
from charset_normalizer import from_bytes

from corpuspipe.stages.ingest.config import IngestConfig

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


class DecodeRejected(Exception):
    """The bytes are not usable text; ``reason`` is the quarantine code."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail



def longest_line(data: bytes | str, limit: int | None = None) -> int:
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



CHUNK_BYTES = 16 * 1024 * 1024


def is_blank(text: str) -> bool:
    """``not text.strip()`` without the copy: strip() returned a new 134 MB string for a 200 MB
    file ending in a newline (isspace() and strip() agree on what is whitespace)."""
    return not text or text.isspace()


def read_big_utf8(path: Path, file_bytes: int, cfg: IngestConfig) -> tuple[str, str, int] | None:
    """(text, sha256, bytes) of a big file (``file_bytes`` over :data:`CHUNK_BYTES`) that is plain
    strict UTF-8, read and decoded 16 MB at a time, or None when it is not big or anything else (a
    BOM, binary, invalid UTF-8, whitespace only, a line too long): the caller then takes the
    whole-bytes path, so the answer is exactly
    :func:`decode_bytes`' (strict UTF-8 is its first choice after a BOM).  Whole bytes and
    decoded text at once were 200 MB + 134 MB for the 200 MB file of issue 11; chunks cost the
    decoded pieces and their join (2 x 134 MB) and no 200 MB bytes object."""
    if file_bytes <= CHUNK_BYTES:
        return None
    h = hashlib.sha256()
    dec = codecs.getincrementaldecoder("utf-8")("strict")
    pieces: list[str] = []
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
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
    if is_blank(text) or longest_line(text, cfg.max_line_chars) > cfg.max_line_chars:
        return None
    return text, h.hexdigest(), size
