"""The ``[dedup]`` settings: MinHash near-duplicate and reuse detection."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from corpuspipe.core.config import ConfigSection


class DedupConfig(ConfigSection):
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
