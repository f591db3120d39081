"""The one typed configuration object.  Its JSON form is hashed into every release."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IngestConfig(_Section):
    """How raw files are found, decoded and split into essays."""

    include_globs: tuple[str, ...] = ("**/*.txt", "**/*.jsonl", "**/*.md")
    max_file_bytes: int = 200 * 1024 * 1024
    max_line_chars: int = 1_000_000  # a longer line is not prose (quarantined)
    jsonl_text_field: str = "text"
    jsonl_title_field: str = "title"
    jsonl_url_field: str = "url"
    jsonl_crawled_at_field: str = "crawl_time"
    min_essay_chars: int = 50
    max_title_chars: int = 40  # a longer line is never taken for a title


class WatermarkConfig(_Section):
    """Rule-based and corpus-statistics-based removal of site boilerplate."""

    rules_file: str | None = None  # extra TOML rules on top of the shipped ones
    detect_boilerplate: bool = True
    min_doc_frequency: int = 3  # a candidate must recur in at least this many documents...
    # ...and in this share of documents (scales with corpus size).  0.08: the formulaic openers of the
    # real government reports recur in <= 6.8% of them, their Wikisource notice in 13.6%.
    min_doc_share: float = 0.08
    min_chars: int = 8
    allowlist: tuple[str, ...] = ()


class NormalizeConfig(_Section):
    """Script conversion, text repair and personal-data redaction."""

    convert_traditional: bool = True
    trad_ratio_traditional: float = 0.5  # >= this: traditional
    trad_ratio_mixed: float = 0.05  # >= this: mixed
    fix_punctuation: bool = True
    fix_fullwidth_alnum: bool = True
    join_broken_lines: bool = True
    fix_pdf_glyphs: bool = True
    # a line that does not end a sentence is joined to the next only if its paragraph so far
    # has at least this many Han characters (shorter unterminated lines are titles/headings)
    join_min_han: int = 30
    redact_pii: bool = True
    # which kinds to redact (see corpuspipe.zh.pii.KINDS); 15-digit legacy ID numbers are opt-in
    pii_kinds: tuple[str, ...] = ("id_card", "mobile", "email", "student_id", "exam_id", "staff_id", "name")
    pii_id_card_15: bool = False


class SectionConfig(_Section):
    """Outline detection."""

    max_heading_chars: int = 60
    min_sequence: int = 2  # run-in markers inside a paragraph need a sequence this long


class DedupConfig(_Section):
    """MinHash near-duplicate and reuse detection."""

    shingle: Literal["char", "word"] = "char"
    ngram: int = 5
    num_perm: int = 128
    threshold: float = 0.35  # measured: bench F1 0.991 at 0.35 vs 0.920 at 0.5 (8%-edit copies: J~0.44)
    containment_threshold: float = 0.8
    min_section_chars: int = 80
    seed: int = 1
    # Reuse candidates: a second, lower-threshold banding guarantees candidates (at the
    # containment threshold) for pairs whose shingle-set sizes differ by up to this ratio.
    # 0 disables reuse banding (near-duplicate banding still reports reuse it happens to find).
    reuse_max_ratio: float = 3.0
    lsh_fn_weight: float = 0.5  # datasketch optimal-param weight on false negatives (fp = 1 - this)
    max_bucket: int = 100  # larger LSH buckets emit star+chain pairs instead of all pairs
    # A document whose stripped text is shorter than this is never a near-duplicate of anything:
    # a title-only or watermark-only page.  30 stripped chars = 26 five-gram shingles, where one
    # edited character already moves Jaccard by ~0.3 (the score is noise), and is shorter than
    # any real essay body (ingest keeps essays of >= 50 raw chars).
    min_document_chars: int = 30
    # Band rows (24 bytes each) per in-memory candidate partition: 4M rows = ~100 MB at the sort.
    partition_rows: int = 4_000_000
    # Rows beyond "member -> representative": each item may take part in this many other verified
    # pairs (reuse, near-duplicates across clusters).  Keeps rows linear in cluster size.
    extra_pairs_per_item: int = 1


class ReleaseConfig(_Section):
    """What the written release is called and how its files are encoded."""

    dataset: str = "corpuspipe-zh-essays"
    license: str = "other"
    # Dataset card / Croissant text (card.py); the Hub wants license_name when license is "other".
    pretty_name: str = "Chinese essays (cleaned, deduplicated)"
    description: str = ""
    homepage: str = ""
    license_name: str = ""
    license_link: str = ""
    citation: str = ""
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    compression_level: int = 9
    row_group_size: int = 50_000
    shard_files: int = 64  # files per ingestion task


class PipelineConfig(_Section):
    """Everything that changes the output.  Hashing its JSON gives the release's config hash."""

    ingest: IngestConfig = Field(default_factory=IngestConfig)
    watermark: WatermarkConfig = Field(default_factory=WatermarkConfig)
    normalize: NormalizeConfig = Field(default_factory=NormalizeConfig)
    section: SectionConfig = Field(default_factory=SectionConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    release: ReleaseConfig = Field(default_factory=ReleaseConfig)

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    def config_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]

    @classmethod
    def load(cls, path: str | Path | None = None) -> "PipelineConfig":
        """Defaults, overridden by a TOML file with the same section names."""
        if path is None:
            return cls()
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        return cls.model_validate(data)
