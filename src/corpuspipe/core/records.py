"""The records that flow between stages, and their on-disk form between Prefect tasks.

An :class:`Essay` owns one contiguous range of its decoded source file.  Everything in that
range that is not body text (header lines, the title line, teasers, watermarks) is removed by
edits, so the source file is always ``"".join(rebuild(essay) for essay in file_essays)``.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterable, NamedTuple


from corpuspipe.core.edits import TrackedText


def make_doc_id(source_sha256: str, essay_index: int) -> str:
    """Stable id: a function of the source's content hash and the essay's index in it."""
    return hashlib.sha256(f"{source_sha256}:{essay_index}".encode()).hexdigest()[:16]


@dataclass
class SourceInfo:
    """One raw input file as read."""

    path: str  # relative to the raw root, POSIX separators
    bytes: int
    sha256: str
    encoding: str
    kind: str = "text"  # text | jsonl
    essays: int = 0


@dataclass
class QuarantineEntry:
    """An input (file, record or line) that could not be used, and why."""

    path: str
    reason: str  # short machine-readable code, e.g. "empty", "binary", "undecodable"
    detail: str = ""
    line: int | None = None  # for JSONL records
    bytes: int | None = None
    sha256: str | None = None


@dataclass
class Essay:
    """One essay: identity, metadata, the tracked body text and quality facts."""

    source_path: str
    source_sha256: str
    essay_index: int
    body: TrackedText
    title: str | None = None
    author: str | None = None
    date: str | None = None
    url: str | None = None
    crawled_at: str | None = None
    script: str = "unknown"  # of the raw essay: simplified | traditional | mixed | unknown
    trad_ratio: float = 0.0
    flags: list[str] = field(default_factory=list)
    # counters a stage wants in the manifest, e.g. {"redacted.student_id": 1}
    stats: dict[str, int] = field(default_factory=dict)
    # the outline, once the section stage ran (offsets into ``text``)
    sections: list["SectionRow"] | None = None
    # quality signals measured by the quality stage (stages/quality/), {name: value}
    signals: dict[str, float] = field(default_factory=dict)
    # edits recorded outside the body (title line etc.) that still belong to this essay's range
    # are ordinary body edits; nothing else is needed for lossless rebuild.

    @property
    def doc_id(self) -> str:
        return make_doc_id(self.source_sha256, self.essay_index)

    @property
    def text(self) -> str:
        return self.body.text

    def add_flag(self, flag: str) -> None:
        if flag not in self.flags:
            self.flags.append(flag)
            self.flags.sort()

    def bump(self, key: str, n: int = 1) -> None:
        self.stats[key] = self.stats.get(key, 0) + n


@dataclass
class Shard:
    """A batch: the essays of a group of files plus what was rejected (what every stage takes and returns)."""

    essays: list[Essay] = field(default_factory=list)
    sources: list[SourceInfo] = field(default_factory=list)
    quarantine: list[QuarantineEntry] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    def text_bytes(self) -> int:
        """UTF-8 size of the essays' current text (what a stage's MB/s is measured against)."""
        return sum(len(e.body.text.encode("utf-8")) for e in self.essays)


def merge_counts(into: dict[str, int], more: Iterable[tuple[str, int]] | dict[str, int]) -> dict[str, int]:
    items = more.items() if isinstance(more, dict) else more
    for k, v in items:
        into[k] = into.get(k, 0) + v
    return into


class SectionRow(NamedTuple):
    """A section as produced by the sectioning stage, tied to its document.

    A NamedTuple (it was a frozen dataclass): ~30k of them per 14.5 MB of crawl text are made by
    the section stage and again by every reader of a shard file, and written field by field; a
    tuple is built in one C call and its fields after ``doc_id`` are one slice (``row[1:]``)."""

    doc_id: str
    path: str
    level: int
    ordinal: int
    marker: str
    marker_family: str
    heading: str | None
    char_start: int
    char_end: int
    parent_path: str | None


def section_id(doc_id: str, path: str) -> str:
    """Stable, sortable id: zero-padded ordinal path, so ids sort in document order."""
    return doc_id + "-" + _padded_path(path)


@functools.lru_cache(maxsize=4096)
def _padded_path(path: str) -> str:
    """``"2.10"`` -> ``"002.010"``.  Cached: outline paths repeat across documents (a few hundred
    distinct ones in the 100 MB crawl's 200k sections), and formatting each part was ~0.7 us."""
    return ".".join(f"{int(p):03d}" for p in path.split("."))


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
