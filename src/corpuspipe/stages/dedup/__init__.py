"""Near-duplicate and reuse detection: per-shard signatures, one corpus-level pass per level."""

from corpuspipe.stages.dedup._interim import DedupItem, DedupOutcome, find_duplicates, items_for_document, write_signatures

__all__ = ["DedupItem", "DedupOutcome", "find_duplicates", "items_for_document", "write_signatures"]
