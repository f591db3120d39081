"""Ingestion of one file: read, decode (:mod:`.decode`), split into essays (:mod:`.split`) with
lossless header edits.  Which files are read, and how a name that is not UTF-8 is stored, is
:mod:`.discover`'s.

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
* A file whose encoding changes midway is decoded segment by segment (:func:`decode_file`); a
  segment no encoding fits is left out of the text and quarantined alone (``undecodable`` with
  its bytes and lines) while the rest is released, flagged ``mixed_encoding``.
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
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from corpuspipe.stages.ingest.config import IngestConfig
from corpuspipe.core.edits import Replacement, TrackedText
from corpuspipe.core.records import Essay, QuarantineEntry, Shard, SourceInfo
from corpuspipe.stages.ingest import crawltext
from corpuspipe.stages.ingest.decode import DecodeRejected, Dropped, decode_file, is_blank, longest_line, read_big_utf8
from corpuspipe.stages.ingest.discover import file_kind, inside_root, non_utf8, resolve_path
from corpuspipe.stages.ingest.headerzone import analyse_essay
from corpuspipe.stages.ingest.lines import split_lines
from corpuspipe.stages.ingest.mojibake import find_mojibake_repairs, mojibake_evidence, repair_string
from corpuspipe.stages.ingest.split import iter_split
from corpuspipe.stages.ingest.titles import clean_title

STAGE = "ingest"

_SURROGATE = re.compile("[\ud800-\udfff]")


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
    flags = ["non_utf8_path"] if "\\" in rel_path and non_utf8(rel_path) else []
    read = _read(path, raw_root, rel_path, cfg, shard)
    if read is None:
        return
    data, fast = read
    del read
    is_jsonl = rel_path.lower().endswith((".jsonl", ".ndjson"))
    decoded = _decoded(rel_path, data, fast, is_jsonl, cfg, shard, flags)
    del data  # the essays hold the text twice (raw and current); the bytes are not needed
    if decoded is None:
        return
    text, encoding, src = decoded
    if is_jsonl:
        yield from _jsonl_file(text, encoding, src, cfg, flags, shard)
    else:
        yield from _text_file(text, encoding, src, cfg, flags, shard, checked=fast is not None)


def _reject(shard: Shard, rel_path: str, reason: str, detail: str, size: int | None = None,
            sha: str | None = None) -> None:
    """Quarantine the whole file, with a reason."""
    shard.quarantine.append(QuarantineEntry(rel_path, reason, detail, bytes=size, sha256=sha))
    shard.stats["ingest.quarantined_files"] = 1


def _read(path: Path, raw_root: Path, rel_path: str, cfg: IngestConfig,
          shard: Shard) -> tuple[bytes, tuple[str, str, int] | None] | None:
    """The file's bytes, or for a big strict UTF-8 file ``b""`` and its (text, sha256, size) read
    in chunks (:func:`read_big_utf8`); None when the file is quarantined: a link out of the raw
    root, not a regular file, too large, unreadable."""
    try:
        st = os.stat(path)
        if not cfg.follow_external_symlinks and not inside_root(path, raw_root):
            return _reject(shard, rel_path, "symlink_outside_root", "resolves outside the raw root")
        if not stat.S_ISREG(st.st_mode):
            return _reject(shard, rel_path, "not_a_regular_file", file_kind(st.st_mode))
        size = st.st_size
        if size > cfg.max_file_bytes:
            return _reject(shard, rel_path, "too_large", f"{size} bytes > {cfg.max_file_bytes}", size)
        fast = read_big_utf8(path, size, cfg)
        if fast is not None:
            return b"", fast
        with open(path, "rb") as fh:
            return fh.read(), None
    except PermissionError as exc:
        return _reject(shard, rel_path, "unreadable", exc.strerror or "permission denied")
    except OSError as exc:
        reason = "symlink_loop" if exc.errno == errno.ELOOP else "unreadable"
        return _reject(shard, rel_path, reason, f"{type(exc).__name__}: {exc.strerror}")


def _decoded(rel_path: str, data: bytes, fast: tuple[str, str, int] | None, is_jsonl: bool, cfg: IngestConfig,
             shard: Shard, flags: list[str]) -> tuple[str, str, _FileInput] | None:
    """(text, encoding, the file's identity); segments no encoding fits are quarantined alone and
    the file's flags say ``mixed_encoding`` or ``decode_replaced``.  None when the whole file is
    quarantined: a line too long, or undecodable."""
    if fast is not None:
        text, sha, size = fast
        shard.stats["ingest.bytes"] = size
        return text, "utf-8", _FileInput(rel_path, sha, size)
    sha = hashlib.sha256(data).hexdigest()
    src = _FileInput(rel_path, sha, len(data))
    shard.stats["ingest.bytes"] = len(data)
    if not is_jsonl and len(data) > cfg.max_line_chars and longest_line(data, 4 * cfg.max_line_chars) > 4 * cfg.max_line_chars:
        return _reject(shard, rel_path, "line_too_long", f"a line of more than {4 * cfg.max_line_chars} bytes", len(data), sha)
    try:
        text, encoding, dropped = decode_file(data)
    except DecodeRejected as exc:
        return _reject(shard, rel_path, exc.reason, exc.detail, len(data), sha)
    for d in dropped:  # only these lines are lost; the rest of the file is released
        shard.quarantine.append(QuarantineEntry(
            rel_path, "undecodable", f"bytes {d.start}-{d.end} ({_lines(d)}) fit no "
            f"encoding; the rest of the file ({encoding}) is released", line=d.first_line,
            bytes=d.end - d.start, sha256=sha))
    if encoding.startswith("mixed:"):
        flags.append("mixed_encoding")
    if "\ufffd" in text and (encoding == "utf-8" or encoding.startswith("mixed:")) and b"\xef\xbf\xbd" not in data:
        flags.append("decode_replaced")
    return text, encoding, src


def _lines(d: Dropped) -> str:
    return f"line {d.first_line}" if d.first_line == d.last_line else f"lines {d.first_line}-{d.last_line}"


def _jsonl_file(text: str, encoding: str, src: _FileInput, cfg: IngestConfig, flags: list[str],
                shard: Shard) -> Iterator[Essay]:
    essays, bad_lines, blank = _jsonl_essays(text, src, cfg, flags)
    shard.quarantine.extend(bad_lines)
    shard.stats["ingest.jsonl_blank_lines"] = blank
    shard.sources.append(SourceInfo(src.rel_path, src.size, src.sha256, encoding, "jsonl", len(essays)))
    yield from essays
    shard.stats["ingest.essays"] = len(essays)


def _text_file(text: str, encoding: str, src: _FileInput, cfg: IngestConfig, flags: list[str], shard: Shard,
               checked: bool) -> Iterator[Essay]:
    """``checked``: the chunked reader already measured the lines."""
    longest = longest_line(text, cfg.max_line_chars) if not checked else 0
    if longest > cfg.max_line_chars:
        return _reject(shard, src.rel_path, "line_too_long", f"a line of {longest} chars > {cfg.max_line_chars}",
                       src.size, src.sha256)
    if is_blank(text):
        return _reject(shard, src.rel_path, "empty", "only whitespace after decoding", src.size, src.sha256)
    # listed first and counted as essays go out: a failure midway is reported with the essays
    # already handed on (failed_file)
    source = SourceInfo(src.rel_path, src.size, src.sha256, encoding, "text", 0)
    shard.sources.append(source)
    for essay in _text_essays(text, src, cfg, flags):
        source.essays += 1
        yield essay
    shard.stats["ingest.essays"] = source.essays
