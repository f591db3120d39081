"""The ``[ingest]`` settings: how raw files are found, decoded and split into essays."""

from __future__ import annotations

from pydantic import Field

from corpuspipe.core.config import ConfigSection


class IngestConfig(ConfigSection):
    """How raw files are found, decoded and split into essays."""

    include_globs: tuple[str, ...] = ("**/*.txt", "**/*.jsonl", "**/*.md")
    max_file_bytes: int = Field(200 * 1024 * 1024, ge=1)
    max_line_chars: int = Field(1_000_000, ge=1)  # a longer line is not prose (quarantined)
    jsonl_text_field: str = "text"
    jsonl_title_field: str = "title"
    jsonl_url_field: str = "url"
    jsonl_crawled_at_field: str = "crawl_time"
    min_essay_chars: int = Field(50, ge=0)
    max_title_chars: int = Field(40, ge=1)  # a longer line is a title only with strong evidence (below)
    # A line of up to this many characters is still a title when a document opening follows it
    # (salutation, date/promulgation line, byline, teaser...) or a teaser precedes it: 5 of 55 real
    # laws have 41-53 character titles, reports with their occasion run to 59.
    max_long_title_chars: int = Field(100, ge=1)
    # A symlink whose target lies outside the raw root is quarantined (symlink_outside_root):
    # a crawl folder must not pull in /etc/passwd or another user's files by a link.
    follow_external_symlinks: bool = False
