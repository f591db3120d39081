"""What every release column means: the words of the release contract, beside ``schemas.py``'s types.

``docs/reference/release-contract.md`` is generated from ``schemas.TABLES`` (names, Arrow types,
nullability, order, sort keys) and these sentences (``corpuspipe.docgen``); ``tests/docs/test_docs.py``
fails when a table or column of ``schemas.py`` has no sentence here, or a sentence names a column
that no longer exists, so a schema change cannot leave the contract page behind.

They live in their own module rather than as Arrow field metadata: field metadata is written into
every Parquet footer, so documenting a column would change the release's bytes.
"""

from __future__ import annotations

#: one line per table: what one row is
TABLES: dict[str, str] = {
    "documents": "One row per essay (a file may hold several: compilations are split, JSON Lines have one per record).",
    "sections": "One row per node of an essay's outline (一、 / （一） / 1. …), plus the preamble before the first marker.",
    "duplicates": "One row per verified pair of near-duplicate or reused documents or sections.",
    "edits": "One row per change the pipeline made to the raw text; applied in reverse they give the raw text back.",
    "quarantine": "One row per input file (or JSON Lines line) that was not released, with the reason.",
}

_SIGNAL = "quality signal (float32, never null; measured, never used to drop anything)"

COLUMNS: dict[str, dict[str, str]] = {
    "documents": {
        "doc_id": "16 hex characters of sha256(`source_sha256:essay_index`): the same input bytes give the same id.",
        "source_path": "The raw file, relative to the raw directory (non-UTF-8 names with `\\x` escapes).",
        "source_sha256": "sha256 of the raw file's bytes.",
        "essay_index": "Position of the essay in its file (0 for a one-essay file; the record index in JSON Lines).",
        "title": "Title taken from the first line or the JSON Lines title field; null when none was found.",
        "author": "Author from a byline header line, when there was one.",
        "date": "Date from a header line (date32).",
        "url": "Page URL (JSON Lines `url` field).",
        "crawled_at": "Crawl time as a UTC timestamp (JSON Lines `crawl_time`); unreadable values are null "
                      "and flag the document `unparsed_crawled_at`.",
        "text": "The clean body: watermarks and boilerplate removed, Simplified script, repaired punctuation and "
                "glyphs, personal data redacted; without the title line.",
        "text_sha256": "sha256 of `text` (UTF-8): compare releases or exports row by row.",
        "script": "Script of the raw essay: `simplified`, `traditional` or `mixed` (from `trad_ratio`).",
        "trad_ratio": "Traditional-only characters / (Traditional-only + Simplified-only) in the raw essay (0-1).",
        "char_count": "Characters of `text`.",
        "section_count": "Rows of `sections` for this document.",
        "edit_count": "Rows of `edits` for this document.",
        "cluster_id": "`doc_id` of the near-duplicate cluster's representative (its own id when alone).",
        "cluster_size": "Documents in the cluster (1 when alone).",
        "duplicate_of": "The representative's `doc_id` when this document is a near-duplicate of it, else null: "
                        "`duplicate_of IS NULL` keeps one document per cluster.",
        "flags": "Damage and junk flags (`mojibake`, `truncated`, `encoding_damage`, `short`, …); "
                 "`corpuspipe show` says why each fired.",
        "han_ratio": f"Han characters / non-whitespace characters (0-1); {_SIGNAL}.",
        "punct_ratio": f"Punctuation / non-whitespace characters (0-1); {_SIGNAL}.",
        "dup_line_char_frac": f"Share of characters in lines repeated within the document (0-1; Gopher); {_SIGNAL}.",
        "top_2gram_frac": f"Characters covered by the most frequent character 2-gram (0-1; Gopher's top n-gram); {_SIGNAL}.",
        "top_3gram_frac": f"The same for character 3-grams; {_SIGNAL}.",
        "top_4gram_frac": f"The same for character 4-grams; {_SIGNAL}.",
        "dup_5gram_frac": f"Share of characters inside character 5-grams that occur more than once "
                          f"(0-1; RedPajama-V2 / Gopher, on characters); {_SIGNAL}.",
        "dup_6gram_frac": f"The same for 6-grams; {_SIGNAL}.",
        "dup_7gram_frac": f"The same for 7-grams; {_SIGNAL}.",
        "dup_8gram_frac": f"The same for 8-grams; {_SIGNAL}.",
        "dup_9gram_frac": f"The same for 9-grams; {_SIGNAL}.",
        "dup_10gram_frac": f"The same for 10-grams; {_SIGNAL}.",
        "mean_sentence_chars": f"Characters per sentence (split at 。！？!?； and line ends); {_SIGNAL}.",
        "boilerplate_frac": f"Share of the raw essay removed by the watermark stage (0-1); {_SIGNAL}.",
    },
    "sections": {
        "section_id": "`doc_id` + `-` + the path with 3-digit parts (`…-002.001` is path 2.1).",
        "doc_id": "The document the section belongs to.",
        "path": "Ordinal path in the outline (`2.1`); the preamble is `0`.",
        "level": "Depth in the outline, 1 = top (the preamble is level 1 too).",
        "ordinal": "Position among its siblings, 1-based (preamble 0).",
        "marker": "The outline marker as written (`一、`, `（一）`, `1.`, `一是`, `第一，`); empty for the preamble.",
        "marker_family": "The marker's family (`corpuspipe.zh.outline.FAMILIES`): how levels are told apart.",
        "heading": "The heading after the marker (own line or run-in), when there is one.",
        "text": "The section's text from its marker on: heading and body, its children's text included.",
        "char_start": "Start of the section in the document's `text`.",
        "char_end": "End of the section in the document's `text` (exclusive).",
        "parent_id": "`section_id` of the enclosing section; null at level 1.",
        "is_leaf": "True when no section names this one as `parent_id`. A parent's text contains its children's, "
                   "so a training set takes leaves: dedup judges leaves only.",
        "cluster_id": "`section_id` of the section's near-duplicate cluster representative (its own id when alone).",
        "duplicate_of": "The representative's `section_id` when this leaf is a near-duplicate of it, else null.",
    },
    "duplicates": {
        "level": "`document` or `section`.",
        "a_id": "The smaller id of the pair (`doc_id` or `section_id`).",
        "b_id": "The larger id of the pair.",
        "jaccard": "MinHash estimate of the Jaccard similarity of the two texts' character 5-gram sets.",
        "jaccard_exact": "Exact Jaccard of the two shingle sets (the pair was verified on it).",
        "containment_ab": "Share of a's shingles found in b.",
        "containment_ba": "Share of b's shingles found in a.",
        "relation": "`near_duplicate` (`jaccard_exact` >= `dedup.threshold`), `reuse` (one side >= "
                    "`dedup.containment_threshold` inside the other), both about the two whole texts; for sections "
                    "also `paragraph_reuse`: only a paragraph pair is either (scores below).",
        "paragraph_jaccard": "Sections only: exact Jaccard of the best-matching paragraph pair (null for documents).",
        "paragraph_containment": "Sections only: the larger containment of that paragraph pair.",
    },
    "edits": {
        "doc_id": "The document edited.",
        "source_path": "Its raw file.",
        "essay_index": "Its position in the file.",
        "stage": "The stage that made the edit (`ingest`, `watermark`, `normalize`; `a+b` when edits of two stages merged).",
        "rule": "The rule that made it (`source_bracket`, `t2s`, `punct`, `pii_name`, …; `a+b` when edits of two rules merged).",
        "raw_start": "Start of `before` in the decoded raw file.",
        "raw_end": "End of `before` in the decoded raw file (exclusive).",
        "clean_start": "Start of `after` in the document's `text`.",
        "clean_end": "End of `after` in the document's `text` (exclusive).",
        "before": "The raw text replaced (empty for an insertion).",
        "after": "The text put in its place (empty for a removal).",
    },
    "quarantine": {
        "path": "The input file, relative to the raw directory.",
        "line": "JSON Lines: the 1-based line that was rejected; null for a whole file.",
        "reason": "Why (`empty`, `binary`, `undecodable`, `too_large`, `line_too_long`, `bad_json`, "
                  "`duplicate_file`, `hidden`, `unsupported_extension`, `symlink_outside_root`, …).",
        "detail": "One line of detail (a size, the file it duplicates, the decoder's error).",
        "bytes": "Size of the input in bytes, when it was read.",
        "sha256": "sha256 of the input's bytes, when it was read.",
    },
}
