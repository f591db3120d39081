"""Explicit Arrow schemas of every release table (the release contract).

Columns may be added; the contract columns are never renamed.  Bump SCHEMA_VERSION on any
change here: the release versioning treats a schema change as a major version.
"""

from __future__ import annotations

import pyarrow as pa

# 2.0: ``date`` is date32 and ``crawled_at`` a UTC timestamp (were strings); quality-signal columns;
# sections.is_leaf; duplicates.paragraph_jaccard / paragraph_containment (relation paragraph_reuse).
SCHEMA_VERSION = "2.0"

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

TABLES: dict[str, pa.Schema] = {
    "documents": DOCUMENTS,
    "sections": SECTIONS,
    "duplicates": DUPLICATES,
    "edits": EDITS,
    "quarantine": QUARANTINE,
}

# Sort keys per table: rows are written in this order so output is byte-stable.
SORT_KEYS: dict[str, list[str]] = {
    "documents": ["doc_id"],
    "sections": ["doc_id", "char_start", "level", "section_id"],
    "duplicates": ["level", "a_id", "b_id"],
    "edits": ["doc_id", "raw_start", "raw_end"],
    "quarantine": ["path", "line", "reason"],
}
