"""The one typed configuration object.  Its JSON form is hashed into every release."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    # Unknown keys are refused (a typo would otherwise silently keep a default); every numeric key has
    # its range, so `dedup.threshold = 1.5` is refused before a build starts (preflight.py).
    # allow_inf_nan=False: `inf`/`nan` are valid TOML floats but no valid setting.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class IngestConfig(_Section):
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


class WatermarkConfig(_Section):
    """Rule-based and corpus-statistics-based removal of site boilerplate."""

    rules_file: str | None = None  # extra TOML rules on top of the shipped ones
    detect_boilerplate: bool = True
    min_doc_frequency: int = Field(3, ge=1)  # a candidate must recur in at least this many documents...
    # ...and in this share of documents (scales with corpus size).  0.08: the formulaic openers of the
    # real government reports recur in <= 6.8% of them, their Wikisource notice in 13.6%.
    min_doc_share: float = Field(0.08, ge=0.0, le=1.0)
    min_chars: int = Field(8, ge=1)
    allowlist: tuple[str, ...] = ()
    # Site level (site = URL host for JSON Lines, top-level folder for files): a line on at least
    # this share of one site's distinct texts, at the page edges, is that site's boilerplate.  A
    # crawl site's own footer wording sits on most of its pages but on ~3 % of a 17-site corpus,
    # far under min_doc_share; the formulaic report opener sits on 6.8 % of one site's reports.
    site_min_share: float = Field(0.5, ge=0.0, le=1.0)
    site_min_docs: int = Field(5, ge=1)  # sites with fewer distinct texts get no site-level rule
    # Page edges: the first/last `edge_lines` non-blank lines, or lines within `edge_chars` of either end.
    edge_lines: int = Field(3, ge=0, le=1000)
    edge_chars: int = Field(200, ge=0)
    edge_share: float = Field(0.8, ge=0.0, le=1.0)  # share of a site-level key's votes that must sit at an edge
    # One vote per distinct text: a document votes under the hash of its longest body line when that
    # line has at least this many characters (copies with different site lines vote once), else of its text.
    identity_min_chars: int = Field(40, ge=1)
    # An essay the stage would leave with fewer non-space characters than this is "emptied": quarantined
    # (boilerplate_only) when what went was short, kept untouched by the detector and flagged otherwise.
    min_kept_chars: int = Field(20, ge=0)
    max_emptied_chars: int = Field(200, ge=0)


class NormalizeConfig(_Section):
    """Script conversion, text repair and personal-data redaction."""

    convert_traditional: bool = True
    trad_ratio_traditional: float = Field(0.5, ge=0.0, le=1.0)  # >= this: traditional
    trad_ratio_mixed: float = Field(0.05, ge=0.0, le=1.0)  # >= this: mixed
    fix_punctuation: bool = True
    fix_fullwidth_alnum: bool = True
    join_broken_lines: bool = True
    fix_pdf_glyphs: bool = True
    # a line that does not end a sentence is joined to the next only if its paragraph so far
    # has at least this many Han characters (shorter unterminated lines are titles/headings)
    join_min_han: int = Field(30, ge=0)
    redact_pii: bool = True
    # which kinds to redact (see corpuspipe.zh.pii.KINDS); 15-digit legacy ID numbers are opt-in
    pii_kinds: tuple[str, ...] = ("id_card", "mobile", "email", "student_id", "exam_id", "staff_id", "name")
    pii_id_card_15: bool = False


class SectionConfig(_Section):
    """Outline detection."""

    max_heading_chars: int = Field(60, ge=1)
    min_sequence: int = Field(2, ge=1)  # run-in markers inside a paragraph need a sequence this long


class DedupConfig(_Section):
    """MinHash near-duplicate and reuse detection."""

    shingle: Literal["char", "word"] = "char"
    ngram: int = Field(5, ge=1, le=64)
    num_perm: int = Field(128, ge=2, le=4096)
    threshold: float = Field(0.35, gt=0.0, le=1.0)  # measured: bench F1 0.991 at 0.35 vs 0.920 at 0.5 (8%-edit copies: J~0.44)
    containment_threshold: float = Field(0.8, gt=0.0, le=1.0)
    min_section_chars: int = Field(80, ge=0)
    seed: int = Field(1, ge=0, lt=2**32)
    # Reuse candidates: a second, lower-threshold banding guarantees candidates (at the
    # containment threshold) for pairs whose shingle-set sizes differ by up to this ratio.
    # 0 disables reuse banding (near-duplicate banding still reports reuse it happens to find).
    reuse_max_ratio: float = Field(3.0, ge=0.0)
    lsh_fn_weight: float = Field(0.5, ge=0.0, le=1.0)  # datasketch optimal-param weight on false negatives (fp = 1 - this)
    max_bucket: int = Field(100, ge=2)  # larger LSH buckets emit star+chain pairs instead of all pairs
    # A document whose stripped text is shorter than this is never a near-duplicate of anything:
    # a page with no body -- a title-only page whose leftover is one line the boilerplate detector
    # could not convict (a small site's footer: 36 stripped chars made four such pages one cluster
    # at the old 30, issue 23 #6).  50 is ingest's own floor for an essay (min_essay_chars) and
    # shorter than any real essay body; below ~30 one edited character moves Jaccard by ~0.3.
    min_document_chars: int = Field(50, ge=0)
    # Band rows (24 bytes each) per in-memory candidate partition: 1M rows = ~70 MB at the sort.
    # Measured on the 1 GB crawl's documents: 4M / 2M / 1M rows -> reduce peak RSS 521 / 419 / 371 MB,
    # candidates 6.5 / 6.0 / 5.1 CPU s (smaller sorts are not slower).
    partition_rows: int = Field(1_000_000, ge=1000)
    # Rows beyond "member -> representative": each item may take part in this many other verified
    # pairs (reuse, near-duplicates across clusters).  Keeps rows linear in cluster size.
    extra_pairs_per_item: int = Field(1, ge=0)


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
    # zstd level of the release tables.  Measured on the 100 MB crawl bench's documents table: level 3
    # writes 34 MB in 1.3 s, level 9 27 MB in 6.0 s (level 1: 52 MB, 0.7 s); the writer is single-process,
    # so 3 is the default and 9 a choice for publishing.
    compression_level: int = Field(3, ge=1, le=22)
    row_group_size: int = Field(50_000, ge=1)
    # Files per shard (one task per shard and pass), cut where a path's hash says (content-defined:
    # adding a file changes only its own shard).  512 files (~2.5 MB of essays) keeps the number of
    # tasks a 1 GB crawl needs in the hundreds; the byte cap keeps a shard of big files small.
    shard_files: int = Field(512, ge=1)
    shard_max_bytes: int = Field(32 * 1024 * 1024, ge=1)


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

    def input_files(self) -> list[Path]:
        """Files the config points at whose *contents* change the output (a user rules file)."""
        return [Path(self.watermark.rules_file)] if self.watermark.rules_file else []

    def config_hash(self) -> str:
        """Hash of the config and of the contents of every file it names: editing a rules file is a
        config change (it changes the release), even though the config text stays the same."""
        h = hashlib.sha256(self.canonical_json().encode())
        for p in self.input_files():
            try:
                h.update(b"\0" + str(p).encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
            except OSError:
                h.update(b"\0" + str(p).encode() + b"\0missing")
        return h.hexdigest()[:16]

    @classmethod
    def load(cls, path: str | Path | None = None) -> "PipelineConfig":
        """Defaults, overridden by a TOML file with the same section names."""
        if path is None:
            return cls()
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        return cls.model_validate(data)
