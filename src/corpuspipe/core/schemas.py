"""Explicit Arrow schemas of every release table (the release contract), and the one list of tables.

Columns may be added; the contract columns are never renamed.  Bump SCHEMA_VERSION on any
change here or in the release layout: the release versioning treats either as a major version
(``versioning.schema_fingerprint`` covers both).

:data:`RELEASE_TABLES` is the only place a release table is declared: its schema, where its rows
come from, its order and its natural key.  The writer, validation, changelog, card, Croissant and
export iterate over it; adding a table whose rows a stage writes (``CorpusStage.release_inputs``)
touches nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import pyarrow as pa

# 2.0: ``date`` is date32 and ``crawled_at`` a UTC timestamp (were strings); quality-signal columns;
# sections.is_leaf; duplicates.paragraph_jaccard / paragraph_containment (relation paragraph_reuse).
# 3.0: every table is a folder of parts, ``<table>/part-NNNNN.parquet`` (was ``<table>.parquet``),
# written in parallel; the rows are those of 2.0.
SCHEMA_VERSION = "3.0"

# The per-document quality signals (stages/quality/measures.py), in column order; all float32, never null.
SIGNAL_COLUMNS = (
    "han_ratio", "punct_ratio", "dup_line_char_frac", "top_2gram_frac", "top_3gram_frac", "top_4gram_frac",
    "dup_5gram_frac", "dup_6gram_frac", "dup_7gram_frac", "dup_8gram_frac", "dup_9gram_frac", "dup_10gram_frac",
    "mean_sentence_chars", "boilerplate_frac",
)

DOCUMENTS = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("source_path", pa.string(), nullable=False),
        pa.field("source_sha256", pa.string(), nullable=False),
        pa.field("essay_index", pa.int32(), nullable=False),
        pa.field("title", pa.string()),
        pa.field("author", pa.string()),
        pa.field("date", pa.date32()),
        pa.field("url", pa.string()),
        pa.field("crawled_at", pa.timestamp("ms", tz="UTC")),
        pa.field("text", pa.string(), nullable=False),
        pa.field("text_sha256", pa.string(), nullable=False),
        pa.field("script", pa.string(), nullable=False),
        pa.field("trad_ratio", pa.float32(), nullable=False),
        pa.field("char_count", pa.int32(), nullable=False),
        pa.field("section_count", pa.int32(), nullable=False),
        pa.field("edit_count", pa.int32(), nullable=False),
        pa.field("cluster_id", pa.string(), nullable=False),
        pa.field("cluster_size", pa.int32(), nullable=False),
        pa.field("duplicate_of", pa.string()),
        pa.field("flags", pa.list_(pa.string()), nullable=False),
        *[pa.field(name, pa.float32(), nullable=False) for name in SIGNAL_COLUMNS],
    ]
)

SECTIONS = pa.schema(
    [
        pa.field("section_id", pa.string(), nullable=False),
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("path", pa.string(), nullable=False),
        pa.field("level", pa.int8(), nullable=False),
        pa.field("ordinal", pa.int32(), nullable=False),
        pa.field("marker", pa.string(), nullable=False),
        pa.field("marker_family", pa.string(), nullable=False),
        pa.field("heading", pa.string()),
        pa.field("text", pa.string(), nullable=False),
        pa.field("char_start", pa.int32(), nullable=False),
        pa.field("char_end", pa.int32(), nullable=False),
        pa.field("parent_id", pa.string()),
        #: True when no section of the document has this one as its parent.  A parent's text contains
        #: its children's; dedup judges leaves only, so ``is_leaf AND duplicate_of IS NULL`` is a
        #: deduplicated set of sections without overlapping text (README, "Loading it").
        pa.field("is_leaf", pa.bool_(), nullable=False),
        pa.field("cluster_id", pa.string(), nullable=False),
        pa.field("duplicate_of", pa.string()),
    ]
)

DUPLICATES = pa.schema(
    [
        pa.field("level", pa.string(), nullable=False),
        pa.field("a_id", pa.string(), nullable=False),
        pa.field("b_id", pa.string(), nullable=False),
        pa.field("jaccard", pa.float32(), nullable=False),
        pa.field("jaccard_exact", pa.float32(), nullable=False),
        pa.field("containment_ab", pa.float32(), nullable=False),
        pa.field("containment_ba", pa.float32(), nullable=False),
        #: near_duplicate (jaccard_exact >= dedup.threshold) or reuse (one side >= containment_threshold
        #: inside the other), both on the two whole texts (documents, or whole leaf sections); for
        #: sections also paragraph_reuse: the sections' own texts are neither, but a paragraph pair is
        #: (its scores below).  jaccard/jaccard_exact/containments are always the two texts' own.
        pa.field("relation", pa.string(), nullable=False),
        #: Sections only (null for documents): exact Jaccard and larger containment of the best-matching
        #: paragraph pair (a one-paragraph section is its own paragraph; paragraphs shorter than
        #: dedup.min_section_chars are not compared), chosen by containment, then Jaccard.
        pa.field("paragraph_jaccard", pa.float32()),
        pa.field("paragraph_containment", pa.float32()),
    ]
)

EDITS = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("source_path", pa.string(), nullable=False),
        pa.field("essay_index", pa.int32()),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("rule", pa.string(), nullable=False),
        pa.field("raw_start", pa.int64(), nullable=False),
        pa.field("raw_end", pa.int64(), nullable=False),
        pa.field("clean_start", pa.int32(), nullable=False),
        pa.field("clean_end", pa.int32(), nullable=False),
        pa.field("before", pa.string(), nullable=False),
        pa.field("after", pa.string(), nullable=False),
    ]
)

QUARANTINE = pa.schema(
    [
        pa.field("path", pa.string(), nullable=False),
        pa.field("line", pa.int64()),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
        pa.field("bytes", pa.int64()),
        pa.field("sha256", pa.string()),
    ]
)


#: In :attr:`Table.join_defaults`: the row's own id (a row no stage clusters is its own cluster).
SELF = "\0self"

#: Where a table's rows come from (:attr:`Table.origin`).
FROM_SHARDS = "shard"  # built from the last pass's shard files, one part per group of shards (release.tables)
FROM_STAGES = "stage"  # whole rows written by a corpus stage (``ReleaseInputs.rows``), one part per file
FROM_QUARANTINE = "quarantine"  # the build's quarantine entries, one part


@dataclass(frozen=True)
class Table:
    """One release table: what it is, where its rows come from, and how rows are ordered and matched."""

    name: str
    schema: pa.Schema
    origin: str
    #: order of the rows within a part (parts are in shard order: see release.tables)
    sort: tuple[str, ...]
    #: what identifies "the same row" in two releases (the changelog matches on it)
    key: tuple[str, ...]
    description: str
    #: the id column a stage's join file (``ReleaseInputs.joins``, keyed by ``id``) is matched on
    id: str | None = None
    #: columns a stage may supply by join, with their value for a row no join file names
    #: (:data:`SELF`: the row's own id)
    join_defaults: Mapping[str, Any] = field(default_factory=dict)
    #: the column whose difference means "the text changed" (others are metadata changes)
    text_column: str | None = None
    #: columns the changelog never reads because ``text_column`` stands for them
    changelog_skip: tuple[str, ...] = ()


_CLUSTER_DEFAULTS = {"cluster_id": SELF, "duplicate_of": None}

RELEASE_TABLES: tuple[Table, ...] = (
    Table("documents", DOCUMENTS, FROM_SHARDS, sort=("doc_id",), key=("doc_id",), id="doc_id",
          join_defaults={**_CLUSTER_DEFAULTS, "cluster_size": 1}, text_column="text_sha256",
          changelog_skip=("text",),
          description="One row per essay: cleaned text, provenance, script, duplicate cluster and quality flags."),
    Table("sections", SECTIONS, FROM_SHARDS, sort=("section_id",), key=("section_id",), id="section_id",
          join_defaults=_CLUSTER_DEFAULTS, text_column="text",
          description="The outline of each essay: headings and the text between them, with character offsets."),
    Table("duplicates", DUPLICATES, FROM_STAGES, sort=("level", "a_id", "b_id"), key=("level", "a_id", "b_id"),
          description="Near-duplicate and text-reuse pairs between documents or sections, with similarity scores."),
    Table("edits", EDITS, FROM_SHARDS, sort=("doc_id", "raw_start", "raw_end"),
          key=("doc_id", "stage", "rule", "raw_start", "raw_end"),
          description="Every change the cleaning made, with raw and clean offsets, so any edit can be audited "
                      "or undone."),
    Table("quarantine", QUARANTINE, FROM_QUARANTINE, sort=("path", "line", "reason"), key=("path", "line", "reason"),
          description="Inputs or lines that were not turned into documents, and why."),
)

TABLE_SPECS: dict[str, Table] = {t.name: t for t in RELEASE_TABLES}
TABLES: dict[str, pa.Schema] = {t.name: t.schema for t in RELEASE_TABLES}
# Sort keys per table: rows are written in this order so output is byte-stable.
SORT_KEYS: dict[str, list[str]] = {t.name: list(t.sort) for t in RELEASE_TABLES}
